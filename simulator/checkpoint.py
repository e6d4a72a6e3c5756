"""Checkpoints: a model's whole state in one safe file, so a run continues exactly where it stopped.

Format (version 1)
------------------
A checkpoint is one NumPy ``.npz`` file (a zip of ``.npy`` arrays, written uncompressed) that
holds, beside the arrays, one entry ``__checkpoint__.json``: a UTF-8 JSON document stored as a
uint8 array. It is read with ``np.load(path, allow_pickle=False)``: nothing in it is pickled,
so loading a checkpoint never runs code from the file (it imports the scenario's module, as
running the scenario would). The JSON document holds:

``format``, ``version``
    ``"neuropop-checkpoint"`` and :data:`FORMAT_VERSION`. A file of a newer version is refused
    with a message saying so; older versions are upgraded by :data:`UPGRADES` (none yet).
``model``
    ``class`` (``module:QualName``) and ``scenario`` (registry name, or null).
``seed``, ``given``
    The seed and the keyword parameters the model was built with (the model is rebuilt from
    them, then its state is overwritten).
``steps``, ``time``
    Mesa's step counter and clock.
``state``
    Everything the next step depends on, from :attr:`NeuralModel.state_attributes` (listed
    once, on the model class), the social rules' :meth:`~simulator.social.SocialRule.get_state`,
    the graph (CSR arrays and communities), the DataCollector's tables and the per-agent
    tables. Arrays appear as ``{"__array__": key}``, numpy random generators as
    ``{"__generator__": bit_generator.state}``, Python's ``random.Random`` as
    ``{"__random__": getstate()}``, populations as ``{"__population__": {...}}``.
``versions``, ``code_revision``
    What wrote it. A checkpoint loads under other versions; results are byte-identical only
    under the same code and package versions (see :func:`compatibility`).

Values an attribute may hold: None, bool, int, float, str, lists, dicts with string keys,
numeric or boolean numpy arrays, numpy Generators, ``random.Random``, a
:class:`~simulator.population.Population`, or an object with ``get_state() -> dict`` and
``set_state(dict)``. An object without them (a task) keeps its scalar attributes.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import random
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from simulator.config import ParameterError
from simulator.population import Population

if TYPE_CHECKING:
    from simulator.model import NeuralModel

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "compatibility",
    "load",
    "read_metadata",
    "save",
]

FORMAT_NAME = "neuropop-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__checkpoint__.json"
UPGRADES: dict[int, Any] = {}  # version -> function(meta, arrays) upgrading to version + 1
_SCALARS = (bool, int, float, str, type(None))


class CheckpointError(ParameterError):
    """A checkpoint that cannot be written or loaded; the message says which file and why."""


# ---------------------------------------------------------------------------- encoding
class _Writer:
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


def _decode(value: Any, arrays: Any) -> Any:
    """JSON back to values; arrays are read from the npz; markers stay as marked dicts."""
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"__array__"}:
        return arrays[value["__array__"]]
    if len(value) == 1 and next(iter(value)) in ("__population__", "__object__"):
        key = next(iter(value))
        return {key: _decode(value[key], arrays)}
    if len(value) == 1 and next(iter(value)) in ("__generator__", "__random__", "__scalars__"):
        return value
    return {k: _decode(v, arrays) for k, v in value.items()}


def _restore(owner: Any, name: str, saved: Any, where: str) -> None:
    """Put ``saved`` into ``owner.name``: in place for arrays, generators and objects."""
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
    if isinstance(saved, np.ndarray):
        saved = saved.copy()
    try:
        setattr(owner, name, saved)
    except (AttributeError, ParameterError) as exc:
        raise CheckpointError(f"cannot restore {where}: {exc}") from None


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _resolve(model: Any, path: str) -> tuple[Any, str]:
    """The object holding the last name of dotted ``path``, and that name."""
    *parents, last = path.split(".")
    owner = model
    for part in parents:
        owner = getattr(owner, part)
    return owner, last


# ---------------------------------------------------------------------------- tables
def _columns(w: _Writer, key: str, frame_columns: dict[str, list]) -> dict[str, Any]:
    """Lists of numbers (one per column) as arrays; a column of other values as JSON."""
    out = {}
    for i, (name, values) in enumerate(frame_columns.items()):
        arr = np.asarray(values)
        ok = arr.dtype.kind in "biuf" and arr.ndim == 1
        out[name] = w.array(f"{key}.{i}", arr) if ok else w.encode(f"{key}.{i}", list(values))
    return out


def _listed(value: Any) -> list:
    return value.tolist() if isinstance(value, np.ndarray) else list(value)


def _collector_state(w: _Writer, model: NeuralModel) -> dict[str, Any]:
    dc = model.datacollector
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


def _set_collector(model: NeuralModel, state: dict[str, Any]) -> None:
    dc = model.datacollector
    if state.get("agenttype_records"):
        raise CheckpointError("checkpoints do not hold DataCollector agenttype reporters")
    missing = set(dc.model_reporters) ^ set(state["model_vars"])
    if missing:
        raise CheckpointError(
            f"the model reports {sorted(dc.model_reporters)}, the checkpoint holds "
            f"{sorted(state['model_vars'])}: it was written by another version of this scenario"
        )
    dc.model_vars = {name: _listed(v) for name, v in state["model_vars"].items()}
    if hasattr(dc, "_collection_steps"):
        dc._collection_steps = list(state["collection_steps"])
    dc._agent_records = {
        k: list(zip(*(_listed(c) for c in cols.values()))) for k, cols in state["agent_records"]
    }
    for name, cols in state["tables"].items():
        dc.tables[name] = {c: _listed(v) for c, v in cols.items()}


def _frames_state(w: _Writer, model: NeuralModel) -> dict[str, Any] | None:
    frames = model.agent_frames
    if not frames:
        return None
    import pandas as pd

    whole = pd.concat(frames, ignore_index=True)
    return {
        "lengths": w.array("agents.lengths", np.array([len(f) for f in frames], np.int64)),
        "columns": _columns(w, "agents.columns", {c: whole[c].to_numpy() for c in whole}),
    }


def _set_frames(model: NeuralModel, state: dict[str, Any] | None) -> None:
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
def _graph_state(w: _Writer, model: NeuralModel) -> dict[str, Any]:
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


def _graph_from(state: dict[str, Any], labelled: bool = False) -> nx.Graph:
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


def _same_graph(model: NeuralModel, state: dict[str, Any]) -> bool:
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
def _given(w: _Writer, model: NeuralModel) -> dict[str, Any]:
    out = {}
    for name in sorted(model._given):
        value = model.p[name]
        out[name] = {"__graph__": _encode_graph(w, value)} if isinstance(value, nx.Graph) else value
    return out


def _encode_graph(w: _Writer, G: nx.Graph) -> dict[str, Any]:
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


def _decode_graph(state: dict[str, Any]) -> nx.Graph:
    labels = state["labels"] or list(range(state["n"]))
    G = nx.Graph()
    G.add_nodes_from(labels)
    G.add_edges_from((labels[u], labels[v]) for u, v in np.asarray(state["edges"]).tolist())
    if state["communities"] is not None:
        nx.set_node_attributes(G, dict(zip(labels, state["communities"])), "community")
    return G


@functools.cache
def _provenance() -> tuple[dict[str, str], str]:
    """Package versions and code revision of this process (asked once: a subprocess call)."""
    from simulator.collect import code_revision, versions

    return versions(), code_revision()


def state_document(
    model: NeuralModel, extra: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON document and the arrays of ``model``'s checkpoint (see the module docstring)."""
    w = _Writer()
    cls = type(model)
    attrs = {
        path: w.encode(f"attr.{path}", getattr(*_resolve(model, path)))
        for path in cls.state_attributes
    }
    rules = [
        [rule.name, w.encode(f"rule.{i}", rule.get_state())] for i, rule in enumerate(model.rules)
    ]
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": {"class": f"{cls.__module__}:{cls.__qualname__}", "scenario": _scenario(cls)},
        "seed": int(model.seed),
        "given": w.encode("given", _given(w, model)),
        "steps": int(model.steps),
        "time": float(model.time),
        "state": {
            "attributes": attrs,
            "rules": rules,
            "graph": _graph_state(w, model),
            "collector": _collector_state(w, model),
            "agent_frames": _frames_state(w, model),
        },
        "versions": _provenance()[0],
        "code_revision": _provenance()[1],
        "run": w.encode("run", extra or {}),
    }
    return meta, w.arrays


def _scenario(cls: type) -> str | None:
    try:
        from simulator.registry import load_registry

        return next((k for k, v in load_registry().items() if v is cls), None)
    except Exception:  # no registry (a model outside the package): the class path suffices
        return None


def save(model: NeuralModel, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s checkpoint to ``path`` (``.npz`` added if missing), atomically.

    ``extra`` (JSON-able) is kept under ``run`` in the document (the command line stores the
    run's target steps and format there).

    The file is written under a temporary name in the same folder, fsynced and renamed over
    ``path``: a checkpoint that exists is whole. A symlink at ``path`` is replaced, never
    followed. Returns the path written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    meta, arrays = state_document(model, extra)
    text = json.dumps(meta, allow_nan=True)
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------- loading
def _open(path: Path) -> tuple[dict[str, Any], Any]:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        arrays = np.load(path, allow_pickle=False)
        raw = arrays[META_KEY]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc})") from None
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: its {META_KEY} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a {FORMAT_NAME} file")
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this neuropop reads versions up "
            f"to {FORMAT_VERSION}: load it with the neuropop that wrote it "
            f"({meta.get('versions', {}).get('neuropop', 'unknown')}) or a newer one"
        )
    while version < FORMAT_VERSION:
        if version not in UPGRADES:
            raise CheckpointError(f"{path}: format version {version} can no longer be read")
        meta, arrays = UPGRADES[version](meta, arrays)
        version = meta["version"]
    return meta, arrays


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON document of checkpoint ``path`` (model, seed, parameters, step, versions)."""
    return _open(Path(path))[0]


def compatibility(meta: dict[str, Any]) -> list[str]:
    """Why a model continued from this checkpoint may differ from an uninterrupted run here:
    differences of code revision or package versions (empty list: none)."""
    now, revision = _provenance()
    notes = []
    if meta.get("code_revision") != revision:
        notes.append(f"code revision {meta.get('code_revision')} -> {revision}")
    for name, was in (meta.get("versions") or {}).items():
        if now.get(name) != was:
            notes.append(f"{name} {was} -> {now.get(name)}")
    return notes


def _model_class(meta: dict[str, Any], model_class: type | None) -> type:
    from simulator.model import NeuralModel

    if model_class is not None:
        return model_class
    info = meta.get("model") or {}
    name, path = info.get("scenario"), str(info.get("class", ""))
    if name:
        from simulator.registry import load_registry

        cls = load_registry().get(name)
        if cls is not None and f"{cls.__module__}:{cls.__qualname__}" == path:
            return cls
    module, _, qualname = path.partition(":")
    try:
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise CheckpointError(f"cannot find the checkpoint's model class {path!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, NeuralModel)):
        raise CheckpointError(f"{path!r} is not a NeuralModel subclass")
    return cls


def _rebuild(cls: type, meta: dict[str, Any], arrays: Any) -> NeuralModel:
    """The model built from the checkpoint's seed and parameters (state not yet restored)."""
    given = _decode(meta["given"], arrays)
    graph_state = _decode(meta["state"]["graph"], arrays)
    saved_graph = given.get("graph")
    if isinstance(saved_graph, dict):  # a networkx graph was given: rebuild it
        given["graph"] = _decode_graph(saved_graph["__graph__"])
    elif isinstance(saved_graph, str) and not Path(saved_graph).exists():
        from simulator.graph import GRAPH_NAMES

        if saved_graph not in GRAPH_NAMES:  # a graph file that is gone: use the saved graph
            given["graph"] = _graph_from(graph_state)
    model = cls(rng=meta["seed"], **given)
    if saved_graph is not None and not isinstance(saved_graph, dict):
        model.p["graph"] = model.config["graph"] = saved_graph
    return model


def load(path: str | os.PathLike, model_class: type | None = None) -> NeuralModel:
    """The model saved in checkpoint ``path``, ready to continue where it stopped.

    The model is rebuilt from its class, seed and parameters, then every piece of saved state
    is put back. ``model_class`` overrides the class named in the file (a scenario defined in
    a notebook, say). Raises :class:`CheckpointError` saying why a file cannot be loaded.
    """
    path = Path(path)
    meta, arrays = _open(path)
    try:
        model = _rebuild(_model_class(meta, model_class), meta, arrays)
        _apply(model, meta, arrays)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(
            f"{path}: cannot restore the model ({type(exc).__name__}: {exc}); the file is damaged "
            "or was written by an incompatible version of the scenario"
        ) from None
    return model


def _apply(model: NeuralModel, meta: dict[str, Any], arrays: Any) -> None:
    state = _decode(meta["state"], arrays)
    graph = state["graph"]
    if not _same_graph(model, graph):
        model.set_graph(_graph_from(graph))
    steps, time = int(meta["steps"]), float(meta["time"])
    schedule = getattr(model, "_default_schedule", None)
    if schedule is not None:
        schedule.pause()
    model.steps, model.time = steps, time
    if schedule is not None:
        schedule.resume()  # the next step runs at time + 1
    for path, saved in state["attributes"].items():
        owner, name = _resolve(model, path)
        _restore(owner, name, saved, path)
    names = [rule.name for rule in model.rules]
    if names != [name for name, _ in state["rules"]]:
        raise CheckpointError(
            f"the model has social rules {names}, the checkpoint {[n for n, _ in state['rules']]}"
        )
    for rule, (_, saved) in zip(model.rules, state["rules"]):
        rule.set_state(saved)
    _set_collector(model, state["collector"])
    _set_frames(model, state["agent_frames"])
    model._probe_cache = None
