"""The pieces of a checkpoint's state: values to JSON + arrays and back, the collected tables,
the graph. The format is described in :mod:`simulator.checkpoint`."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from simulator.config import ParameterError
from simulator.population import Population

if TYPE_CHECKING:
    from simulator.model import NeuralModel

__all__ = [
    "CheckpointError",
    "Writer",
    "collector_state",
    "decode",
    "decode_graph",
    "frames_state",
    "given_state",
    "graph_from",
    "graph_state",
    "resolve",
    "restore",
    "same_graph",
    "set_collector",
    "set_frames",
]

_SCALARS = (bool, int, float, str, type(None))


class CheckpointError(ParameterError):
    """A checkpoint that cannot be written or loaded; the message says which file and why."""


# ---------------------------------------------------------------------------- encoding
class Writer:
    """Turns state values into JSON, putting arrays aside under unique keys."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, key: str, value: np.ndarray) -> dict[str, str]:
        if value.dtype.kind not in "biuf":
            raise CheckpointError(f"cannot checkpoint {key}: a {value.dtype} array (numbers only)")
        self.arrays[key] = np.ascontiguousarray(value)
        return {"__array__": key}

    def encode(self, key: str, value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, np.ndarray):
            return self.array(key, value)
        if isinstance(value, np.random.Generator):
            return {"__generator__": value.bit_generator.state}
        if isinstance(value, random.Random):
            return {"__random__": value.getstate()}
        if isinstance(value, Population):
            return {"__population__": self.encode(key, value.get_state())}
        if isinstance(value, list | tuple):
            return [self.encode(f"{key}.{i}", v) for i, v in enumerate(value)]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise CheckpointError(f"cannot checkpoint {key}: a dict with non-string keys")
            return {k: self.encode(f"{key}.{k}", v) for k, v in value.items()}
        if hasattr(value, "get_state"):
            return {"__object__": self.encode(key, value.get_state())}
        scalars = {k: v for k, v in vars(value).items() if isinstance(v, _SCALARS)}
        return {"__scalars__": scalars}


def decode(value: Any, arrays: Any) -> Any:
    """JSON back to values; arrays are read from the npz; markers stay as marked dicts."""
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"__array__"}:
        return arrays[value["__array__"]]
    if len(value) == 1 and next(iter(value)) in ("__population__", "__object__"):
        key = next(iter(value))
        return {key: decode(value[key], arrays)}
    if len(value) == 1 and next(iter(value)) in ("__generator__", "__random__", "__scalars__"):
        return value
    return {k: decode(v, arrays) for k, v in value.items()}


def restore(owner: Any, name: str, saved: Any, where: str, n_agents: int = -1) -> None:
    """Put ``saved`` into ``owner.name``: in place for arrays, generators and objects.

    Refused (CheckpointError) when the model cannot hold it: a number or a string where the
    model holds another kind (scalars, the task's scalars and the values of dicts of them;
    int and float are one kind; anything may replace None, but only a number a task's None;
    an object's ``fixed_state`` scalars must equal the rebuilt object's), an array of another
    kind, or a per-agent array (first axis ``n_agents``) of another shape or dtype. Other
    arrays may change shape (a scenario's growing history, say).
    """
    current = getattr(owner, name, None)
    if isinstance(saved, dict) and len(saved) == 1:
        key, inner = next(iter(saved.items()))
        if key == "__generator__":
            current.bit_generator.state = inner
            return
        if key == "__random__":
            current.setstate(_tuples(inner))
            return
        if key == "__population__":
            current.set_state(inner)
            return
        if key == "__object__":
            current.set_state(inner)
            return
        if key == "__scalars__":
            for attr, v in inner.items():
                was = getattr(current, attr, None)
                kinds = ("none", "number") if was is None else (_kind(was),)
                fixed = attr in getattr(current, "fixed_state", ())
                if _kind(v) not in kinds or (fixed and v != was):
                    raise CheckpointError(
                        f"cannot restore {where}.{attr}: {v!r} where the model holds "
                        f"{type(was).__name__} {was!r}"
                    )
                setattr(current, attr, v)
            return
    if (
        isinstance(current, np.ndarray)
        and isinstance(saved, np.ndarray)
        and current.shape == saved.shape
        and current.dtype == saved.dtype
        and current.flags.writeable
    ):
        current[...] = saved
        return
    if _refused(current, saved, n_agents):
        raise CheckpointError(
            f"cannot restore {where}: {_shown(saved)} where the model holds {_shown(current)}"
        )
    if isinstance(saved, np.ndarray):
        saved = saved.copy()
    try:
        setattr(owner, name, saved)
    except (AttributeError, ParameterError) as exc:
        raise CheckpointError(f"cannot restore {where}: {exc}") from None


def _refused(current: Any, saved: Any, n_agents: int) -> bool:
    """Whether the model cannot hold ``saved`` where it holds ``current`` (see :func:`restore`)."""
    if isinstance(current, np.ndarray):
        if not isinstance(saved, np.ndarray) or _array_kind(saved) != _array_kind(current):
            return True
        per_agent = current.ndim > 0 and current.shape[0] == n_agents  # kernels index them
        return per_agent and (saved.shape, saved.dtype) != (current.shape, current.dtype)
    if _kind(current) in ("number", "str"):
        return _kind(saved) != _kind(current)
    if isinstance(current, dict) and isinstance(saved, dict):
        kept = {k: _kind(v) for k, v in current.items() if _kind(v) in ("number", "str")}
        return any(_kind(saved[k]) != kind for k, kind in kept.items() if k in saved)
    return False


def _shown(value: Any) -> str:
    return f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else repr(value)


def _kind(value: Any) -> str:
    """number (bool, int, float), str, none or other: the kinds a restored scalar keeps."""
    if isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating):
        return "number"
    if isinstance(value, str):
        return "str"
    return "none" if value is None else "other"


def _array_kind(a: np.ndarray) -> str:
    """number (bool, int, float) or the dtype's kind: what an array keeps when restored."""
    return "number" if a.dtype.kind in "biuf" else a.dtype.kind


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def resolve(model: Any, path: str) -> tuple[Any, str]:
    """The object holding the last name of dotted ``path``, and that name."""
    *parents, last = path.split(".")
    owner = model
    for part in parents:
        owner = getattr(owner, part)
    return owner, last


# ---------------------------------------------------------------------------- tables
def _columns(w: Writer, key: str, frame_columns: dict[str, list]) -> dict[str, Any]:
    """Lists of numbers (one per column) as arrays; a column of other values as JSON."""
    out = {}
    for i, (name, values) in enumerate(frame_columns.items()):
        arr = np.asarray(values)
        ok = arr.dtype.kind in "biuf" and arr.ndim == 1
        out[name] = w.array(f"{key}.{i}", arr) if ok else w.encode(f"{key}.{i}", list(values))
    return out


def _listed(value: Any) -> list:
    return value.tolist() if isinstance(value, np.ndarray) else list(value)


def collector_state(w: Writer, model: NeuralModel) -> dict[str, Any]:
    dc = model.measure_collector
    records = [(k, list(zip(*recs))) for k, recs in dc._agent_records.items()]
    return {
        "model_vars": _columns(w, "collector.model", dc.model_vars),
        "collection_steps": list(getattr(dc, "_collection_steps", [])),
        "agent_records": [
            [k, _columns(w, f"collector.agents.{i}", dict(enumerate(cols)))]
            for i, (k, cols) in enumerate(records)
        ],
        "agenttype_records": bool(dc._agenttype_records),
        "tables": {
            name: _columns(w, f"collector.table.{name}", t) for name, t in dc.tables.items()
        },
    }


def set_collector(model: NeuralModel, state: dict[str, Any]) -> None:
    dc = model.measure_collector
    if state.get("agenttype_records"):
        raise CheckpointError("checkpoints do not hold DataCollector agenttype reporters")
    missing = set(dc.model_reporters) ^ set(state["model_vars"])
    if missing:
        raise CheckpointError(
            f"the model reports {sorted(dc.model_reporters)}, the checkpoint holds "
            f"{sorted(state['model_vars'])}: it was written by another version of this scenario"
        )
    columns = {name: _listed(v) for name, v in state["model_vars"].items()}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise CheckpointError(f"the collector's columns have different lengths {sorted(lengths)}")
    dc.model_vars = columns
    if hasattr(dc, "_collection_steps"):
        dc._collection_steps = list(state["collection_steps"])
    dc._agent_records = {
        k: list(zip(*(_listed(c) for c in cols.values()))) for k, cols in state["agent_records"]
    }
    for name, cols in state["tables"].items():
        dc.tables[name] = {c: _listed(v) for c, v in cols.items()}


# what every agent of the model's own class carries from Mesa and the model (rebuilt, not saved)
_AGENT_BUILT = frozenset({"model", "unique_id", "pos", "_mesa_cell", "index"})


def agents_state(w: Writer, model: NeuralModel) -> dict[str, Any] | None:
    """Attributes the model's agents carry beyond those it gives them (a user's agent class
    counting visits, say): one column per attribute over ``model.agent_list``, with which
    agents have it. None when the agents were never made (they are made on first read) or
    carry nothing more. Values must be numbers, strings, None, or lists or dicts of those."""
    if not model.mesa_built:
        return None
    agents = model.agent_list
    names = sorted({k for a in agents for k in vars(a)} - _AGENT_BUILT)
    columns, present = {}, {}
    for name in names:
        values = [vars(a).get(name) for a in agents]
        bad = next((v for v in values if not _plain(v)), None)
        if bad is not None:
            raise CheckpointError(
                f"cannot checkpoint the agents' attribute {name!r} (a value {bad!r}): only "
                "numbers, strings, None, and lists or dicts of those"
            )
        columns[name] = values
        have = [name in vars(a) for a in agents]
        present[name] = None if all(have) else [i for i, h in enumerate(have) if h]
    if not columns:
        return None
    return {"columns": _columns(w, "agents", columns), "present": present}


def set_agents(model: NeuralModel, state: dict[str, Any] | None) -> None:
    """Put back what :func:`agents_state` saved (the agents are made first)."""
    if state is None:
        return
    agents = model.agent_list
    for name, values in state["columns"].items():
        values = _listed(values)
        if len(values) != len(agents):
            raise CheckpointError(
                f"the agents' {name!r} has {len(values)} values for {len(agents)}"
            )
        which = state["present"].get(name)
        for i in range(len(agents)) if which is None else which:
            setattr(agents[i], name, values[i])


def frames_state(w: Writer, model: NeuralModel) -> dict[str, Any] | None:
    frames = model.agent_frames
    if not frames:
        return None
    import pandas as pd

    whole = pd.concat(frames, ignore_index=True)
    return {
        "lengths": w.array("agents.lengths", np.array([len(f) for f in frames], np.int64)),
        "columns": _columns(w, "agents.columns", {c: whole[c].to_numpy() for c in whole}),
    }


def set_frames(model: NeuralModel, state: dict[str, Any] | None) -> None:
    import pandas as pd

    if state is None:
        model.agent_frames = []
        return
    whole = pd.DataFrame({c: np.asarray(v) for c, v in state["columns"].items()})
    ends = np.cumsum(state["lengths"])
    starts = ends - state["lengths"]
    model.agent_frames = [
        whole.iloc[a:b].reset_index(drop=True) for a, b in zip(starts.tolist(), ends.tolist())
    ]


# ---------------------------------------------------------------------------- graph
def graph_state(w: Writer, model: NeuralModel) -> dict[str, Any]:
    comm = model.communities
    labels = [label for _, label in model.graph.nodes(data="label", default=None)]
    plain = all(
        isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in labels
    )
    return {
        "n": int(model.n_agents),
        "labels": labels if plain and len(set(labels)) == len(labels) else None,
        "indptr": w.array("graph.indptr", model.csr.indptr),
        "indices": w.array("graph.indices", model.csr.indices),
        "communities": None if comm is None else w.array("graph.communities", comm),
    }


def graph_from(state: dict[str, Any], labelled: bool = False) -> nx.Graph:
    """The saved graph: nodes 0..n-1 (or the original labels when ``labelled``)."""
    G = nx.Graph()
    G.add_nodes_from(range(state["n"]))
    indptr, indices = np.asarray(state["indptr"]), np.asarray(state["indices"])
    rows = np.repeat(np.arange(state["n"]), np.diff(indptr))
    G.add_edges_from(zip(rows.tolist(), indices.tolist()))
    if state["communities"] is not None:
        codes = np.asarray(state["communities"]).tolist()
        nx.set_node_attributes(G, dict(enumerate(codes)), "community")
    labels = state.get("labels")
    if labelled and labels is not None:
        G = nx.relabel_nodes(G, dict(enumerate(labels)))
    return G


def same_graph(model: NeuralModel, state: dict[str, Any]) -> bool:
    comm = state["communities"]
    same_comm = (comm is None and model.communities is None) or (
        comm is not None
        and model.communities is not None
        and np.array_equal(np.asarray(comm), model.communities)
    )
    return (
        same_comm
        and np.array_equal(model.csr.indptr, state["indptr"])
        and np.array_equal(model.csr.indices, state["indices"])
    )


# ---------------------------------------------------------------------------- saving
def given_state(w: Writer, model: NeuralModel) -> dict[str, Any]:
    """The parameters the model was given, and its scenario's own ``__init__`` arguments
    (numbers, strings, and lists or dicts of them: what a rebuild passes again)."""
    out = {}
    for name in sorted(model._given):
        value = model.p[name]
        out[name] = {"__graph__": _encode_graph(w, value)} if isinstance(value, nx.Graph) else value
    for name, value in model.__dict__.get("_init_args", {}).items():
        if not _plain(value):
            raise CheckpointError(
                f"cannot checkpoint the __init__ argument {name}={value!r} of "
                f"{type(model).__name__}: a rebuild passes it again, so it must be a number, a "
                "string, None, or a list or dict of those"
            )
        out[name] = value
    return out


def _plain(value: Any) -> bool:
    """Whether ``value`` is a number, string, bool or None, or a list, tuple or str-keyed dict
    of such values."""
    if value is None or isinstance(value, bool | int | float | str | np.generic):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _encode_graph(w: Writer, G: nx.Graph) -> dict[str, Any]:
    """A graph a user passed: node labels (when str/int), edges, node communities."""
    nodes = list(G)
    plain = all(
        isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in nodes
    )
    pos = {v: i for i, v in enumerate(nodes)}
    edges = np.array([(pos[u], pos[v]) for u, v in G.edges], dtype=np.int64).reshape(-1, 2)
    comm = [c for _, c in G.nodes(data="community", default=None)]
    return {
        "labels": nodes if plain else None,
        "n": len(nodes),
        "edges": w.array("given.graph.edges", edges),
        "communities": comm if all(isinstance(c, int | str) for c in comm) else None,
    }


def decode_graph(state: dict[str, Any]) -> nx.Graph:
    labels = state["labels"] or list(range(state["n"]))
    G = nx.Graph()
    G.add_nodes_from(labels)
    G.add_edges_from((labels[u], labels[v]) for u, v in np.asarray(state["edges"]).tolist())
    if state["communities"] is not None:
        nx.set_node_attributes(G, dict(zip(labels, state["communities"])), "community")
    return G
