"""Running the runs of a sweep on a ``concurrent.futures`` executor, recording each as it ends.

Backends
--------
``local`` (default)
    A loky process pool (fork + exec: the driver, which may hold threads, is never forked),
    one process per core, ``NUMBA_NUM_THREADS=1`` in each worker.
``dask``
    An existing Dask distributed cluster (``scheduler="tcp://host:8786"``, or the
    ``NEUROPOP_DASK_SCHEDULER`` environment variable, or a ``distributed.Client``), through
    ``Client.get_executor``. Without an address a ``LocalCluster`` is started. Workers need this
    package installed; start them with ``--nthreads 1`` (each run also sets one Numba thread).
``serial``
    In the driver process, one run after another (debugging, profiling; also the backend for
    a scenario defined only in a notebook: worker processes find scenarios in ``models``).

Failures
--------
A run that raises is recorded with ``status="failed"`` and its error; the sweep goes on. If a
local worker process dies (killed, out of memory), the pool is broken: every run in flight on
it is resubmitted to a new pool, up to ``max_attempts`` (3) times, then recorded failed with
"worker died". Dask reschedules runs of a lost worker itself (``allowed-failures``, 3) and
then reports ``KilledWorker``, recorded as a failed run. Failed runs are retried by resuming.
"""

from __future__ import annotations

import os
import time
import traceback
import warnings
from collections import deque
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from typing import Any

import numpy as np

from simulator.compile_ahead import usable_cpus
from simulator.config import ParameterError, fail
from simulator.sweep.progress import Progress
from simulator.sweep.spec import Run, SweepSpec
from simulator.sweep.store import SweepStore

__all__ = ["BACKENDS", "check_backend", "execute_run", "run_sweep"]

BACKENDS = ("local", "dask", "serial")
SCHEDULER_ENV = "NEUROPOP_DASK_SCHEDULER"
TICK = 5.0  # seconds between progress ticks while waiting


class Orphaned(RuntimeError):
    """The sweep's process is gone: nobody will record this run."""


def _stop_if_orphaned(task: dict[str, Any]) -> None:
    """Raise :class:`Orphaned` in a local worker whose sweep process has died (killed, say):
    its queued runs and their checkpoints would only compete with the resumed sweep's. A
    worker of the local backend is a child of the sweep's process (``task["parent"]``); when
    that dies, the worker's parent becomes another process."""
    parent = task.get("parent")
    if parent is not None and os.getppid() != parent:
        raise Orphaned(f"the sweep's process {parent} is gone")


def execute_run(task: dict[str, Any]) -> dict[str, Any]:
    """Run one model and return its measures; never raises for an error of the run itself.

    ``task`` holds ``model, params, seed, steps, record, measures, single_thread``. Returns a
    dict with ``status`` ("ok" or "failed"), ``seconds``, ``error``, ``traceback``, ``final``
    (measure -> value at the last step), ``steps`` (DataFrame: step + measures, the recorded
    steps) and ``agents`` (per-agent DataFrame or None). ``seconds`` leaves out the imports
    of a fresh worker (not the loading of cached kernels on their first call).
    """
    start = time.perf_counter()
    out: dict[str, Any] = {"run_id": task.get("run_id")}
    threads = None
    model = None
    try:
        if task.get("single_thread"):
            import numba

            threads = numba.get_num_threads()
            numba.set_num_threads(1)
        from simulator.registry import get_model, load_registry

        load_registry()
        start = time.perf_counter()
        _stop_if_orphaned(task)  # a queued run of a sweep that was killed: not started
        model, out["resumed_from"] = _start(task, get_model(task["model"]))
        # a swept parameter this run does not set (another [[combinations]] entry does): the
        # value the model used, for its tables' column
        out["used"] = {
            name: model.config[name]
            for name in task.get("swept", ())
            if name not in task["params"] and name in model.config
        }
        _advance(model, task)
        table = model.model_dataframe()
        if not len(table) or int(table["step"].iloc[-1]) != model.steps:
            model.collect()
            table = model.model_dataframe()
        table, names = _recorded(table, task, model)
        agents = model.agents_dataframe()
        out.update(
            status="ok",
            error="",
            final={n: float(v) for n, v in table.iloc[-1][names].items()},
            steps=table.reset_index(drop=True),
            agents=agents if len(agents) else None,
        )
    except Exception as exc:  # a run's own error is data
        out.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        if model is not None:  # the steps it collected before it stopped are kept
            out["steps"] = _steps_so_far(model, task)
    finally:
        if threads is not None:
            import numba

            numba.set_num_threads(threads)
    out["seconds"] = time.perf_counter() - start
    return out


def _recorded(table: Any, task: dict[str, Any], model: Any) -> tuple[Any, list[str]]:
    """The rows and measures of a run's table the sweep records (``record``: every step, the
    end, or every k-th step and the last one), and the measures' names."""
    names = [n for n in (task.get("measures") or model.measure_names) if n in table.columns]
    table = table[["step", *names]]
    record = task.get("record", "every")
    if record == "end":
        table = table.iloc[-1:]
    elif isinstance(record, int):
        steps = table["step"]
        table = table[(steps % record == 0) | (steps == model.steps)]
    return table, names


def _steps_so_far(model: Any, task: dict[str, Any]) -> Any:
    """The recorded rows of a run that stopped early (an error, a divergence): the steps its
    collector holds (cut to those every reporter recorded, if it stopped in a collect), or
    None when there are none or they cannot be read."""
    from simulator.runfolder import trim_collector

    try:
        trim_collector(model)
        table = model.model_dataframe()
        if not len(table):
            return None
        return _recorded(table, task, model)[0].reset_index(drop=True)
    except Exception:  # the failure itself is what the run reports
        return None


def _start(task: dict[str, Any], cls: type) -> tuple[Any, int]:
    """The run's model: continued from its checkpoint when one is there, else built."""
    ck = task.get("checkpoint")
    if ck and os.path.isfile(ck["path"]):
        from simulator.checkpoint import CheckpointError, load

        try:
            model = load(ck["path"], model_class=cls)
            if model.steps <= task["steps"]:
                return model, int(model.steps)
        except CheckpointError:
            pass  # a damaged checkpoint: start over
    return cls(rng=task["seed"], **task["params"]), 0


def _advance(model: Any, task: dict[str, Any]) -> None:
    """Step to ``task["steps"]``, checkpointing every K steps; an exploding loss (above
    DIVERGENCE_FACTOR x max(1, median initial loss)) raises DivergenceError."""
    from simulator.config import DivergenceError
    from simulator.runfolder import DIVERGENCE_FACTOR, explosion

    ck = task.get("checkpoint")
    initial = np.asarray(model.losses, dtype=np.float64)
    limit = DIVERGENCE_FACTOR * max(1.0, float(np.nanmedian(initial))) if initial.size else 0.0
    with warnings.catch_warnings():  # the check below reports exploding losses itself
        warnings.filterwarnings("ignore", message="training losses are exploding")
        while model.steps < task["steps"] and model.running:  # running: Mesa's own stop
            _stop_if_orphaned(task)
            model.step()
            why = explosion(model, limit)
            if why:
                raise DivergenceError(why, model.steps, np.empty(0, np.int64), model.losses)
            every = ck["every"] if ck else 0
            if every and model.steps % every == 0 and model.steps < task["steps"]:
                from simulator.checkpoint import save

                save(model, ck["path"])


def check_backend(backend: str, workers: int | None) -> None:
    """Raise ParameterError unless ``backend`` is known and ``workers`` is None or >= 1."""
    if backend not in BACKENDS:
        raise fail("backend", backend, "one of " + ", ".join(map(repr, BACKENDS)))
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise fail("workers", workers, "an integer >= 1 (or None: every core)")


class _SerialExecutor(Executor):
    """Runs each call at submit time, in this process."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class _Pool:
    """An executor for one backend, recreated when a local pool breaks."""

    def __init__(self, backend: str, workers: int | None, scheduler: Any):
        check_backend(backend, workers)
        self.backend, self.generation = backend, 0
        self.workers = workers or usable_cpus()
        self.client = self.cluster = None
        self._own_client = False
        if backend == "dask":
            self._connect(scheduler or os.environ.get(SCHEDULER_ENV))
        self.executor = self._make()
        self._threads_checked = 0.0

    def _connect(self, scheduler: Any) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ParameterError(
                "backend='dask' needs dask.distributed: pip install 'neuropop[distributed]'"
            ) from None
        if isinstance(scheduler, Client):
            self.client = scheduler
            return
        if scheduler is None:
            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                env={"NUMBA_NUM_THREADS": "1"},
            )
            scheduler = self.cluster
        try:
            self.client, self._own_client = Client(scheduler, timeout="20s"), True
        except (OSError, TimeoutError) as exc:
            raise ParameterError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None

    def _make(self) -> Executor:
        if self.backend == "serial":
            return _SerialExecutor()
        if self.backend == "dask":
            return self.client.get_executor(pure=False)
        from loky import ProcessPoolExecutor

        # idle workers exit after a minute: orphans of a killed driver do not linger
        return ProcessPoolExecutor(self.workers, timeout=60, env={"NUMBA_NUM_THREADS": "1"})

    @property
    def capacity(self) -> int:
        """Runs to keep in flight: two per worker thread (a queue, never the whole sweep)."""
        if self.backend == "serial":
            return 1
        if self.backend == "dask" and time.monotonic() - self._threads_checked > 10:
            self._threads_checked = time.monotonic()
            self.workers = max(sum(self.client.nthreads().values()), 1)
        return 2 * self.workers

    def submit(self, task: dict[str, Any]) -> Future:
        try:
            return self.executor.submit(execute_run, task)
        except BrokenExecutor:
            self.restart()
            return self.executor.submit(execute_run, task)

    def restart(self) -> None:
        """Replace a broken local pool by a new one."""
        self.executor.shutdown(wait=False)
        self.executor = self._make()
        self.generation += 1

    def close(self, kill: bool = False) -> None:
        if self.backend == "local":
            self.executor.shutdown(wait=not kill, kill_workers=kill)
        else:
            self.executor.shutdown(wait=not kill)
        if self._own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _task(
    spec: SweepSpec, run: Run, single_thread: bool, checkpoints: Any = None
) -> dict[str, Any]:
    ck = None
    if checkpoints is not None:
        folder, every = checkpoints
        ck = {"path": str(folder / f"{run.run_id}.npz"), "every": every}
    return {
        "checkpoint": ck,
        "run_id": run.run_id,
        "model": run.model,
        "params": run.params,
        "seed": run.seed,
        "steps": run.steps,
        "record": spec.record,
        "measures": spec.measures,
        "single_thread": single_thread,
        "swept": spec.swept,
    }


def run_sweep(
    spec: SweepSpec,
    runs: list[Run],
    store: SweepStore,
    progress: Progress,
    backend: str = "local",
    workers: int | None = None,
    scheduler: Any = None,
    max_attempts: int = 3,
    checkpoint_every: int = 0,
) -> None:
    """Run ``runs`` on ``backend``, recording each in ``store`` as it finishes.

    At most ``2 x workers`` runs are in flight; results are written in the order they finish.
    With ``checkpoint_every=K`` each run saves a checkpoint every K steps to
    ``<out>/checkpoints/<run_id>.npz`` (absolute path: workers of a cluster need the folder on
    a shared file system), a run that finds its checkpoint continues from it, and the file is
    removed once the run is recorded.
    """
    checkpoints = None
    folder = (store.out / "checkpoints").resolve()
    if checkpoint_every or (folder.is_dir() and any(folder.glob("*.npz"))):
        # a resumed sweep uses the checkpoints it finds even without checkpoint_every
        folder.mkdir(exist_ok=True)
        checkpoints = (folder, checkpoint_every)
    if not runs:
        progress.close()
        return
    pool = _Pool(backend, workers, scheduler)
    helper = _compile_ahead(backend, runs[0])
    pending = deque(runs)
    inflight: dict[Future, tuple[Run, int]] = {}
    attempts: dict[str, int] = {}
    swept = spec.swept
    clean = False
    try:
        while pending or inflight:
            while pending and len(inflight) < (1 if helper is not None else pool.capacity):
                run = pending.popleft()
                task = _task(spec, run, backend != "serial", checkpoints)
                if backend == "local":  # its workers are this process's children
                    task["parent"] = os.getpid()
                inflight[pool.submit(task)] = (run, pool.generation)
            done, _ = wait(list(inflight), timeout=TICK, return_when=FIRST_COMPLETED)
            progress.tick()
            for future in done:
                run, generation = inflight.pop(future)
                try:
                    result = future.result()
                except BrokenExecutor as exc:
                    attempts[run.run_id] = attempts.get(run.run_id, 0) + 1
                    if generation == pool.generation:
                        pool.restart()
                    if attempts[run.run_id] < max_attempts:
                        pending.appendleft(run)
                        continue
                    result = _failed(run, f"worker died {max_attempts} times ({exc})")
                except Exception as exc:  # KilledWorker, lost connection, unpicklable...
                    result = _failed(run, f"{type(exc).__name__}: {exc}")
                store.record(run, result, swept)
                if checkpoints is not None and result.get("status") == "ok":
                    (checkpoints[0] / f"{run.run_id}.npz").unlink(missing_ok=True)
                progress.finished(result)
                if helper is not None:  # the kernels are compiled: every worker may start
                    helper.stop()
                    helper = None
        clean = True
    finally:
        if helper is not None:
            helper.stop()
        pool.close(kill=not clean)
        progress.close()


def _compile_ahead(backend: str, run: Run) -> Any:
    """On a cold kernel cache, a local sweep's first run goes alone, beside a helper process
    compiling its measures' and social kernels (:mod:`simulator.compile_ahead`); the other
    runs start once it ends, on compiled kernels. Without this, every worker would compile the
    same kernels in the same order at once. Returns the helper, or None (warm cache, another
    backend, one CPU, ``NEUROPOP_COMPILE_AHEAD=0``: every worker starts at once)."""
    from simulator import compile_ahead
    from simulator.registry import get_model
    from simulator.runprogress import kernels_cold

    if backend != "local":
        return None
    try:
        dtype = run.params.get("dtype", get_model(run.model).param_specs()["dtype"].default)
    except ParameterError:  # the run itself will say why
        return None
    if not (isinstance(dtype, str) and kernels_cold(dtype)):
        return None
    return compile_ahead.start(run.model, run.params)


def _failed(run: Run, error: str) -> dict[str, Any]:
    return {"run_id": run.run_id, "status": "failed", "error": error, "seconds": 0.0}
