"""Scenarios: each a NeuralModel subclass with its own defaults, registered by name.

The command line, the browser app, sweeps and the contract tests find every scenario here.
"""

from __future__ import annotations

from models.federated import Federated
from models.gan_population import GANPopulation
from models.gossip_learning import GossipLearning
from models.monoculture import Monoculture
from models.perceptron_crowd import PerceptronCrowd
from models.polarization import Polarization
from models.social_learning import SocialLearning

REGISTRY = {
    "federated": Federated,
    "gan_population": GANPopulation,
    "gossip_learning": GossipLearning,
    "monoculture": Monoculture,
    "perceptron_crowd": PerceptronCrowd,
    "polarization": Polarization,
    "social_learning": SocialLearning,
}

__all__ = [
    "REGISTRY",
    "Federated",
    "GANPopulation",
    "GossipLearning",
    "Monoculture",
    "PerceptronCrowd",
    "Polarization",
    "SocialLearning",
]
