"""Retrains the fault matrix can stop, resume and kill: a launcher process that imports the project once
(about 10 s on a loaded 2-core host) and forks one child per retrain.

Each child runs the one sequence (`retrain.sequence.run_retrain`, `DirectRunner`, no Prefect) with
its own RETRAIN_* environment, and reports where it stands as JSON lines on the launcher's stdout:
`finished` after each stage, `trial` after each Optuna trial (when asked), `paused` when it stops after
the stage it was told to (it goes on at SIGUSR1, or dies at SIGKILL), then `outcome` or `error`.
The launcher never trains, so no thread pool exists when it forks.

`Launcher` is the parent's side (bench/fault_matrix.py, tests/test_fault_matrix.py).
Run as a script, this file is the launcher: commands come as JSON lines on stdin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

STAGES: tuple[str, ...] = (
    "fetch_stage",
    "dataset_stage",
    "train_stage",
    "ensemble_stage",
    "evaluate_stage",
    "gate_stage",
    "publish_stage",
    "report_stage",
)
"""The stages of `retrain.sequence.run_retrain`, in their order (train_stage: after every model's)."""

EVENT_TIMEOUT_S = 300.0
"""How long the parent waits for a child's next report (a loaded host trains slowly)."""

_OUT_LOCK = threading.Lock()


def _emit(**event: Any) -> None:
    """One JSON line on stdout (shorter than PIPE_BUF, so lines of several children never mix)."""
    line = json.dumps({"pid": os.getpid(), **event}, default=str) + "\n"
    with _OUT_LOCK:
        os.write(1, line.encode())


# -- the child -----------------------------------------------------------------------------------------


def _child(command: dict[str, Any]) -> None:
    """Run one retrain as `command` says, reporting as it goes; never returns."""
    from retrain import stages
    from retrain.run_dir import new_run_dir
    from retrain.sequence import DirectRunner, RetrainRequest, run_retrain
    from retrain.settings import load_settings

    pause_after: str | None = command.get("pause_after")
    announce_trials = bool(command.get("announce_trials"))

    def reached(stage: Callable[..., Any]) -> None:
        _emit(event="finished", stage=stage.__name__)
        if stage.__name__ == pause_after:
            _emit(event="paused", stage=stage.__name__)
            signal.sigwait({signal.SIGUSR1})

    def on_trial(progress: Any) -> None:
        _emit(event="trial", model=progress.model, done=progress.done, budget=progress.budget)

    class PausingRunner(DirectRunner):
        def call(self, stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            result = stage(*args, **kwargs)
            reached(stage)
            return result

        def call_each(self, stage: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
            extra = {"on_trial": on_trial} if stage is stages.train_stage and announce_trials else {}
            results = [stage(*args, **extra) for args in calls]
            reached(stage)
            return results

    try:
        if command.get("pause_before_start"):
            _emit(event="paused", stage=None)
            signal.sigwait({signal.SIGUSR1})
        settings = load_settings()
        request = RetrainRequest(settings=settings, run=new_run_dir(settings.paths.runs, "fault"))
        _emit(event="run_dir", path=str(request.run.root))
        outcome = run_retrain(PausingRunner(parallel_studies=False), request)
        _emit(event="outcome", outcome=outcome.model_dump(mode="json"))
        code = 0
    except BaseException as exc:  # the child reports every failure, then exits 1
        traceback.print_exc()
        _emit(event="error", type=type(exc).__name__, message=str(exc))
        code = 1
    sys.stderr.flush()
    os._exit(code)


def _fork(command: dict[str, Any]) -> int:
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        log = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 2)
        os.environ.update(command.get("env", {}))
        _child(command)
    return pid


def serve() -> None:
    """The launcher: `{"cmd": "run", ...}` forks a child (answers `started`), `{"cmd": "wait", "pid": n}`
    reaps it (answers `exited` with its status)."""
    import retrain.sequence  # noqa: F401  (import everything once, before any fork)
    import retrain.stages  # noqa: F401

    _emit(event="ready")
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "run":
            _emit(event="started", child=_fork(command))
        elif command["cmd"] == "wait":
            _, status = os.waitpid(command["pid"], 0)
            _emit(
                event="exited",
                child=command["pid"],
                code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            )


# -- the parent's side -----------------------------------------------------------------------------


class ChildReportError(RuntimeError):
    """A child did not report what the parent waited for (it failed, or took too long)."""


class Launcher:
    """The launcher process and the events its children report. Use as a context manager."""

    def __init__(self, scratch: Path, env: dict[str, str] | None = None) -> None:
        self.scratch = scratch
        self._events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._process = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(scratch / "launcher.log").open("ab"),
            env=env,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next(lambda e: e["event"] == "ready", "the launcher to import the project")
        self._runs = 0

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with self._changed:
                self._events.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self._events.append({"pid": None, "event": "launcher_gone"})
            self._changed.notify_all()

    def _send(self, **command: Any) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()

    def _next(self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float = EVENT_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events:
                    if match(event):
                        self._events.remove(event)
                        return event
                    if event["event"] == "launcher_gone":
                        raise ChildReportError(f"the launcher exited while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChildReportError(f"no report after {timeout:g} s while waiting for {what}")
                self._changed.wait(left)

    def start(
        self,
        env: dict[str, str],
        *,
        pause_after: str | None = None,
        pause_before_start: bool = False,
        announce_trials: bool = False,
    ) -> int:
        """Fork a retrain with `env` (RETRAIN_* settings); its pid."""
        self._runs += 1
        log = self.scratch / f"run-{self._runs:03d}.log"
        self._send(
            cmd="run",
            env=env,
            pause_after=pause_after,
            pause_before_start=pause_before_start,
            announce_trials=announce_trials,
            log=str(log),
        )
        return self._next(lambda e: e["event"] == "started", "a forked child")["child"]

    def start_paused_before(self, env: dict[str, str], stage: str) -> int:
        """Fork a retrain that stops just before `stage` (after the one before it); its pid, once paused."""
        previous = STAGES[STAGES.index(stage) - 1] if stage != STAGES[0] else None
        pid = self.start(env, pause_after=previous, pause_before_start=previous is None)
        self.wait_for(pid, "paused", stage=previous)
        return pid

    def wait_for(self, pid: int, event: str, **fields: Any) -> dict[str, Any]:
        """The child's next `event` with these fields; raises if it ends (or errs) first."""

        def match(e: dict[str, Any]) -> bool:
            if e["pid"] != pid:
                return False
            if e["event"] in {"error", "outcome"} and event not in {"error", "outcome"}:
                raise ChildReportError(f"child {pid} ended before {event} {fields}: {e}")
            return e["event"] == event and all(e.get(k) == v for k, v in fields.items())

        return self._next(match, f"{event} {fields} from child {pid}")

    def result(self, pid: int) -> dict[str, Any]:
        """The child's `outcome` or `error` report, once it ends."""
        return self._next(
            lambda e: e["pid"] == pid and e["event"] in {"outcome", "error"}, f"the end of {pid}"
        )

    def resume(self, pid: int) -> None:
        os.kill(pid, signal.SIGUSR1)

    def kill(self, pid: int) -> int:
        """SIGKILL the child and reap it; the signal it died of."""
        os.kill(pid, signal.SIGKILL)
        return self.reap(pid)["signal"]

    def reap(self, pid: int) -> dict[str, Any]:
        """Wait for the child to exit: its exit code or signal."""
        self._send(cmd="wait", pid=pid)
        return self._next(lambda e: e["event"] == "exited" and e["child"] == pid, f"child {pid} to exit")

    def run(self, env: dict[str, str]) -> dict[str, Any]:
        """One whole retrain: its `outcome` or `error` report."""
        pid = self.start(env)
        report = self.result(pid)
        self.reap(pid)
        return report

    def forget(self, pid: int) -> None:
        """Drop the reports a killed child left unread."""
        with self._changed:
            self._events = [e for e in self._events if e["pid"] != pid]


if __name__ == "__main__":
    serve()
