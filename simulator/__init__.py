"""neuropop: populations of small neural networks as Mesa agents on a social graph.

Public surface; nothing heavy happens at import time (kernels compile on first use and are
cached on disk).
"""

from simulator.config import DivergenceError, ParameterError
from simulator.layout import AgentNetwork, ParamLayout
from simulator.population import Population

__version__ = "0.1.0"

__all__ = ["AgentNetwork", "DivergenceError", "ParamLayout", "ParameterError", "Population"]
