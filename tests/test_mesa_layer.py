"""Mesa's space and agents, created on first read and kept in step with set_graph."""

from __future__ import annotations

import mesa
import networkx as nx
import numpy as np

from models import REGISTRY
from simulator.graph import NX_MAX_NODES

GOSSIP = REGISTRY["gossip_learning"]


def neighbours_of(agent) -> list[int]:
    return sorted(a.index for a in agent.cell.neighborhood.agents)


def test_agents_are_mesa_agents_on_the_graph_once_read():
    m = GOSSIP(rng=0, n_agents=12, graph="ring", measures="fast")
    assert not m.mesa_built
    agents = m.agents
    assert m.mesa_built and isinstance(agents, mesa.agentset.AbstractAgentSet) and len(agents) == 12
    assert [a.index for a in m.agent_list] == list(range(12))
    for a in m.agent_list:
        assert a.cell is m.space[a.index] and a in a.cell.agents
        assert neighbours_of(a) == a.neighbor_indices.tolist() == sorted(m.graph.neighbors(a.index))
    a = m.agent_list[4]
    assert a.degree == 2 and a.network.predict(np.zeros((1, 8))).shape == (1, 1)
    assert isinstance(a.loss, float) and isinstance(a.fitness, float)
    assert m.agent_types == [type(a)] and len(m.agents_by_type[type(a)]) == 12


def test_set_graph_moves_every_agent_to_the_new_space():
    m = GOSSIP(rng=0, n_agents=10, graph="ring", measures="fast")
    old_space = m.space
    m.set_graph(nx.complete_graph(10))
    assert m.space is not old_space and len(m.agents) == 10
    for a in m.agent_list:
        assert a.cell is m.space[a.index] and a.cell.agents == [a]
        assert neighbours_of(a) == [j for j in range(10) if j != a.index]
        assert a.neighbor_indices.tolist() == neighbours_of(a)
    m.step()
    star = nx.star_graph(9)
    nx.set_node_attributes(star, {i: i % 2 for i in star}, "community")
    m.set_graph(star)
    assert neighbours_of(m.agent_list[0]) == list(range(1, 10))
    assert neighbours_of(m.agent_list[3]) == [0]
    np.testing.assert_array_equal(m.communities, np.arange(10) % 2)


def test_set_graph_before_the_agents_exist_builds_them_on_the_new_graph():
    m = GOSSIP(rng=0, n_agents=8, graph="ring", measures="fast")
    m.set_graph(nx.complete_graph(8))
    assert not m.mesa_built
    assert neighbours_of(m.agent_list[2]) == [0, 1, 3, 4, 5, 6, 7]


def test_agent_reporters_see_every_agent():
    m = GOSSIP(rng=0, n_agents=6, measures="fast")
    dc = mesa.DataCollector(agent_reporters={"loss": "loss", "degree": "degree"})
    dc.collect(m)
    df = dc.get_agent_vars_dataframe()
    assert len(df) == 6 and np.isfinite(df["loss"]).all()


def test_a_large_model_builds_no_networkx_graph_and_no_agents_until_asked():
    n = NX_MAX_NODES + 1000
    m = GOSSIP(rng=0, n_agents=n, measures="fast")
    m.step()
    assert not m.mesa_built and not m._social.has_networkx
    G = m.graph
    assert G.number_of_nodes() == n and 2 * G.number_of_edges() == m.csr.indices.size
    assert sorted(G.neighbors(7)) == m.csr.indices[m.csr.indptr[7] : m.csr.indptr[8]].tolist()
