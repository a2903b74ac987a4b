"""Errors meant for people.

Every problem a user can cause (a bad sweep file, a CSV without the needed columns, an unknown
run id, an unwritable store) is raised as :class:`UserError` with one line that names the field,
the value and what was expected. The CLI prints that line and exits non-zero, without a traceback.
"""

from __future__ import annotations

import difflib
import re
from typing import Iterable


class UserError(Exception):
    """A problem with the user's input: printed as one line by the CLI, exit status 2."""


def unknown_choice(what: str, value: object, choices: Iterable[str]) -> UserError:
    """Build a UserError for an unknown key or value, listing the valid choices (and a close match)."""
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UserError(f"unknown {what} {value!r}{hint}; expected one of: {', '.join(choices)}")


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def safe_name(value: object, what: str) -> str:
    """``value`` as a name that is one path component (letters, digits, ``. _ + -``, not starting
    with a dot, at most 128 characters); UserError naming ``what`` otherwise. Every file name the
    toolkit derives from user text goes through this, so nothing is written outside the store."""
    text = str(value)
    if not _SAFE_NAME.fullmatch(text):
        raise UserError(f"{what}: {text!r} is not a safe name; expected 1-128 letters, digits, '.', '_', '+' or '-', "
                        f"not starting with '.' (it names a file in the store)")
    return text
