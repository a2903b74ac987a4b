"""A pre-imported trainer process that forks one child per run: the local executor's runs start at once.

A training process spends seconds importing torch and transformers (about 4.5 s on an idle 2-core
machine, 10 s on a slower one) before its first step; at the demo's scale that is a third of a
small run. The local executor therefore starts one *zygote* per launch, ``python -m
scaling.launch.zygote MODULE...``, which imports those modules once and, for every run, forks a
child that runs :func:`scaling.train.entry.main` with the run's arguments. Forking is safe because
the zygote itself never runs torch code (no thread pool exists yet when it forks); each child sets
its own torch threads, as a fresh process would. On a host with a CUDA device the executor does
not use it (:func:`scaling.launch.local.cuda_host`): CUDA cannot be used in a child forked after
an import initialised it.

The protocol is one JSON line per message. The executor writes a request to the zygote's stdin,
``{"argv": [...], "log": PATH, "env": {...}, "cwd": DIR, "name": RUN_ID}``; the zygote answers on
its stdout ``{"pid": PID}`` (or ``{"error": TEXT}``) and, when a child ends, ``{"exit": PID,
"code": CODE}`` with CODE as :attr:`subprocess.Popen.returncode` has it (negative: killed by that
signal). Each child runs in the run's environment and directory, its stdout and stderr appended to
the run's log, its process name (``/proc/PID/comm``) the run id, so that ``scaling cancel`` can
tell it from a stranger that reused its pid. When its stdin closes (the launch ended, or died) the
zygote reaps the children still running and exits; it ignores SIGINT, which the children, in the
same process group, receive and handle (they checkpoint and stop).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Sequence

#: what every child imports (the trainer); :func:`preload_modules` adds the model families' code
TRAINER_MODULES = ("scaling.train.entry", "scaling.train.loop", "scaling.runs.materialise", "scaling.data.prepared",
                   "scaling.evaluation.hooks", "transformers")
_PR_SET_NAME = 15


def preload_modules(families: Sequence[str]) -> list[str]:
    """The modules a zygote imports for runs of these model families (transformers' modeling code)."""
    return [*TRAINER_MODULES, *(f"transformers.models.{f}.modeling_{f}" for f in sorted(set(families)))]


class Zygote:
    """The executor's side: start the zygote, fork runs from it, learn their exit codes."""

    def __init__(self, modules: Sequence[str], env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", __name__, *modules], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        self._replies: list[dict] = []
        self._exits: dict[int, int] = {}
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="zygote-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                if "exit" in message:
                    self._exits[int(message["exit"])] = int(message["code"])
                else:
                    self._replies.append(message)
                self._cond.notify_all()
        with self._cond:
            self._replies.append({"error": "the zygote process ended"})
            self._cond.notify_all()

    def start(self, argv: Sequence[str], log: Path, env: dict[str, str], name: str) -> "ForkedRun":
        """Fork a child that runs ``scaling.train.entry.main(argv)``; raises OSError if it could not."""
        request = {"argv": list(argv), "log": str(log), "env": env, "cwd": os.getcwd(), "name": name}
        with self._cond:
            try:
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                raise OSError("the zygote process ended") from None
            while not self._replies:
                self._cond.wait()
            reply = self._replies.pop(0)
        if "pid" not in reply:
            raise OSError(reply.get("error", "the zygote did not fork"))
        return ForkedRun(self, int(reply["pid"]))

    def exit_code(self, pid: int) -> int | None:
        """The child's exit code, None while it runs; 1 if the zygote died and the child is gone."""
        with self._cond:
            if pid in self._exits:
                return self._exits[pid]
        if self.proc.poll() is None or _alive(pid):
            return None
        return 1

    def close(self) -> None:
        """No more runs: the zygote exits once its children have ended."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass  # already closed: the zygote is on its way out
        self.proc.wait()
        self._reader.join(timeout=5)


class ForkedRun:
    """A child of the zygote, with the part of :class:`subprocess.Popen` the executor uses."""

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote, self.pid = zygote, pid

    def poll(self) -> int | None:
        return self.zygote.exit_code(self.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _send(message: dict) -> None:
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass  # the executor is gone; the children still run to their end


def _reap(children: set[int], block: bool = False) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        _send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _child(request: dict) -> None:
    """In the forked child: become the run's training process, then exit with its code."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            ctypes.CDLL(None).prctl(_PR_SET_NAME, request["name"].encode()[:15], 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl (not Linux): the name only helps `scaling cancel` recognise the child
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        sys.stdout.reconfigure(write_through=True)
        sys.stderr.reconfigure(write_through=True)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["scaling.train.entry", *request["argv"]]
        from scaling.train.entry import main

        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main(modules: Sequence[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in modules:
        try:
            __import__(name)
        except ImportError:
            pass  # the child imports what it needs (and reports what is missing)
    children: set[int] = set()
    fd, pending = sys.stdin.fileno(), b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        _reap(children)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                request = json.loads(line)
            except ValueError:
                _send({"error": f"not a request: {line[:80]!r}"})
                continue
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(request)
            children.add(pid)
            _send({"pid": pid})
    _reap(children, block=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
