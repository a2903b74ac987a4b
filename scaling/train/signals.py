"""The one stop flag of a training process: set by the signals that mean "checkpoint and stop".

SIGTERM (``scancel``, ``scontrol requeue``, preemption, the local executor's cancel), SIGINT
(Ctrl-C) and SIGUSR2 (a SLURM time-limit warning or preemption notice) set it; the training loop
polls it between steps, saves a checkpoint and returns ``stopped``. It remembers which signal came,
and a SIGUSR2 is not hidden by a SIGTERM that follows it (the job's own requeue sends one), so a
SLURM job knows to requeue itself.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """Callable: true once one of :data:`STOP_SIGNALS` arrived; ``signum`` says which."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> "StopSignal":
        """Handle the stop signals in this process from now on (main thread only)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum != signal.SIGUSR2:
            self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None
