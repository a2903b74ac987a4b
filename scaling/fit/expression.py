"""Laws written as expressions, e.g. ``E + A/N**alpha + B/D**beta``, evaluated by asteval (the
safe evaluator lmfit uses for its own expressions and constraints).

Symbols: ``N`` parameters, ``D`` tokens, ``C`` FLOPs, ``U`` unique tokens, ``M`` = D/N and ``X``
(the input of a downstream law) are inputs, read from the columns that ``scaling fit`` binds to
them (``--n``, ``--d``, ``--c``, ``--u``, ``--x``); more inputs can be bound by name
(``--bind NAME=COL``). numpy functions (``exp``, ``log``, ``sqrt``, ``tanh``, ...) may be called.
Every other name is a parameter, fitted in natural units from a start of 1 unless ``--start`` or
``--grid`` say otherwise. The law's inputs are named ``n``, ``d``, ``c``, ``u``, ``m``, ``x`` for the
standard symbols and by their own name for bound ones.
"""

from __future__ import annotations

import ast
import io
import re

import numpy as np
from asteval import Interpreter, get_ast_names

from scaling.errors import UserError
from scaling.fit.laws import Law, Parameter

STANDARD_SYMBOLS = {"N": "n", "D": "d", "C": "c", "U": "u", "M": "m", "X": "x"}
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def is_expression(text: str) -> bool:
    """True when ``text`` is not a bare name (a bare name is a shipped law's name)."""
    return not _IDENTIFIER.fullmatch(text.strip())


def expression_law(text: str, bound: tuple[str, ...] = ()) -> Law:
    """A :class:`Law` predicting ``text`` (see module docstring); ``bound`` names extra input
    symbols (``--bind``). Bad expressions raise UserError naming what is wrong."""
    try:
        ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UserError(f"--law {text!r} is not a single expression ({exc.msg}); "
                        "expected e.g. 'E + A/N**alpha + B/D**beta'") from None
    interpreter = _interpreter()
    node = interpreter.parse(text.strip())
    names = list(dict.fromkeys(get_ast_names(node)))
    symbols = {**STANDARD_SYMBOLS, **{b: b for b in bound}}
    inputs = [symbols[n] for n in names if n in symbols]
    params = [n for n in names if n not in symbols and not callable(interpreter.symtable.get(n))]
    if not inputs:
        raise UserError(f"--law {text!r} uses none of the inputs {', '.join(symbols)}; expected a law of N, D, C, U, "
                        "M or X (or a column bound with --bind NAME=COL)")
    if not params:
        raise UserError(f"--law {text!r} has no parameter to fit; every name in it is an input or a function")
    keys = {v: k for k, v in symbols.items()}

    def predict(p, x):
        env = _interpreter()
        env.symtable.update({keys[k]: np.asarray(v, float) for k, v in x.items() if k in keys})
        env.symtable.update({k: p[k] for k in params})
        with np.errstate(all="ignore"):
            out = env.run(node)
        if env.error:
            raise ValueError(f"cannot evaluate {text!r}: {_first_error(env)}")
        shape = np.broadcast_shapes(*(np.shape(np.asarray(v)) for v in x.values()),
                                    *(np.shape(p[k]) for k in params))
        return np.broadcast_to(np.asarray(out, float), shape)

    return Law(text, tuple(inputs), tuple(Parameter(n, False, (1.0,)) for n in params), text, predict,
               space="log", expression=text)


def _interpreter() -> Interpreter:
    return Interpreter(writer=io.StringIO(), err_writer=io.StringIO(), use_numpy=True, minimal=True)


def _first_error(interpreter: Interpreter) -> str:
    if not interpreter.error:
        return "no value"
    return " ".join(str(interpreter.error[0].get_error()[1]).split())
