"""Compile a scenario's kernels in a second process while the first one builds the model.

With an empty kernel cache (the first run after an install or an upgrade) building a model and
taking its first step compiles some fifteen top-level Numba kernels, one after another, on one
core: 156 s for gossip_learning's defaults on a 2-core Zen 4 EPYC. The model's own order is
fixed: its build compiles the data kernels, the training kernel (for its initial losses), the
CKA baseline's CKA (95 s with the forward pass it used until 2026-12-07; its hidden layers now
come from NumPy), its first collect the measures (probe, weights, alignment, clusters: 60 s),
its first step the social kernels.

:func:`start` launches a helper process that builds the same scenario without those build-time
computations (its data are constant arrays of the task's shapes), collects once (the measures)
and takes one step (the social kernels, and the training kernel if the main process has not
compiled it by then). Each kernel it compiles goes into Numba's on-disk cache (under the lock of
:mod:`simulator.kernels.cache_lock`); when the main process reaches that kernel, it loads it
instead of compiling it: gossip_learning's build and first step then take 91 s, the main
process's own chain (data, training, CKA) plus a few seconds. Nothing the helper does can change
a result: it writes nothing but compiled code, which is the same whichever process compiles it
(its runs use the scenario's types and layouts, so its kernels have the main process's
signatures), and it is stopped (SIGTERM) when the main process exits.

Started by ``simulator run`` and the app's model builds when the kernels are cold for the run's
dtype (:func:`simulator.runprogress.kernels_cold`), the process may use at least two CPUs, and
``NEUROPOP_COMPILE_AHEAD`` is not ``0``; one at a time per process. The helper runs at a lower
priority (``nice`` 10), so on a busy machine it takes only what is left over.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["ENV", "Helper", "start"]

ENV = "NEUROPOP_COMPILE_AHEAD"
"""Set to ``0`` to never start a helper."""

MAX_AGENTS = 10_000
"""The helper's population is at most this large (small arrays, the same kernels: sizes above
the measures' exact limits take the same sampled paths)."""

NICE = 10


class Helper:
    """A running helper process; :meth:`stop` ends it (also called at the main process's exit)."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        atexit.register(self.stop)

    def running(self) -> bool:
        """Whether the helper is still compiling."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Terminate the helper if it is still running and reap it (idempotent)."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        atexit.unregister(self.stop)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS says, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this OS
        return os.cpu_count() or 1


_current: Helper | None = None  # this process's helper: one at a time


def start(name: str, params: dict[str, Any]) -> Helper | None:
    """A helper compiling scenario ``name``'s kernels for ``params`` (the build's keyword
    arguments), for a caller that found the kernel cache cold
    (:func:`simulator.runprogress.kernels_cold`).

    None when no helper is wanted (``NEUROPOP_COMPILE_AHEAD=0``, fewer than two usable CPUs,
    this process's previous helper still running, parameters the scenario refuses: its build
    says why) or none can be started (parameters that cannot be pickled, no interpreter to
    start): the build then compiles alone, as it would have anyway.
    """
    from simulator.config import ParameterError
    from simulator.params import resolve
    from simulator.registry import get_model

    global _current
    if os.environ.get(ENV, "1") == "0" or usable_cpus() < 2:
        return None
    if _current is not None and _current.running():
        return None
    try:
        cls = get_model(name)
        resolve(cls.param_specs(), params, cls.__name__)
    except ParameterError:
        return None
    try:
        payload = pickle.dumps((name, params))
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator.compile_ahead"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return None
    try:
        assert process.stdin is not None
        process.stdin.write(payload)
        process.stdin.close()
    except OSError:  # the helper died at once: nothing lost
        pass
    _current = Helper(process)
    return _current


@contextlib.contextmanager
def _replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` is ``value`` inside the block (the helper's own process only)."""
    old = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def compile_kernels(name: str, params: dict[str, Any]) -> Any:
    """What the helper does: build ``name`` with ``params`` (at most :data:`MAX_AGENTS` agents)
    without its build-time data, losses, CKA baseline and first collect (the main process
    compiles those kernels first), then collect (the measures), then take one step on constant
    data (the social kernels, which the main process needs last). Returns the model (for tests;
    the helper process only exits)."""
    import numpy as np

    from simulator.model import NeuralModel
    from simulator.population import Population
    from simulator.registry import get_model
    from simulator.tasks.base import Task, _float_dtype

    cls = get_model(name)
    params = dict(params)
    if isinstance(params.get("n_agents"), int | np.integer) and params["n_agents"] > MAX_AGENTS:
        params["n_agents"] = MAX_AGENTS

    def no_loss(self: Population, X: Any, Y: Any) -> np.ndarray:
        return np.zeros(self.params.shape[0])

    def constant(self: Task, step: int, batch_size: int, dtype: Any) -> tuple[np.ndarray, ...]:
        """Inputs 0, targets the first class (valid for every loss), in the task's shapes."""
        shape, dt = (self.n_agents, max(1, batch_size)), _float_dtype(dtype)
        Y = np.zeros((*shape, self.d_out), dt)
        Y[..., 0] = 1
        return np.zeros((*shape, self.d_in), dt), Y

    with _replaced(Task, "batch", constant):  # the main process compiles the data kernels first
        with (
            _replaced(NeuralModel, "collect", lambda self: None),
            _replaced(NeuralModel, "_cka_baseline", lambda self: 0.0),
            _replaced(Population, "loss", no_loss),
        ):
            model = cls(rng=0, **params)
        model.collect()  # the measures
        model.step()  # the social kernels (and the training's, when the build had none)
    return model


def main() -> None:
    """The helper process: read ``(name, params)`` pickled from stdin and compile."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICE)
    name, params = pickle.loads(sys.stdin.buffer.read())
    compile_kernels(name, params)


if __name__ == "__main__":
    main()
