"""What a law is: its parameters and how it predicts (the record every fitting module shares).

The catalogue of named laws is :mod:`scaling.fit.laws`; laws written as expressions are built by
:mod:`scaling.fit.expression`. Both build :class:`Law` records from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from scaling.errors import unknown_choice

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Parameter:
    """One parameter: its name, whether it is optimised as log(value), and start values
    (in optimisation coordinates: log(value) when ``log``)."""

    name: str
    log: bool
    grid: tuple[float, ...]


@dataclass(frozen=True)
class Law:
    """A law L(inputs; params). ``predict(params, inputs)`` takes natural-unit parameters and a
    mapping of input arrays and returns the predicted loss; ``jacobian(params, inputs)``, when
    given, returns d(prediction)/d(parameter) for every parameter name (natural units).
    Parameters may be numbers or (S, 1) arrays (S parameter vectors at once): the shipped laws
    broadcast to (S, P). ``space`` is the default objective space (``log`` or ``loss``);
    ``expression`` is the source of a law written as an expression (see
    :mod:`scaling.fit.expression`), kept so that a saved fit can rebuild it."""

    name: str
    inputs: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    formula: str
    predict: Callable[[Mapping[str, float], Arrays], np.ndarray]
    jacobian: Callable[[Mapping[str, float], Arrays], Mapping[str, np.ndarray]] | None = None
    space: str = "log"
    expression: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in order."""
        return tuple(p.name for p in self.parameters)

    def to_natural(self, z: np.ndarray) -> dict[str, float]:
        """Natural-unit parameters from optimisation coordinates (exp of the ``log`` ones)."""
        return {p.name: float(np.exp(v) if p.log else v) for p, v in zip(self.parameters, z)}

    def to_coordinates(self, params: Mapping[str, float]) -> np.ndarray:
        """Optimisation coordinates of natural-unit parameters."""
        return np.array([np.log(params[p.name]) if p.log else params[p.name] for p in self.parameters])

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``; unknown names raise UserError listing the law's."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise unknown_choice(f"parameter of law {self.name}", name, self.names)
