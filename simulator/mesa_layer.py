"""Mesa's network space and agents, created when first read (a mixin for NeuralModel).

The population trains, mixes and is measured through arrays (CSR graph, parameter rows); the
Mesa objects (a :class:`mesa.discrete_space.Network` with one cell per node and one agent per
cell) are views for Mesa's tools and for users who walk agents. Building them costs about 45 s
and 2 GB per million agents in Mesa 3.5 (and the networkx graph they need another 5 s), so
they are built the first time ``model.agents``, ``model.space``, ``model.agent_list``,
``model.agents_by_type`` or ``model.agent_types`` is read, and from then on they are ordinary
Mesa objects (``model.agents`` is the model's real AgentSet). ``model.graph``, the networkx
graph, is likewise built on first use for generated large graphs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
from mesa.discrete_space import Network

if TYPE_CHECKING:
    from simulator.graph import SocialGraph

__all__ = ["LazyMesaLayer"]


class LazyMesaLayer:
    """Mixin (before :class:`mesa.Model` in the bases): lazy Mesa space, agents and graph.

    The host sets ``agent_class`` (called as ``agent_class(model, cell, index)``) and calls
    :meth:`_init_mesa_layer` with its :class:`simulator.graph.SocialGraph`.
    """

    agent_class: ClassVar[type]

    def _init_mesa_layer(self, social: SocialGraph) -> None:
        self._social = social
        self._mesa_built = False
        self._space: Network | None = None
        self._agent_list: list = []

    @property
    def graph(self) -> nx.Graph:
        """The social graph as networkx (nodes ``0..n-1``; node ``i`` is agent ``i``)."""
        return self._social.networkx

    @property
    def mesa_built(self) -> bool:
        """Whether the Mesa space and agents exist yet."""
        return self._mesa_built

    @property
    def space(self) -> Network:
        """Mesa's network space: one cell per node, holding that node's agent."""
        self._ensure_mesa()
        return self._space

    @property
    def agent_list(self) -> list:
        """The agents in index order (``agent_list[i].index == i``)."""
        self._ensure_mesa()
        return self._agent_list

    @property
    def agents(self) -> Any:
        """Mesa's AgentSet of every agent (created on first read)."""
        self._ensure_mesa()
        return super().agents

    @agents.setter
    def agents(self, value: Any) -> None:
        raise AttributeError("model.agents is Mesa's own AgentSet and cannot be set.")

    @property
    def agents_by_type(self) -> Any:
        """Mesa's AgentSets by agent class (created on first read)."""
        self._ensure_mesa()
        return super().agents_by_type

    @property
    def agent_types(self) -> list[type]:
        """Mesa's agent classes (created on first read)."""
        self._ensure_mesa()
        return super().agent_types

    def _ensure_mesa(self) -> None:
        if self._mesa_built:
            return
        self._mesa_built = True  # first: creating agents registers them through Mesa
        space = self._new_space()
        n = self._social.n
        cells = [space[i] for i in range(n)]
        self._space = space
        self._making_agents = True  # the agent class makes its agents only now (see model.py)
        try:
            agents = self.agent_class.create_agents(self, n, cells, list(range(n)))
        finally:
            self._making_agents = False
        self._agent_list = list(agents)

    def _new_space(self) -> Network:
        return Network(self.graph, capacity=1, random=self.random, layout=None)

    def _sync_mesa(self) -> None:
        """After the graph changed: a new space from it, every agent moved to its new cell."""
        if not self._mesa_built:
            return
        space = self._new_space()
        for agent in self._agent_list:
            agent.cell.remove_agent(agent)
            agent._mesa_cell = None  # a FixedAgent may be placed once: this is a new space
            agent.cell = space[agent.index]
        self._space = space
