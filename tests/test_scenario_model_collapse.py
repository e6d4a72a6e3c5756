"""model_collapse: generated data flattens the models; a modest share of real data prevents it."""

from __future__ import annotations

from models import REGISTRY

SEEDS = (0, 1, 2)
START, STEPS = 200, 800


def _spread_and_loss(real_share: float, seed: int):
    m = REGISTRY["model_collapse"](rng=seed, real_share=real_share, collect_every=STEPS // 4)
    m.run_for(STEPS)
    df = m.model_dataframe().set_index("step")
    return df.loc[START], df.loc[STEPS]


def test_output_spread_collapses_without_real_data_and_holds_with_five_percent():
    for seed in SEEDS:
        trained, synthetic = _spread_and_loss(0.0, seed)
        _, anchored = _spread_and_loss(0.05, seed)
        # every run starts generated-data learning from the same trained models
        assert synthetic.output_spread < 0.85 * trained.output_spread
        assert synthetic.probe_loss > 1.5 * trained.probe_loss
        assert anchored.output_spread > 0.85 * trained.output_spread
        assert anchored.output_spread > synthetic.output_spread + 0.15
        assert anchored.probe_loss < 0.7 * synthetic.probe_loss
