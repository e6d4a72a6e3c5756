"""Scenarios: each a NeuralModel subclass with its own defaults, registered by name.

The command line, the browser app, sweeps and the contract tests find every scenario here.
"""

from __future__ import annotations

from models.evolution import Evolution
from models.federated import Federated
from models.gan_population import GANPopulation
from models.gossip_learning import GossipLearning
from models.model_collapse import ModelCollapse
from models.monoculture import Monoculture
from models.perceptron_crowd import PerceptronCrowd
from models.polarization import Polarization
from models.social_learning import SocialLearning

REGISTRY = {
    "evolution": Evolution,
    "federated": Federated,
    "gan_population": GANPopulation,
    "gossip_learning": GossipLearning,
    "model_collapse": ModelCollapse,
    "monoculture": Monoculture,
    "perceptron_crowd": PerceptronCrowd,
    "polarization": Polarization,
    "social_learning": SocialLearning,
}

__all__ = [
    "REGISTRY",
    "Evolution",
    "Federated",
    "GANPopulation",
    "GossipLearning",
    "ModelCollapse",
    "Monoculture",
    "PerceptronCrowd",
    "Polarization",
    "SocialLearning",
]
