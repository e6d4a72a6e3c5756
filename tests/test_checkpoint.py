"""Checkpoints: save at step k, load, continue = byte-identical to a run never interrupted.

The safety net for model state: every registered scenario, several option sets, several
checkpoint steps. Right after loading, the loaded model is compared attribute by attribute with
the model it was saved from (every array, number, random stream, table reachable from it), so
state that a checkpoint forgets is named in the failure, not only seen as a changed model.csv.
"""

from __future__ import annotations

import json
import random
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import simulator
from models import REGISTRY
from simulator.checkpoint import (
    FORMAT_VERSION,
    META_KEY,
    CheckpointError,
    content_digest,
    read_metadata,
)
from simulator.collect import model_table

STEPS = 6
CHECKPOINTS = (0, 1, 4)
BASE = {"n_agents": 12}
OPTIONS = {
    "defaults": {},
    "adam-f64-agents": {
        "optimizer": "adam",
        "dtype": "float64",
        "agent_every": 2,
        "collect_every": 2,
        "lr_spread": 0.5,
        "init": "independent",
    },
    "every-rule": {
        "optimizer": "momentum",
        "mixing_rate": 0.3,
        "gossip_mode": "pairwise",
        "imitation_rate": 0.5,
        "distill_weight": 0.3,
        "distill_neighbours": "one",
        "adopt_share": 0.25,
        "novelty_threshold": 10.0,
        "fedavg_every": 2,
        "fedavg_participation": 0.5,
        "diversity": 0.01,
        "measures": "standard",
    },
    "experiment-kit": {
        "schedule": "random_order",
        "imitation_rate": 0.5,
        "bc_rate": 0.3,
        "confidence": 0.5,
        "mixing_rate": 0.5,
        "gossip_order": "dpsgd",
        "stubbornness": 0.2,
        "fedavg_every": 2,
        "fedavg_participation": 0.5,
        "dp_clip": 1.0,
        "dp_noise_multiplier": 1.0,
    },
}
# Not compared: wall-clock timings, caches, Mesa's agent/space/event bookkeeping (rebuilt the
# same way from the seed), callables. Mesa's clock is compared explicitly.
SKIP_NAMES = {"timings", "_event_list", "_event_generators", "_default_schedule", "_user_step"}
SKIP_NAMES |= {"step", "space", "agent_list", "_agents_by_type", "_all_agents", "data_registry"}
SKIP_NAMES |= {"scenario", "_scenario", "_simulator", "model_reporters", "agent_reporters"}
SKIP_NAMES |= {"agenttype_reporters", "_rng", "_validated"}
SKIP_NAMES |= {"_buffers"}  # scratch of a task (minibatches) or a rule (SocialRule.scratch)


def differences(a, b, path="model", seen=None, out=None) -> list[str]:
    """Every attribute path under which ``a`` and ``b`` differ (recursively, by value)."""
    seen = set() if seen is None else seen
    out = [] if out is None else out
    if id(a) in seen or len(out) > 20:
        return out
    seen.add(id(a))
    if type(a) is not type(b) and not (_number(a) and _number(b)):
        out.append(f"{path}: {type(a).__name__} vs {type(b).__name__}")
    elif isinstance(a, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            out.append(f"{path}: array {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
        elif not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            where = np.argwhere(a != b)[:3].tolist()
            out.append(f"{path}: arrays differ at {where}")
    elif _number(a):
        if not (a == b or (a != a and b != b)):
            out.append(f"{path}: {a!r} vs {b!r}")
    elif isinstance(a, str | bytes | type(None)):
        if a != b:
            out.append(f"{path}: {a!r} vs {b!r}")
    elif isinstance(a, np.random.Generator):
        if a.bit_generator.state != b.bit_generator.state:
            out.append(f"{path}: random generator states differ")
    elif isinstance(a, random.Random):
        if a.getstate() != b.getstate():
            out.append(f"{path}: random.Random states differ")
    elif isinstance(a, pd.DataFrame):
        if not a.equals(b) or list(a.dtypes) != list(b.dtypes):
            out.append(f"{path}: DataFrames differ")
    elif isinstance(a, nx.Graph):
        if sorted(a.edges) != sorted(b.edges):
            out.append(f"{path}: graph edges differ")
    elif isinstance(a, dict):
        compared_a, compared_b = _compared_keys(a), _compared_keys(b)
        if compared_a != compared_b:
            out.append(f"{path}: keys {sorted(map(str, compared_a ^ compared_b))} in only one")
        for k in a:
            if k in b and k not in SKIP_NAMES and "cache" not in str(k):
                differences(a[k], b[k], f"{path}[{k!r}]", seen, out)
    elif isinstance(a, list | tuple):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            differences(x, y, f"{path}[{i}]", seen, out)
    elif callable(a) or isinstance(a, type):
        pass
    elif hasattr(a, "__dict__") and type(a).__module__.split(".")[0] in ("simulator", "models"):
        differences(vars(a), vars(b), path, seen, out)
        for name, attr in vars(type(a)).items():  # validated attributes live in _slots
            if isinstance(attr, property) and name not in SKIP_NAMES and "cache" not in name:
                differences(getattr(a, name), getattr(b, name), f"{path}.{name}", seen, out)
    elif type(a).__name__ == "DataCollector":
        for name in ("model_vars", "_agent_records", "tables", "_collection_steps"):
            differences(getattr(a, name, None), getattr(b, name, None), f"{path}.{name}", seen, out)
    return out


def _compared_keys(d: dict) -> set:
    """The keys of ``d`` that are compared (scratch made on first use may exist in one only)."""
    return {k for k in d if k not in SKIP_NAMES and "cache" not in str(k)}


def _number(x) -> bool:
    return isinstance(x, int | float | np.integer | np.floating | bool | np.bool_)


def _table(model, name: str) -> str:
    """model.csv (and agents.csv) at full precision: the strictest comparison."""
    agents = model.agents_dataframe()
    return model_table(model, name).to_csv(index=False) + agents.to_csv(index=False)


def _clock(model) -> tuple:
    return model.steps, model.time, model._default_schedule.next_scheduled_time


def _check_continues_identically(name: str, options: dict, tmp_path) -> None:
    cls = REGISTRY[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # disconnected graphs, NaN columns
        model = cls(rng=7, **BASE, **options)
        resumed = []
        for step in range(STEPS + 1):
            if step in CHECKPOINTS:
                path = model.save(tmp_path / f"{name}-{step}")
                loaded = simulator.load(path)
                diff = differences(model, loaded)
                assert not diff, f"{name} {options} at step {step}: " + "; ".join(diff)
                assert _clock(loaded) == _clock(model)
                resumed.append(loaded)
            if step < STEPS:
                model.step()
        expected = _table(model, name)
        for k, loaded in zip(CHECKPOINTS, resumed):
            for _ in range(STEPS - k):
                loaded.step()
            got = _table(loaded, name)
            assert got == expected, f"{name} {options}: resumed at step {k}, tables differ"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_scenario_continues_byte_identically_from_a_checkpoint(name, tmp_path):
    _check_continues_identically(name, OPTIONS["defaults"], tmp_path)


@pytest.mark.parametrize("options", ["adam-f64-agents", "every-rule", "experiment-kit"])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_scenario_and_option_set_continues_byte_identically(name, options, tmp_path):
    _check_continues_identically(name, OPTIONS[options], tmp_path)


def test_a_checkpoint_of_a_loaded_model_continues_identically(tmp_path):
    model = REGISTRY["evolution"](rng=3, **BASE)
    model.step()
    again = simulator.load(model.save(tmp_path / "a"))
    for m in (model, again):
        m.step()
    third = simulator.load(again.save(tmp_path / "b"))
    for m in (model, third):
        for _ in range(3):
            m.step()
    assert _table(third, "evolution") == _table(model, "evolution")


def test_a_given_networkx_graph_and_a_replaced_graph_are_restored(tmp_path):
    G = nx.relabel_nodes(nx.cycle_graph(10), {i: f"n{i}" for i in range(10)})
    model = REGISTRY["gossip_learning"](rng=1, graph=G)
    model.step()
    loaded = simulator.load(model.save(tmp_path / "g"))
    assert not differences(model, loaded)
    model.set_graph(nx.complete_graph(10))
    model.step()
    loaded = simulator.load(model.save(tmp_path / "h"))
    assert not differences(model, loaded)
    for m in (model, loaded):
        m.step()
    assert _table(loaded, "gossip_learning") == _table(model, "gossip_learning")


def test_the_file_is_npz_with_json_and_never_pickles(tmp_path):
    model = REGISTRY["gossip_learning"](rng=1, **BASE)
    path = model.save(tmp_path / "c")
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as data:  # would raise on any pickled object
        meta = json.loads(data[META_KEY].tobytes())
        assert all(data[k].dtype != object for k in data.files)
    assert meta["format"] == "neuropop-checkpoint" and meta["version"] == FORMAT_VERSION
    assert meta["model"]["scenario"] == "gossip_learning" and meta["seed"] == 1
    assert read_metadata(path)["steps"] == 0


def _rewrite(path, out, change, seal=True):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays[META_KEY].tobytes())
    change(meta)
    if seal:  # a consistent file of another kind: its checksum recomputed
        meta["checksum"] = content_digest(meta, arrays)
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(version=FORMAT_VERSION + 1), "format version 2; this neuropop reads"),
        (lambda m: m.update(format="other"), "is not a neuropop-checkpoint file"),
        (lambda m: m["model"].update(scenario=None, **{"class": "os:path"}), "os:path"),
        (lambda m: m["state"]["rules"].append(["gossip", {}]), "social rules"),
        (lambda m: m["state"].pop("collector"), "damaged"),
    ],
)
def test_an_unloadable_checkpoint_says_why(tmp_path, change, message):
    path = REGISTRY["gossip_learning"](rng=1, **BASE).save(tmp_path / "ok")
    bad = _rewrite(path, tmp_path / "bad.npz", change)
    with pytest.raises(CheckpointError, match=message):
        simulator.load(bad)


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04garbage"])
def test_a_corrupt_file_is_a_clear_error(tmp_path, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.npz"):
        simulator.load(bad)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        simulator.load(tmp_path / "missing.npz")


def test_save_replaces_a_symlink_and_never_writes_through_it(tmp_path):
    target = tmp_path / "outside.txt"
    target.write_text("keep me")
    link = tmp_path / "ck.npz"
    link.symlink_to(target)
    REGISTRY["gossip_learning"](rng=1, **BASE).save(link)
    assert target.read_text() == "keep me" and not link.is_symlink()
    assert read_metadata(link)["seed"] == 1


def _edit_array(path, out, key, change):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[key] = change(arrays[key])
    np.savez(out, **arrays)
    return out


def test_a_file_changed_after_it_was_written_is_refused_before_use(tmp_path):
    """Any change to a checkpoint's document or arrays, even one that leaves a valid npz (a
    task's agent count: the data kernel would have written past its buffers and crashed the
    process), is refused by the checksum, naming the file; without the entry (files written
    before checksums) a file loads as before."""
    model = REGISTRY["social_learning"](rng=1, **BASE)
    model.run_for(2)
    path = model.save(tmp_path / "ok")
    scalars = lambda m: m["state"]["attributes"]["task"]["__scalars__"]  # noqa: E731
    edits = [
        lambda m: scalars(m).update(n_agents=-1),
        lambda m: scalars(m).update(n_agents=BASE["n_agents"] + 1),
        lambda m: m.update(steps=7),
        lambda m: m["state"]["attributes"]["timings"].update(train={}),
        lambda m: m.update(checksum="0" * 64),
    ]
    for i, change in enumerate(edits):
        bad = _rewrite(path, tmp_path / f"doc{i}.npz", change, seal=False)
        with pytest.raises(CheckpointError, match=f"doc{i}.npz: its content does not match"):
            simulator.load(bad)
    with np.load(path, allow_pickle=False) as data:
        keys = [k for k in data.files if k != META_KEY]
    for key in keys:
        for j, change in enumerate((lambda a: a[:-1], lambda a: a.astype(np.float16))):
            bad = _edit_array(path, tmp_path / f"arr{j}.npz", key, change)
            with pytest.raises(CheckpointError, match="does not match its checksum"):
                simulator.load(bad)
    unsealed = _rewrite(path, tmp_path / "old.npz", lambda m: m.pop("checksum"), seal=False)
    again = simulator.load(unsealed)
    again.run_for(2)
    model.run_for(2)
    pd.testing.assert_frame_equal(model_table(again), model_table(model))


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["state"]["attributes"]["task"]["__scalars__"].update(n_agents=-1),
        lambda m: m["state"]["attributes"]["task"]["__scalars__"].update(n_agents=13),
        lambda m: m["state"]["attributes"]["task"]["__scalars__"].update(n_agents=1.5),
        lambda m: m["state"]["attributes"].update(consensus_step="x"),
        lambda m: m["state"]["attributes"]["timings"].update(train=[]),
        lambda m: m["state"]["attributes"]["rng"]["__generator__"]["state"].update(inc=-1),
        lambda m: m["state"]["collector"]["model_vars"].update(mean_loss=[1.0]),
    ],
)
def test_a_consistent_file_with_impossible_state_is_refused_not_run(tmp_path, change):
    """A file edited and given a matching checksum (a crafted file) whose state the model cannot
    hold: a task sized for another number of agents (the data kernel would write past its
    buffers), a scalar of another kind, a broken random state, columns of unequal lengths. Each
    is refused at load with a CheckpointError naming what (a scratch fuzz of 5,765 such files of
    three scenarios found no other way to a traceback or a crash)."""
    model = REGISTRY["social_learning"](rng=1, **BASE)
    model.run_for(2)
    path = model.save(tmp_path / "ok")
    bad = _rewrite(path, tmp_path / "bad.npz", change)
    with pytest.raises(CheckpointError, match="bad.npz"):
        simulator.load(bad)


def test_a_crafted_array_of_another_shape_or_kind_is_refused(tmp_path):
    model = REGISTRY["social_learning"](rng=1, **BASE)
    model.run_for(2)
    path = model.save(tmp_path / "ok")
    for j, change in enumerate((lambda a: a[:-1], lambda a: a.astype(str), lambda a: a[:0])):
        bad = _edit_array(path, tmp_path / f"bad{j}.npz", "attr.fitness_ema", change)
        _rewrite(bad, bad, lambda m: None)  # its checksum recomputed
        with pytest.raises(CheckpointError, match="fitness_ema"):
            simulator.load(bad)


class _GrowingHistory(REGISTRY["gossip_learning"]):
    """A user's scenario whose own state changes shape and kind legitimately."""

    state_attributes = (*REGISTRY["gossip_learning"].state_attributes, "history", "phase", "note")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.history, self.phase, self.note = np.zeros(0), 0, None

    def step(self):
        super().step()
        self.history = np.append(self.history, float(self.steps))
        self.phase += 0.5
        self.note = f"step {self.steps}"


def test_a_scenarios_own_state_may_grow_and_change_kind(tmp_path):
    """The checks refuse only what the model cannot hold: a user's history array that grows,
    a counter that goes from int to float and a note that replaces None all load."""
    model = _GrowingHistory(rng=3, **BASE)
    model.run_for(3)
    again = simulator.load(model.save(tmp_path / "c"), model_class=_GrowingHistory)
    assert again.history.tolist() == [1.0, 2.0, 3.0] and again.phase == 1.5
    assert again.note == "step 3"
    again.run_for(1)
    model.run_for(1)
    pd.testing.assert_frame_equal(model_table(again), model_table(model))


def test_a_bad_checkpoint_path_or_population_state_gets_a_clear_error(tmp_path):
    m = REGISTRY["gossip_learning"](n_agents=6, rng=0, graph="complete", measures="fast")
    m.step()
    for bad in (5, None, ""):
        with pytest.raises(simulator.ParameterError, match="path must be a file path"):
            m.save(bad)
        with pytest.raises(simulator.ParameterError, match="path must be a file path"):
            simulator.load(bad)
    with pytest.raises(simulator.ParameterError, match="its folder .*missing does not exist"):
        m.save(tmp_path / "missing" / "m.npz")
    assert not (tmp_path / "missing").exists()
    for bad, shown in (({}, "a dict without"), ([1], "a list")):
        with pytest.raises(simulator.ParameterError, match=f"state=.*{shown}"):
            m.population.set_state(bad)
