"""A run's output folder as one unit, and a run loop that keeps what it computed when it stops.

The folder
----------
A run into ``out/`` writes into the sibling ``out/../.NAME.partial/`` (locked against a second
run) and, when it ends, fsyncs every file and renames that folder to ``out``: ``out`` is never
a mix of two runs, and a folder that exists is whole. An existing non-empty ``out`` is refused
before anything runs unless ``force`` (the new folder replaces it whole, once the run is over)
or ``resume``. Files are created exclusively and never through a symlink.

Stopping early
--------------
Divergence, Ctrl-C (SIGINT), SIGTERM or an error at step k still writes the steps collected so
far, with ``status`` in config.json, and the command exits with a documented code:

====  ==================================================================================
code  meaning
====  ==================================================================================
0     completed
1     a sweep finished with failed runs (``simulator sweep``)
2     bad command line, parameter or output folder: nothing was written
3     diverged: a loss, gradient or update became NaN/inf, or a training loss exceeded
      :data:`DIVERGENCE_FACTOR` x max(1, median initial loss); steps so far written
4     an error inside a step; steps so far written, traceback in ``error.log``
130   interrupted by Ctrl-C (SIGINT); 143: by SIGTERM. Steps so far and a checkpoint at the
      last whole step written: ``simulator run --resume OUT`` continues
====  ==================================================================================

Checkpoints
-----------
With ``checkpoint_every=K`` the model is saved (see :mod:`simulator.checkpoint`) to
``checkpoint.npz`` in the partial folder every K steps and at the end, so a killed run
continues from its last checkpoint (``resume``) and a finished one can be extended.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator.config import DivergenceError, ParameterError
from simulator.folder_lock import lock_folder, unlock_folder

__all__ = [
    "DIVERGENCE_FACTOR",
    "EXIT_CODES",
    "OutputFolder",
    "OutputFolderError",
    "RunOutcome",
    "explosion",
    "run_into",
    "trim_collector",
]

DIVERGENCE_FACTOR = 1e6
EXIT_CODES = {
    "completed": 0,
    "stopped": 0,
    "failed_runs": 1,
    "usage": 2,
    "diverged": 3,
    "error": 4,
    "interrupted": 130,
    "terminated": 143,
}
CHECKPOINT = "checkpoint.npz"


class OutputFolderError(ParameterError):
    """The output folder cannot be used (exists, is a file, is locked, is not writable)."""


class OutputFolder:
    """The final folder ``out`` and the partial sibling a run writes into.

    Parameters
    ----------
    out : path
        Where the run's files end up.
    force : bool
        Replace an existing ``out`` (whole, when the run ends) and any stopped partial run.
    resume : bool
        Continue the run of ``out``: from the partial folder's checkpoint (a killed run) or
        from ``out/checkpoint.npz`` (a finished or stopped run).
    """

    def __init__(self, out: str | os.PathLike, force: bool = False, resume: bool = False):
        self.out = Path(out)
        self.partial = self.out.parent / f".{self.out.name}.partial"
        self.force, self.resume = force, resume
        self._lock: int | None = None
        self._check()

    def _check(self) -> None:
        out = self.out
        if not out.name or out.name in (".", ".."):
            raise OutputFolderError(f"--out {str(out)!r}: give a folder name")
        if out.is_symlink():
            raise OutputFolderError(f"--out {out} is a symlink: give the folder itself")
        if out.exists() and not out.is_dir():
            raise OutputFolderError(f"--out {out} exists and is not a folder")
        busy = out.is_dir() and any(out.iterdir())
        if busy and not (self.force or self.resume):
            raise OutputFolderError(
                f"--out {out} exists and is not empty: --force replaces it (when the run ends), "
                "--resume continues its run, or choose another folder"
            )
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(f"cannot create the parent of --out {out}: {exc}") from None
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise OutputFolderError(f"cannot write into {out.parent} (for --out {out})")
        if self.partial.is_symlink() or (self.partial.exists() and not self.partial.is_dir()):
            self.partial.unlink()

    def checkpoint(self) -> Path | None:
        """The newest checkpoint of this run: the partial folder's, else ``out``'s, else None."""
        for folder in (self.partial, self.out):
            path = folder / CHECKPOINT
            if path.is_file() and not path.is_symlink():
                return path
        return None

    def open(self) -> Path:
        """Create (or, resuming, reuse) the locked partial folder; return it."""
        stopped = self.partial / CHECKPOINT
        if self.partial.is_dir():
            self._take_lock()
            if stopped.is_file() and not (self.force or self.resume):
                self.close()
                raise OutputFolderError(
                    f"a run into {self.out} was stopped and left a checkpoint in {self.partial}: "
                    f"--resume continues it, --force starts over"
                )
            if not self.resume:
                self.close()
                shutil.rmtree(self.partial)
        if not self.partial.is_dir():
            try:
                self.partial.mkdir()
            except OSError as exc:
                raise OutputFolderError(f"cannot create {self.partial}: {exc}") from None
            self._take_lock()
        return self.partial

    def _take_lock(self) -> None:
        busy = f"another run is writing to {self.out}"
        self._lock = lock_folder(self.partial, OutputFolderError, busy)

    def commit(self) -> Path:
        """fsync the partial folder's files and rename it to ``out`` (replacing an old one)."""
        (self.partial / ".lock").unlink(missing_ok=True)
        for path in self.partial.iterdir():
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as fh:
                    os.fsync(fh.fileno())
        _fsync_dir(self.partial)
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.rename(self.out, old)
        os.rename(self.partial, self.out)
        _fsync_dir(self.out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.close()
        return self.out

    def abandon(self) -> None:
        """Remove the partial folder of a run that never started (nothing was computed)."""
        self.close()
        if self.partial.is_dir() and not (self.partial / CHECKPOINT).exists():
            shutil.rmtree(self.partial, ignore_errors=True)

    def close(self) -> None:
        unlock_folder(self._lock)
        self._lock = None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class RunOutcome:
    """How a run ended: ``kind`` (a key of :data:`EXIT_CODES`), ``status`` (config.json's
    text), the exit ``code``, the ``paths`` written and the one-line ``message``."""

    kind: str
    status: str
    code: int
    message: str = ""
    paths: dict[str, Path] = field(default_factory=dict)


class _Stop:
    """SIGINT/SIGTERM handlers for the run loop: the first signal stops after the current step
    (the state stays whole, so a checkpoint can be written); a second Ctrl-C stops at once."""

    def __init__(self, notify: Any):
        self.signal: int | None = None
        self.notify = notify
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        self.notify("stopping after this step (Ctrl-C again to stop at once)")

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def explosion(model: Any, limit: float) -> str | None:
    """The divergence status when a training loss is NaN/inf or above ``limit`` (else None)."""
    losses = np.asarray(model.losses, dtype=np.float64)
    bad = np.flatnonzero(~(losses <= limit))
    if limit <= 0 or not bad.size:
        return None
    worst = float(np.max(np.where(np.isnan(losses), np.inf, losses)))
    return (
        f"diverged at step {model.steps}: agents {_agents(bad)} have training losses above "
        f"{limit:.3g} (largest {worst:.3g}); lower lr or set clip_norm (e.g. --set clip_norm=1)"
    )


def _agents(bad: np.ndarray) -> str:
    head = ", ".join(str(a) for a in bad[:10])
    return f"[{head}{', ...' if bad.size > 10 else ''}] ({bad.size} in all)"


def _loop(model: Any, steps: int, progress: Any, checkpoint: Any, limit: float) -> tuple:
    """Step ``model`` up to ``steps``; return (kind, status, traceback text or None)."""
    with _Stop(progress.write) as stop, warnings.catch_warnings():
        # the run's own divergence check reports exploding losses (as one line)
        warnings.filterwarnings("ignore", message="training losses are exploding")
        try:
            while model.steps < steps and stop.signal is None and model.running:
                model.step()
                exploded = explosion(model, limit)
                if exploded:
                    return "diverged", exploded, None
                progress.update(model)
                checkpoint(model, False)
        except DivergenceError as exc:
            agents = _agents(np.asarray(exc.agents))
            return "diverged", f"diverged at step {model.steps}: agents {agents} {exc.why}", None
        except KeyboardInterrupt:
            return "interrupted", f"interrupted at step {model.steps} (during the step)", "mid"
        except Exception as exc:  # a run's own error: keep what was computed
            first = (str(exc).splitlines() or [""])[0]
            status = f"error at step {model.steps}: {type(exc).__name__}: {first}"
            return "error", status, traceback.format_exc()
    if stop.signal is not None:
        kind = "interrupted" if stop.signal == signal.SIGINT else "terminated"
        return kind, f"{kind} at step {model.steps}", None
    if model.steps < steps:  # the Mesa habit: the model ended its own run
        return (
            "stopped",
            f"stopped by the model at step {model.steps} (model.running = False)",
            None,
        )
    return "completed", "completed", None


def trim_collector(model: Any) -> None:
    """After a stop in the middle of a collect, keep the steps every reporter recorded."""
    columns = model.measure_collector.model_vars
    n = min((len(v) for v in columns.values()), default=0)
    for name in columns:
        del columns[name][n:]


def run_into(
    model: Any,
    folder: OutputFolder,
    steps: int,
    scenario: str,
    *,
    command: list[str] | None = None,
    fmt: str = "csv",
    checkpoint_every: int = 0,
    progress: Any = None,
    divergence_factor: float = DIVERGENCE_FACTOR,
    run_info: dict[str, Any] | None = None,
) -> RunOutcome:
    """Run ``model`` to step ``steps`` into ``folder`` (opened by the caller) and commit it.

    ``progress`` has ``update(model)``, ``write(text)`` and ``close()`` (or is None). Returns a
    :class:`RunOutcome`; never raises for what happens inside a step.
    """
    from simulator.checkpoint import save
    from simulator.collect import write_run

    work = folder.partial
    info = {"scenario": scenario, "steps": steps, "fmt": fmt, **(run_info or {})}
    initial = np.asarray(model.losses, dtype=np.float64)
    limit = divergence_factor * max(1.0, float(np.nanmedian(initial))) if initial.size else 0.0

    def checkpoint(m: Any, final: bool) -> None:
        if checkpoint_every and (final or m.steps % checkpoint_every == 0):
            save(m, work / CHECKPOINT, extra=info)

    progress = progress or _Silent()
    try:
        kind, status, trace = _loop(model, steps, progress, checkpoint, limit)
    finally:
        progress.close()
    if trace == "mid":
        trim_collector(model)
        trace = None
    elif kind in ("completed", "stopped", "interrupted", "terminated"):
        if kind in ("interrupted", "terminated") or checkpoint_every:
            save(model, work / CHECKPOINT, extra=info)
    extra = {"divergence_limit": limit}
    if run_info:
        extra["run"] = run_info
    paths = write_run(model, work, scenario, steps, command, fmt, status=status, extra=extra)
    if trace:
        (work / "error.log").write_text(trace)
    if (work / CHECKPOINT).exists():
        paths["checkpoint"] = work / CHECKPOINT
    out = folder.commit()
    paths = {k: out / p.name for k, p in paths.items()}
    return RunOutcome(kind, status, EXIT_CODES[kind], _message(kind, status, out, model), paths)


def _message(kind: str, status: str, out: Path, model: Any) -> str:
    if kind == "completed":
        return ""
    rows = len(model.measure_collector.model_vars.get("step", []))
    tail = f"; wrote {rows} collected steps to {out}"
    if kind in ("interrupted", "terminated"):
        tail += f" and a checkpoint: continue with `simulator run --resume {out}`"
    if kind == "error":
        tail += f" (traceback in {out / 'error.log'})"
    return status + tail


class _Silent:
    def update(self, model: Any) -> None:
        pass

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass
