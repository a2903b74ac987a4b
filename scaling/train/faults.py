"""Deterministic fault injection: make a training process die, or its disk fill up, at a chosen point.

The tests of crash safety use it instead of racing a kill against training (and anyone can use it
to reproduce a fault). ``$SCALING_FAULT`` holds ``ACTION:POINT:N``: the N-th time (counted from 1
in this process) the trainer reaches POINT, it does ACTION.

Points: ``step`` (the end of a training step, after its rows and any checkpoint were written) and
``checkpoint`` (inside a checkpoint write, after the data went to the temporary file and before it
is renamed into place). Actions: ``kill`` (SIGKILL to itself, as ``kill -9``: nothing runs after
it) and ``enospc`` (an ``OSError`` "No space left on device", as a full disk raises it).

Unset (the default), :func:`fault_point` does nothing.
"""

from __future__ import annotations

import errno
import os
import signal
from collections import Counter

from scaling.errors import UserError

FAULT_ENV = "SCALING_FAULT"
ACTIONS = ("kill", "enospc")
POINTS = ("step", "checkpoint")

_reached: Counter[str] = Counter()


def fault_point(point: str, where: object = "") -> None:
    """Count one arrival at ``point`` and do the fault ``$SCALING_FAULT`` asks for here, if any
    (``where``: the file being written, named in an ENOSPC error)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    action, at, count = _parse(spec)
    if at != point:
        return
    _reached[point] += 1
    if _reached[point] != count:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))


def _parse(spec: str) -> tuple[str, str, int]:
    parts = spec.split(":")
    if len(parts) != 3 or parts[0] not in ACTIONS or parts[1] not in POINTS or not parts[2].isdigit() or int(parts[2]) < 1:
        raise UserError(f"${FAULT_ENV} = {spec!r}: expected ACTION:POINT:N with ACTION one of {', '.join(ACTIONS)}, "
                        f"POINT one of {', '.join(POINTS)} and N >= 1, e.g. kill:step:5")
    return parts[0], parts[1], int(parts[2])
