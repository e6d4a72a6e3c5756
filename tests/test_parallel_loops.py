"""Every parallel kernel a model step calls holds no parallel loops but its ``prange`` loops.

Numba turns an array expression in a ``parallel=True`` function (``np.zeros(n)``, ``a.sum()``,
``a[:] = 0`` outside the ``prange``) into a parallel loop of its own, and the chunk size the
thread sizing sets for the agents' loop (:func:`simulator.kernels.threads.parallel_begin`) then
cuts that loop too: ``np.zeros(nnz)`` in ``confident_edges``, in pieces of one or two entries,
took 9-17 ms in a kernel of 0.25 ms. The kernels are caught here from what really runs: the
scenarios' steps with every parallel call forced through the sized path, each kernel compiled
afresh (cached code keeps no diagnostics) for the arguments it was called with.
"""

from __future__ import annotations

import inspect
import warnings

import numba
import pytest

from simulator.kernels import measure_weights as KW
from simulator.kernels import mlp
from simulator.kernels import sized as SZ
from simulator.kernels import threads as T
from simulator.registry import get_model

SCENARIOS = ("gossip_learning", "social_learning", "polarization", "evolution", "gan_population")


def _parallel_loops(kernel, args) -> int:
    fresh = numba.njit(parallel=True, error_model="numpy")(kernel.py_func)
    fresh.compile(tuple(numba.typeof(a) for a in args))
    (result,) = fresh.overloads.values()
    return len(result.metadata["parfor_diagnostics"].get_parfors())


@pytest.mark.slow
def test_the_parallel_kernels_of_a_step_have_no_parallel_loops_but_their_pranges(monkeypatch):
    seen: dict[str, tuple] = {}

    def recording_call(key, n_items, work, kernel, *args):
        seen.setdefault(kernel.__name__, (kernel, args))
        return kernel(*args)

    def recording_pass(*args):
        seen.setdefault("_population_pass", (original_pass, args))
        return original_pass(*args)

    original_pass = mlp._population_pass
    monkeypatch.setattr(T, "MIN_WORK_PER_THREAD", 1e-9)  # every call takes the parallel path
    monkeypatch.setattr(KW, "SERIAL_BELOW", 0)
    monkeypatch.setattr(SZ, "sized_call", recording_call)
    for module in (
        "simulator.model",
        "simulator.social",
        "simulator.kernels.measure_probe",
        "simulator.gan",
    ):
        monkeypatch.setattr(f"{module}.sized_call", recording_call)
    monkeypatch.setattr(mlp, "_population_pass", recording_pass)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in SCENARIOS:
            model = get_model(name)(rng=0, n_agents=1200)  # above the panel's exact size
            if name == "evolution":
                model.novelty_weight = 0.5  # the fitness then reads the novelty (a kernel)
            for _ in range(2):
                model.step()
    expected = {"confident_edges", "neighbour_predictions", "blend_targets", "mode_hits"}
    expected |= {"novelty_rms", "add_row_noise", "targets_doubtful"}
    assert expected | {"probe_pass", "_population_pass"} <= set(seen)
    loops = {name: _parallel_loops(kernel, args) for name, (kernel, args) in seen.items()}
    written = {
        name: inspect.getsource(kernel.py_func).count("prange(")
        for name, (kernel, _) in seen.items()
    }
    assert loops == written
