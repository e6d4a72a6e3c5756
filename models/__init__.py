"""Scenarios: each a NeuralModel subclass with its own defaults, registered by name.

The command line, the browser app, sweeps and the contract tests find every scenario here.
"""

from __future__ import annotations

from models.gan_population import GANPopulation
from models.gossip_learning import GossipLearning
from models.social_learning import SocialLearning

REGISTRY = {
    "gan_population": GANPopulation,
    "gossip_learning": GossipLearning,
    "social_learning": SocialLearning,
}

__all__ = ["REGISTRY", "GANPopulation", "GossipLearning", "SocialLearning"]
