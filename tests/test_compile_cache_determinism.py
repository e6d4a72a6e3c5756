"""The same seed gives the same numbers whether the kernels were just compiled or loaded from
Numba's on-disk cache (a first run after an install against every later run).

Found the hard way: a reduction compiled with both the ``reassoc`` and ``contract`` fast-math
flags came out of LLVM differently when compiled fresh and when loaded from the cache (the CKA
measure differed in its last bit between a cold and a warm run of one seed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Every scenario with its default measures (and the experiment kit's sequential schedule), a few
# steps; prints every model table at full precision and the parameters' SHA-256.
SCRIPT = """
import hashlib
from models import REGISTRY
for name, options in [(n, {}) for n in sorted(REGISTRY)] + [
        ("polarization", {"schedule": "random_order"}),
        ("gossip_learning", {"gossip_order": "dpsgd"})]:
    model = REGISTRY[name](rng=3, **options)
    model.run_for(4)
    print(name, options, hashlib.sha256(model.population.params.tobytes()).hexdigest())
    print(model.model_dataframe().to_csv())
"""


def _run(cache_dir: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(cache_dir))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_a_cold_and_a_warm_kernel_cache_give_the_same_numbers(tmp_path):
    cold = _run(tmp_path)  # an empty cache: every kernel compiled in this run
    assert any(tmp_path.rglob("*.nbi")), "the run did not fill the cache it was given"
    warm = _run(tmp_path)  # every kernel loaded from the cache the first run wrote
    if cold != warm:
        diff = [f"{a}\n  vs\n{b}" for a, b in zip(cold.splitlines(), warm.splitlines()) if a != b]
        pytest.fail("cold and warm runs differ:\n" + "\n".join(diff[:5]))
