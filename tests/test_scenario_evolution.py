"""evolution: selection makes one lineage; the novelty detector keeps diversity at little cost."""

from __future__ import annotations

import numpy as np

from models import REGISTRY

SEEDS = (0, 1, 2)
STEPS = 300


def _run(threshold: float, seed: int):
    m = REGISTRY["evolution"](
        rng=seed, n_agents=32, novelty_threshold=threshold, collect_every=STEPS
    )
    m.run_for(STEPS)
    df = m.model_dataframe()
    return df.iloc[0], df.iloc[-1]


def test_selection_homogenizes_and_the_detector_holds_diversity_at_similar_fitness():
    losses = {0.0: [], 0.015: []}
    for seed in SEEDS:
        start, plain = _run(0.0, seed)
        _, detector = _run(0.015, seed)
        # without the detector selection erases the initial variety: one lineage remains
        assert plain.aligned_distance < 0.2 * start.aligned_distance
        assert plain.function_dispersion < 0.01
        # with it the population stays several times more diverse, in functions and weights
        assert detector.function_dispersion > 1.5 * plain.function_dispersion
        assert detector.aligned_distance > 3 * plain.aligned_distance
        assert detector.novelty_weight > 0 and plain.novelty_weight == 0
        losses[0.0].append(plain.probe_loss)
        losses[0.015].append(detector.probe_loss)
    # ... while staying about as fit
    assert np.mean(losses[0.015]) < 1.4 * np.mean(losses[0.0])


def test_the_detector_keeps_the_probe_predictions_for_the_novelty(monkeypatch):
    """The detector only reads the networks (``changes_networks = False``): the fitness's
    novelty reuses its probe pass (one pass of every agent per step, not two) and the run is
    the same as with the predictions computed again."""
    from simulator.population import Population
    from simulator.social import HomogenizationDetector

    def run() -> tuple[np.ndarray, int]:
        calls = []
        predict = Population.predict
        monkeypatch.setattr(
            Population, "predict", lambda *a, **k: calls.append(1) or predict(*a, **k)
        )
        m = REGISTRY["evolution"](rng=3, n_agents=40, novelty_weight=0.5, measures="fast")
        m.run_for(6)
        monkeypatch.setattr(Population, "predict", predict)
        return m.model_dataframe().to_numpy(), len(calls)

    kept, passes = run()
    monkeypatch.setattr(HomogenizationDetector, "changes_networks", True)
    again, passes_again = run()
    np.testing.assert_array_equal(kept, again)
    assert passes_again - passes == 6  # the second pass of each step, gone
