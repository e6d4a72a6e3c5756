"""A scenario of your own, with a social rule of your own: gossip learning with zealots.

    .venv/bin/python examples/own_scenario.py
    simulator run examples/own_scenario.py:ZealotGossip --steps 100 --set zealot_share=0.2
    simulator models examples/own_scenario.py:ZealotGossip

Question
    A share of the agents never learns and never listens (zealots: after every step their
    networks are put back as they were at the start). Everyone else fits the same teacher from
    its own data and averages weights with its neighbours. How much does a small share of
    zealots hold the whole crowd back?

Watch
    ``learner_probe_loss`` (the learners' mean probe loss) and ``zealot_distance`` (the
    learners' mean squared weight distance to the zealots' mean, relative to step 0; NaN
    without zealots) as ``zealot_share`` grows.

docs/OWN_SCENARIOS.md walks through this file; tests/test_docs.py runs it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from simulator import NeuralModel
from simulator.params import Param, with_defaults
from simulator.social import SocialRule


class Zealots(SocialRule):
    """Agents that never change: after every step their parameter rows are restored.

    Vectorized: one fancy-indexed copy of ``k`` rows per step, no loop over agents.
    """

    name = "zealots"

    def __init__(self, share: float):
        self.share = share
        self.agents: np.ndarray | None = None  # int64 (k,): the zealots' rows
        self.saved: np.ndarray | None = None  # (k, n_params): their parameters at the start

    def graph_changed(self, model: NeuralModel) -> None:
        """Called once when the model is built (and again if its graph changes)."""
        if self.agents is None:
            k = round(self.share * model.n_agents)
            self.agents = np.linspace(0, model.n_agents - 1, k).round().astype(np.int64)
            self.saved = model.population.params[self.agents].copy()

    def after_train(self, model: NeuralModel) -> None:
        """After training and the other rules: put the zealots' networks back."""
        model.population.params[self.agents] = self.saved


class ZealotGossip(NeuralModel):
    """Gossip learning with zealots: agents that never learn nor listen hold the crowd back."""

    params = with_defaults(
        n_agents=40,
        graph="watts_strogatz",
        graph_params={"k": 4, "p": 0.1},
        task="teacher",
        task_params={"noise": 0.1},
        hidden=(16,),
        lr=0.05,
        init="shared",
        init_noise=0.3,
        mixing_rate=0.5,
        measures="fast",
        zealot_share=Param(0.1, "float", 0, 0.5, help="share of agents that never change"),
    )
    extra_measure_names: ClassVar[tuple[str, ...]] = ("learner_probe_loss", "zealot_distance")
    watch: ClassVar[tuple[str, ...]] = ("learner_probe_loss", "zealot_distance", "probe_loss")

    def make_rules(self) -> list[SocialRule]:
        """The rules the parameters switch on (gossip here), then the zealots, last."""
        self.zealots = Zealots(self.p["zealot_share"])
        return [*super().make_rules(), self.zealots]

    def extra_measures(self) -> dict[str, float]:
        """This scenario's own measures (named in ``extra_measure_names``)."""
        learners = np.ones(self.n_agents, dtype=bool)
        learners[self.zealots.agents] = False
        probe_Y = self.task.probe_Y
        losses = self.population.loss(self.task.probe_X, probe_Y)
        params = self.population.params.astype(np.float64)
        if self.zealots.agents.size == 0:
            return {"learner_probe_loss": float(losses.mean()), "zealot_distance": float("nan")}
        target = self.zealots.saved.astype(np.float64).mean(axis=0)
        distance = float(((params[learners] - target) ** 2).sum(axis=1).mean())
        if not hasattr(self, "_start_distance"):
            self._start_distance = distance
        return {
            "learner_probe_loss": float(losses[learners].mean()),
            "zealot_distance": distance / self._start_distance,
        }


def main() -> None:
    """Zealot shares 0, 0.1, 0.2, 0.3 x 3 seeds, 100 steps: the learners' final probe loss."""
    print("zealot_share  learner_probe_loss  zealot_distance  (mean of 3 seeds, step 100)")
    for share in (0.0, 0.1, 0.2, 0.3):
        finals = []
        for seed in range(3):
            model = ZealotGossip(rng=seed, zealot_share=share)
            model.run_for(100)
            finals.append(model.model_dataframe().iloc[-1][list(model.extra_measure_names)])
        loss, pull = np.mean(np.array(finals, dtype=float), axis=0)
        print(f"{share:12.1f}  {loss:18.4f}  {pull:15.3f}")


if __name__ == "__main__":
    main()
