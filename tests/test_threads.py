"""The threading layer (TBB, found without setup) and the per-call choice of threads."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from simulator import Population
from simulator.kernels import threads as T

ROOT = Path(__file__).resolve().parents[1]
INFO = (
    "import json, numpy as np; from simulator import Population;"
    "from simulator.kernels.threads import threading_info;"
    "Population(4, (3, 2)).train_step(np.ones((4, 5, 3)), np.ones((4, 5, 2)));"
    "print(json.dumps(threading_info()))"
)


def _info(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER",)}
    clean.pop("LD_LIBRARY_PATH", None)  # found without any loader path
    done = subprocess.run(
        [sys.executable, "-c", INFO],
        env=clean | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tbb_is_the_layer_without_any_environment_setting():
    info = _info()
    assert info["layer"] == "tbb" and info["requested"] == "default"
    assert info["tbb_library"] is not None and "libtbb.so.12" in info["tbb_library"]
    assert info["tbb_error"] is None


def test_numba_threading_layer_chooses_openmp_and_tbb_is_then_not_loaded():
    info = _info(NUMBA_THREADING_LAYER="omp")
    assert info["layer"] == "omp" and info["requested"] == "omp"
    assert info["tbb_library"] is None


def test_tbb_library_is_the_wheels_runtime():
    path = T.tbb_library()
    assert path is not None and os.path.isfile(path)


# ---------------------------------------------------------------- per-call thread count
def _feed(chooser: T.ThreadChooser, key, calls: int, seconds: dict[int, float]) -> list[int]:
    """Run ``calls`` calls of kind ``key`` (work 1.0) whose wall time depends on the threads."""
    used = []
    for _ in range(calls):
        threads, explored = chooser.choose(key, 2)
        call = T.ParallelCall(key, threads, 2, explored, 2, 0, 1.0, 0.0)
        chooser.record(key, call, seconds[threads])
        used.append(threads)
    return used


def test_chooser_keeps_two_threads_when_they_are_faster_and_tries_one_rarely():
    chooser = T.ThreadChooser()
    chooser.enabled = True
    used = _feed(chooser, "k", 640, {1: 2.0, 2: 1.1})  # two threads 1.8x as fast
    assert used[0] == 2 and used[-1] == 2
    period = 0.9 / 1.1 / chooser.EXPLORE_COST  # the gap over the cost: ~27 calls
    assert 0 < used[100:].count(1) <= 540 / period + 1
    time_lost = used[100:].count(1) * (2.0 - 1.1) / (540 * 1.1)
    assert time_lost < 2 * chooser.EXPLORE_COST


def test_chooser_moves_to_one_thread_on_a_busy_machine_and_back_when_it_is_quiet():
    chooser = T.ThreadChooser()
    chooser.enabled = True
    busy = _feed(chooser, "k", 200, {1: 1.0, 2: 3.0})  # two threads keep waiting
    assert busy[50:].count(1) > 0.9 * 150
    quiet = _feed(chooser, "k", 600, {1: 1.0, 2: 0.55})  # the other processes stopped
    assert quiet[300:].count(2) > 0.9 * 300  # back to two threads after a few tries


def test_one_slow_first_measurement_does_not_decide_for_long():
    """Two threads measured 3x slow once (a first call's page faults), then 1.8x as fast as
    one: the chooser is back on two threads within a few calls, not a whole period later."""
    chooser = T.ThreadChooser()
    chooser.enabled = True
    first = _feed(chooser, "k", 2, {1: 2.0, 2: 3.3})  # unmeasured call, then the slow one
    assert first == [2, 2]
    used = _feed(chooser, "k", 40, {1: 2.0, 2: 1.1})
    assert used[0] == 1  # one thread tried, and faster than the slow measurement
    assert used[1:3].count(2) >= 1  # two threads tried again at once
    assert used[4:].count(1) <= 2  # settled on two threads


def test_chooser_prefers_one_thread_when_two_are_barely_faster():
    chooser = T.ThreadChooser()
    chooser.enabled = True
    used = _feed(chooser, "k", 300, {1: 1.0, 2: 0.95})  # within the margin: steadier
    assert used[50:].count(1) > 0.8 * 250


def test_chooser_disabled_or_single_threaded_uses_all_threads_the_work_allows():
    chooser = T.ThreadChooser()
    chooser.enabled = False
    assert set(_feed(chooser, "k", 50, {1: 1.0, 2: 3.0})) == {2}
    chooser.enabled = True
    assert chooser.choose("other", 1) == (1, False)


def test_calls_measured_long_keep_all_threads_and_are_never_tried_on_one(monkeypatch):
    """A kind of call measured at ~0.1 s on all threads: every call gets all of them, no try on
    one (a try would cost a whole call). The same means for a short call choose one thread
    (equal arms: one thread is steadier), so the rule is what keeps the long one on all."""
    if numba.get_num_threads() < 2:
        pytest.skip("needs two threads")
    chooser = T.ThreadChooser()
    chooser.enabled = True
    monkeypatch.setattr(T, "CHOOSER", chooser)
    n_items, per_item = 1000, 1e5  # 1e8 FLOPs a call
    for name, rate, want in (("test-long", 1e-9, 2), ("test-short", 1e-11, 1)):
        key = (name, int(math.log2(n_items * per_item)))
        kind = chooser.state(key)
        kind.mean[:] = [rate, rate]
        kind.calls = 5
        used = []
        for _ in range(40):
            call = T.parallel_begin(name, n_items, per_item)
            used.append((call.threads, call.explored))
            T.parallel_end(call)
            kind.mean[:] = [rate, rate]  # keep the arms as set (the calls are empty)
        assert chooser.long_call(key, n_items * per_item) == (want == 2)
        if want == 2:
            assert set(used) == {(2, False)}
        else:
            assert [t for t, _ in used].count(1) > 30


def test_parallel_begin_sizes_the_call_and_parallel_end_restores_numba_settings():
    before_threads, before_chunk = numba.get_num_threads(), numba.get_parallel_chunksize()
    call = T.parallel_begin("test-small", 10, 100.0)  # far too little work for two threads
    assert call.threads == 1 and numba.get_num_threads() == 1
    assert numba.get_parallel_chunksize() == int(T.WORK_PER_PIECE / 100.0)
    T.parallel_end(call)
    assert numba.get_num_threads() == before_threads
    assert numba.get_parallel_chunksize() == before_chunk


def test_training_gives_the_same_numbers_whatever_the_chooser_picks(monkeypatch):
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((3000, 16, 8)), rng.standard_normal((3000, 16, 1))
    results, used = [], []

    class Forced(T.ThreadChooser):
        def __init__(self, threads: int):
            super().__init__()
            self.threads = threads

        def choose(self, key, most, work=0.0):
            used.append(min(self.threads, most))
            return min(self.threads, most), False

    for threads in (1, numba.get_num_threads()):
        monkeypatch.setattr(T, "CHOOSER", Forced(threads))
        pop = Population(3000, (8, 16, 1), seed=4)
        for _ in range(3):
            pop.train_step(X, Y)
        results.append(pop.params.copy())
    assert used[:3] == [1, 1, 1] and used[-1] == numba.get_num_threads()
    np.testing.assert_array_equal(results[0], results[1])


def test_many_tiny_networks_are_sized_for_every_thread(monkeypatch):
    # 10,000 agents of 1-1 networks: 192 FLOPs of products each, but ~350 ns of work per
    # training step (the calls around the products): the sizing must see enough for 2 threads
    offered = []

    class Recording(T.ThreadChooser):
        def choose(self, key, most, work=0.0):
            offered.append(most)
            return 1, False

    monkeypatch.setattr(T, "CHOOSER", Recording())
    pop = Population(10_000, (1, 1), seed=0, dtype="float32")
    pop.train_step(np.ones((10_000, 32, 1), np.float32), np.ones((10_000, 32, 1), np.float32))
    assert offered == [min(2, numba.get_num_threads())]
