"""Laws written as expressions, e.g. ``E + A/N**alpha + B/D**beta``.

Symbols: ``N`` parameters, ``D`` tokens, ``C`` FLOPs, ``U`` unique tokens, ``M`` = D/N and ``X``
(the input of a downstream law) are inputs, read from the columns that ``scaling fit`` binds to
them (``--n``, ``--d``, ``--c``, ``--u``, ``--x``); more inputs can be bound by name
(``--bind NAME=COL``). The functions in :data:`FUNCTIONS` (``exp``, ``log``, ``sqrt``, ``tanh``, ...)
may be called. Every other name is a parameter, fitted in natural units from a start of 1 unless
``--start`` or ``--grid`` say otherwise. The law's inputs are named ``n``, ``d``, ``c``, ``u``,
``m``, ``x`` for the standard symbols and by their own name for bound ones.

An expression is parsed by Python's ``ast`` and accepted only if it is built from numbers, names,
arithmetic operators and calls of those functions; it is then compiled once and evaluated with
numpy arrays and no builtins (fits evaluate it thousands of times, so it must be fast). lmfit
fits it (:mod:`scaling.fit.generic`).
"""

from __future__ import annotations

import ast
import re

import numpy as np

from scaling.errors import UserError
from scaling.fit.law import Law, Parameter

STANDARD_SYMBOLS = {"N": "n", "D": "d", "C": "c", "U": "u", "M": "m", "X": "x"}
FUNCTIONS = {name: getattr(np, name) for name in ("exp", "log", "log10", "log2", "sqrt", "tanh", "abs", "minimum",
                                                  "maximum", "where", "sin", "cos", "arctan")}
FUNCTIONS["log1p"], FUNCTIONS["expm1"] = np.log1p, np.expm1
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant, ast.Call, ast.Compare,
            ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def is_expression(text: str) -> bool:
    """True when ``text`` is not a bare name (a bare name is a shipped law's name)."""
    return not _IDENTIFIER.fullmatch(text.strip())


def expression_law(text: str, bound: tuple[str, ...] = ()) -> Law:
    """A :class:`Law` predicting ``text`` (see module docstring); ``bound`` names extra input
    symbols (``--bind``). Bad expressions raise UserError naming what is wrong."""
    tree = _parse(text)
    found = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name)), key=lambda n: (n.lineno, n.col_offset))
    names = list(dict.fromkeys(n.id for n in found))
    symbols = {**STANDARD_SYMBOLS, **{b: b for b in bound}}
    inputs = [symbols[n] for n in names if n in symbols]
    params = [n for n in names if n not in symbols and n not in FUNCTIONS]
    if not inputs:
        raise UserError(f"--law {text!r} uses none of the inputs {', '.join(symbols)}; expected a law of N, D, C, U, "
                        "M or X (or a column bound with --bind NAME=COL)")
    if not params:
        raise UserError(f"--law {text!r} has no parameter to fit; every name in it is an input or a function")
    code = compile(tree, "<law>", "eval")
    keys = {v: k for k, v in symbols.items()}

    def predict(p, x):
        env = {keys[k]: np.asarray(v, float) for k, v in x.items() if k in keys}
        env.update({k: p[k] for k in params})
        with np.errstate(all="ignore"):
            out = eval(code, {"__builtins__": {}, **FUNCTIONS}, env)  # noqa: S307 - a checked arithmetic expression
        shape = np.broadcast_shapes(*(np.shape(v) for v in env.values()))
        return np.broadcast_to(np.asarray(out, float), shape)

    return Law(text, tuple(inputs), tuple(Parameter(n, False, (1.0,)) for n in params), text, predict,
               space="log", expression=text)


def _parse(text: str) -> ast.Expression:
    """The syntax tree of ``text``, checked to hold only numbers, names, arithmetic and calls of
    :data:`FUNCTIONS`."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UserError(f"--law {text!r} is not a single expression ({exc.msg}); "
                        "expected e.g. 'E + A/N**alpha + B/D**beta'") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise UserError(f"--law {text!r}: {type(node).__name__.lower()} is not allowed; expected numbers, names, "
                            "+ - * / ** and calls of " + ", ".join(sorted(FUNCTIONS)))
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise UserError(f"--law {text!r}: {node.value!r} is not a number")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS
                                           or node.keywords):
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise UserError(f"--law {text!r}: {called}(...) is not an allowed function; expected one of "
                            + ", ".join(sorted(FUNCTIONS)))
    return tree
