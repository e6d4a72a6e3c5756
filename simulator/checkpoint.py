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
``checksum``
    SHA-256 of the rest of the document and of every array (:func:`content_digest`). A file
    whose content no longer matches it (edited or damaged after it was written, even into
    another valid npz) is refused with a message saying so, before any of it is used: an
    edited size or index would otherwise reach a kernel. Files written before checksums
    (without the entry) load as before.

Values an attribute may hold: None, bool, int, float, str, lists, dicts with string keys,
numeric or boolean numpy arrays, numpy Generators, ``random.Random``, a
:class:`~simulator.population.Population`, or an object with ``get_state() -> dict`` and
``set_state(dict)``. An object without them (a task) keeps its scalar attributes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.atomic import write_atomically
from simulator.checkpoint_state import (
    CheckpointError,
    Writer,
    agents_state,
    collector_state,
    decode,
    decode_graph,
    frames_state,
    given_state,
    graph_from,
    graph_state,
    resolve,
    restore,
    same_graph,
    set_agents,
    set_collector,
    set_frames,
)
from simulator.config import ParameterError

if TYPE_CHECKING:
    from simulator.model import NeuralModel

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "compatibility",
    "content_digest",
    "load",
    "read_metadata",
    "save",
]

FORMAT_NAME = "neuropop-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__checkpoint__.json"
CHECKSUM_KEY = "checksum"
UPGRADES: dict[int, Any] = {}  # version -> function(meta, arrays) upgrading to version + 1


@functools.cache
def _provenance() -> tuple[dict[str, str], str]:
    """Package versions and code revision of this process (asked once: a subprocess call)."""
    from simulator.collect import code_revision, versions

    return versions(), code_revision()


def state_document(
    model: NeuralModel, extra: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON document and the arrays of ``model``'s checkpoint (see the module docstring)."""
    w = Writer()
    cls = type(model)
    attrs = {
        path: w.encode(f"attr.{path}", getattr(*resolve(model, path)))
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
        "given": w.encode("given", given_state(w, model)),
        "steps": int(model.steps),
        "time": float(model.time),
        "state": {
            "attributes": attrs,
            "rules": rules,
            "graph": graph_state(w, model),
            "collector": collector_state(w, model),
            "agent_frames": frames_state(w, model),
            "agents": agents_state(w, model),
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
    path = _file_path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if not path.parent.is_dir():
        raise CheckpointError(f"cannot write {path}: its folder {path.parent} does not exist")
    meta, arrays = state_document(model, extra)
    meta = {**meta, CHECKSUM_KEY: content_digest(meta, arrays)}
    text = json.dumps(meta, allow_nan=True)
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    try:
        return write_atomically(path, lambda fh: np.savez(fh, **arrays), binary=True)
    except OSError as exc:  # no permission, a full disk: nothing is left half-written
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None


def _file_path(path: Any) -> Path:
    """``path`` (a str or os.PathLike) as a Path; anything else is refused by name."""
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise CheckpointError(
            f"path={path!r} is not allowed: path must be a file path (a str or os.PathLike)"
        )
    return Path(path)


def content_digest(meta: dict[str, Any], arrays: Any) -> str:
    """SHA-256 (hex) of a checkpoint's content: its JSON document without ``checksum``
    (keys sorted) and each array but the document, in name order (name, dtype, shape, bytes).

    Parameters
    ----------
    meta : dict, the document. arrays : mapping of name -> numpy array (a dict, or the
        ``NpzFile`` of a loaded file: each array is read once, one at a time).
    """
    h = hashlib.sha256()
    doc = json.dumps({k: v for k, v in meta.items() if k != CHECKSUM_KEY}, allow_nan=True)
    # as the file holds it, read back: the same text on saving and on loading
    h.update(json.dumps(json.loads(doc), sort_keys=True, allow_nan=True).encode("utf-8"))
    for key in sorted(k for k in arrays.keys() if k != META_KEY):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8) if a.size else b"")
    return h.hexdigest()


# ---------------------------------------------------------------------------- loading
def _open(path: Path, verify: bool = True) -> tuple[dict[str, Any], Any]:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    fh = path.open("rb")
    try:
        arrays = np.load(fh, allow_pickle=False)
        arrays.fid = fh  # closing the archive closes the file
        raw = arrays[META_KEY]
    except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile, EOFError) as exc:
        fh.close()
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc})") from None
    try:
        return _document(path, raw, arrays, verify)
    except BaseException:
        arrays.close()
        raise


def _document(path: Path, raw: np.ndarray, arrays: Any, verify: bool) -> tuple[dict[str, Any], Any]:
    """The checkpoint's JSON document, checked (its checksum too when ``verify``) and upgraded
    to :data:`FORMAT_VERSION`."""
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
    if verify and CHECKSUM_KEY in meta and content_digest(meta, arrays) != meta[CHECKSUM_KEY]:
        raise CheckpointError(
            f"{path}: its content does not match its checksum: the file was changed after it "
            "was written (edited, or damaged); load an unchanged copy"
        )
    while version < FORMAT_VERSION:
        if version not in UPGRADES:
            raise CheckpointError(f"{path}: format version {version} can no longer be read")
        meta, arrays = UPGRADES[version](meta, arrays)
        version = meta["version"]
    return meta, arrays


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON document of checkpoint ``path`` (model, seed, parameters, step, versions);
    its checksum is checked by :func:`load`, not here (the arrays are not read)."""
    meta, arrays = _open(Path(path), verify=False)
    arrays.close()
    return meta


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
    given = decode(meta["given"], arrays)
    graph_state = decode(meta["state"]["graph"], arrays)
    saved_graph = given.get("graph")
    if isinstance(saved_graph, dict):  # a networkx graph was given: rebuild it
        given["graph"] = decode_graph(saved_graph["__graph__"])
    elif isinstance(saved_graph, str) and not Path(saved_graph).exists():
        from simulator.graph import GRAPH_NAMES

        if saved_graph not in GRAPH_NAMES:  # a graph file that is gone: use the saved graph
            given["graph"] = graph_from(graph_state)
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
    path = _file_path(path)
    meta, arrays = _open(path)
    damaged = (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        OSError,
        EOFError,
        OverflowError,
    )
    try:
        model = _rebuild(_model_class(meta, model_class), meta, arrays)
        _apply(model, meta, arrays)
    except ParameterError as exc:  # CheckpointError too: say which file
        raise CheckpointError(f"{path}: {exc}") from None
    except (*damaged, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path}: cannot restore the model ({type(exc).__name__}: {exc}); the file is damaged "
            "or was written by an incompatible version of the scenario"
        ) from None
    finally:
        arrays.close()
    return model


def _apply(model: NeuralModel, meta: dict[str, Any], arrays: Any) -> None:
    state = decode(meta["state"], arrays)
    graph = state["graph"]
    if not same_graph(model, graph):
        model.set_graph(graph_from(graph))
    steps, time = int(meta["steps"]), float(meta["time"])
    schedule = getattr(model, "_default_schedule", None)
    if schedule is not None:
        schedule.pause()
    model.steps, model.time = steps, time
    if schedule is not None:
        schedule.resume()  # the next step runs at time + 1
    for path, saved in state["attributes"].items():
        owner, name = resolve(model, path)
        restore(owner, name, saved, path, model.n_agents)
    names = [rule.name for rule in model.rules]
    if names != [name for name, _ in state["rules"]]:
        raise CheckpointError(
            f"the model has social rules {names}, the checkpoint {[n for n, _ in state['rules']]}"
        )
    for rule, (_, saved) in zip(model.rules, state["rules"]):
        rule.set_state(saved)
    set_collector(model, state["collector"])
    set_frames(model, state["agent_frames"])
    set_agents(model, state.get("agents"))  # absent from checkpoints of earlier versions
    model._probe_cache = None
    model._graph_measures_cache = None
