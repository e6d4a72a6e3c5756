"""Every scenario builds and steps at 10,000 agents with its default graph and task (slow).

Larger sizes (100,000 and 1,000,000 agents) are run by ``python -m benchmarks.model_step``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from models import REGISTRY


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_scenario_runs_at_ten_thousand_agents_with_its_defaults(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a sparse sbm may leave a few isolated agents
        m = REGISTRY[name](rng=0, n_agents=10_000, measures="fast")
    m.run_for(2)
    assert m.n_agents == 10_000 and np.isfinite(m.losses).all()
    assert m.csr.indices.size < 20 * 10_000  # the default graph stays sparse
    assert not m.mesa_built  # no Mesa objects until someone reads them
