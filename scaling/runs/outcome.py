"""How one attempt to train a run ended, and the exit status that says so.

:func:`scaling.train.entry.train_run` returns an :class:`Outcome`; ``python -m scaling.train.entry``
exits with its :attr:`~Outcome.exit_code`, and the local executor reads it back with
:meth:`Outcome.from_exit_code`, so every outcome keeps its name across the process boundary.
A value compares equal to its name (``Outcome.DONE == "done"``).
"""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    """One attempt's end. ``done``: trained to its budget; ``skipped``: already finished (done or
    diverged) before this attempt; ``busy``: another live process holds the run; ``stopped``: asked
    to stop (a signal: preemption, time limit, cancel), checkpoint saved, a relaunch resumes it;
    ``failed``: an error (the run's status says which); ``diverged``: the loss became non-finite."""

    DONE = "done"
    SKIPPED = "skipped"
    BUSY = "busy"
    STOPPED = "stopped"
    FAILED = "failed"
    DIVERGED = "diverged"

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:  # as its name's, so that dictionaries find it by either
        return hash(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def exit_code(self) -> int:
        """The process exit status of this outcome (:data:`EXIT_CODES`)."""
        return EXIT_CODES[self]

    @classmethod
    def from_exit_code(cls, code: int) -> "Outcome":
        """The outcome a training process's exit status reports; any status not in
        :data:`EXIT_CODES` (a crash, a kill, 2 for bad input) is ``failed``."""
        return _BY_CODE.get(code, cls.FAILED)


#: exit status of each outcome: 0 done; 1 failed (2, the CLI's status for bad input, is read as
#: failed too); 3 busy; 4 diverged; 5 skipped; 75 stopped (EX_TEMPFAIL: try again later)
EXIT_CODES = {Outcome.DONE: 0, Outcome.FAILED: 1, Outcome.BUSY: 3, Outcome.DIVERGED: 4, Outcome.SKIPPED: 5,
              Outcome.STOPPED: 75}
_BY_CODE = {code: outcome for outcome, code in EXIT_CODES.items()}
