"""Sweep specs: values, ranges, combinations, seeds, and invalid specs refused by line."""

from __future__ import annotations

import textwrap

import pytest

from simulator import ParameterError
from simulator.sweep import SpecError, load_spec


def spec_text(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


BASE = spec_text(
    """
    model = "gossip_learning"
    steps = 5
    seeds = {count = 2, base = 10}

    [fixed]
    n_agents = 8
    measures = "fast"

    [vary]
    mixing_rate = [0.0, 0.5, 1.0]
    lr = {start = 0.01, stop = 0.1, num = 4}
    """
)


def test_all_combinations_times_seeds_with_inclusive_ranges():
    spec = load_spec(BASE)
    assert spec.vary["lr"] == (0.01, 0.04, 0.07, 0.1)
    assert spec.seeds == (10, 11)
    runs = spec.runs()
    assert len(runs) == 3 * 4 * 2
    combos = {(r.params["mixing_rate"], r.params["lr"], r.seed) for r in runs}
    assert len(combos) == 24
    assert all(r.params["n_agents"] == 8 and r.steps == 5 for r in runs)
    assert spec.swept == ["mixing_rate", "lr"]


def test_step_range_includes_stop_and_integer_parameters_stay_integers():
    spec = load_spec(
        {
            "model": "gossip_learning",
            "steps": 2,
            "vary": {
                "n_agents": {"start": 8, "stop": 16, "step": 4},
                "mixing_rate": {"start": 0.0, "stop": 0.3, "step": 0.1},
            },
        }
    )
    assert spec.vary["n_agents"] == (8, 12, 16)
    assert all(type(v) is int for v in spec.vary["n_agents"])
    assert spec.vary["mixing_rate"] == (0.0, 0.1, 0.2, 0.3)


def test_combinations_are_crossed_with_vary_and_hidden_lists_mean_one_value_each():
    spec = load_spec(
        spec_text(
            """
            model = "gossip_learning"
            steps = 1
            [vary]
            hidden = [4, [8, 8]]
            [[combinations]]
            graph = "ring"
            [[combinations]]
            graph = "watts_strogatz"
            graph_params = {k = 2, p = 0.5}
            """
        )
    )
    assert spec.vary["hidden"] == ((4,), (8, 8))
    runs = spec.runs()
    assert len(runs) == 4
    assert {(r.params["hidden"], r.params["graph"]) for r in runs} == {
        ((4,), "ring"),
        ((4,), "watts_strogatz"),
        ((8, 8), "ring"),
        ((8, 8), "watts_strogatz"),
    }
    assert spec.swept == ["hidden", "graph", "graph_params"]


def test_run_ids_depend_only_on_model_parameters_seed_and_steps():
    a, b = load_spec(BASE), load_spec("# a comment changes nothing\n" + BASE)
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]
    assert a.hash == b.hash
    ids = [r.run_id for r in a.runs()]
    assert len(set(ids)) == len(ids)
    longer = load_spec(BASE.replace("steps = 5", "steps = 6"))
    assert not set(ids) & {r.run_id for r in longer.runs()}


def test_normalized_spec_reads_back_to_the_same_sweep():
    spec = load_spec(BASE.replace("seeds = {count = 2, base = 10}", "record = {every = 2}"))
    again = load_spec(spec.to_dict())
    assert again.hash == spec.hash
    assert [r.run_id for r in again.runs()] == [r.run_id for r in spec.runs()]


def test_record_sets_how_often_the_model_measures_unless_collect_every_is_given():
    every = load_spec(BASE.replace("steps = 5", 'steps = 5\nrecord = "every"'))
    assert "collect_every" not in every.runs()[0].params
    k = load_spec(BASE.replace("steps = 5", "steps = 5\nrecord = {every = 2}"))
    assert k.runs()[0].params["collect_every"] == 2
    end = load_spec(BASE.replace("steps = 5", 'steps = 5\nrecord = "end"'))
    assert end.runs()[0].params["collect_every"] == 5
    own = load_spec(BASE.replace('measures = "fast"', 'measures = "fast"\ncollect_every = 3'))
    assert own.runs()[0].params["collect_every"] == 3


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("edit", "line_with", "message"),
    [
        (("mixing_rate = [0.0, 0.5, 1.0]", "mixing_rat = [0.0]"), "mixing_rat", "mixing_rate"),
        (("mixing_rate = [0.0, 0.5, 1.0]", "mixing_rate = [0.0, 2.0]"), "mixing_rate", r"\[0, 1\]"),
        (("num = 4}", "num = 0}"), "lr =", "empty range"),
        (("lr = {start = 0.01, stop = 0.1, num = 4}", "lr = []"), "lr =", "empty list"),
        (
            (
                "lr = {start = 0.01, stop = 0.1, num = 4}",
                "lr = {start = 0.1, stop = 0.0, step = 0.1}",
            ),
            "lr =",
            "empty range",
        ),
        (("n_agents = 8", 'n_agents = "eight"'), "n_agents", "integer"),
        (("n_agents = 8", "n_agents = 8.5"), "n_agents", "integer"),
        (("mixing_rate = [0.0, 0.5, 1.0]", "mixing_rate = 0.5"), "mixing_rate", r"\[fixed\]"),
        (("seeds = {count = 2, base = 10}", "seeds = [1, 1]"), "seeds", "distinct"),
        (("steps = 5", "steps = -1"), "steps", "steps must be"),
        (("steps = 5", "steps = 5\nseed = 3"), "seed = 3", "seeds"),
        (("steps = 5", 'steps = 5\nmeasures = ["probe_los"]'), "probe_los", "unknown measure"),
        (("steps = 5", 'steps = 5\nrecord = "sometimes"'), "record", "record"),
        (('model = "gossip_learning"', 'model = "gossip"'), "model", "scenarios are"),
        (("n_agents = 8", "n_agents = 8\nmixing_rate = 0.1"), "mixing_rate = 0.1", "both"),
    ],
)
def test_invalid_spec_is_refused_naming_its_line(edit, line_with, message):
    text = BASE.replace(*edit)
    with pytest.raises(SpecError, match=message) as info:
        load_spec(text)
    assert f"line {_line_of(text, line_with)}:" in str(info.value)
    assert isinstance(info.value, ParameterError)


def test_bad_value_in_the_second_combination_names_that_tables_line():
    text = spec_text(
        """
        model = "gossip_learning"
        steps = 1
        [[combinations]]
        graph = "ring"
        mixing_rate = 0.5
        [[combinations]]
        graph = "ring"
        mixing_rate = 5.0
        """
    )
    with pytest.raises(SpecError, match="mixing_rate=5.0") as info:
        load_spec(text)
    assert "line 8:" in str(info.value)


def test_spec_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BASE.replace("n_agents = 8", "n_agents = 1"))
    with pytest.raises(
        SpecError, match=rf"bad.toml, line {_line_of(BASE, 'n_agents')}: n_agents=1"
    ):
        load_spec(path)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")
    path.write_text("model = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(path)


def test_a_spec_that_is_not_utf8_text_is_refused_by_name(tmp_path):
    spec = tmp_path / "binary.toml"
    spec.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(SpecError, match="binary.toml' is not UTF-8 text"):
        load_spec(spec)
