"""The documentation is true: its snippets run as written, every output column is documented,
and the own-scenario example does what docs/OWN_SCENARIOS.md says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator.registry import get_model, load_registry

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(page: Path, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(page.read_text()) if kind == lang]


def run_python(code: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_every_python_snippet_of_a_page_runs_as_written(page, tmp_path):
    """All Python blocks of the page, in order, in one fresh interpreter (as a reader would),
    in an empty folder holding only a link to the examples (files the snippets write land there)."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    code = "\n\n".join(blocks(page, "python"))
    out = run_python(code, cwd=tmp_path)
    assert out.returncode == 0, f"{page.name}:\n{out.stderr[-3000:]}"


def documented(page: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_0-9]+)`", (ROOT / "docs" / page).read_text(), re.M))


def test_every_measure_of_every_scenario_is_documented_in_outputs():
    names = documented("OUTPUTS.md")
    for scenario, cls in sorted(load_registry().items()):
        for level in ("standard", "fast"):
            m = cls(rng=0, n_agents=12, measures=level, agent_every=1)
            missing = set(m.measure_names) - names
            assert not missing, (scenario, level, missing)
            missing = set(m.agents_dataframe().columns) - names
            assert not missing, (scenario, "agents.csv", missing)


def test_run_and_sweep_columns_are_documented(tmp_path):
    from simulator.sweep import sweep

    text = (ROOT / "docs" / "OUTPUTS.md").read_text()
    spec = tmp_path / "s.toml"
    spec.write_text(
        'model = "gossip_learning"\nsteps = 2\nseeds = [0]\nmeasures = ["probe_loss"]\n'
        "[fixed]\nn_agents = 8\n[vary]\nmixing_rate = [0.0, 1.0]\n"
    )
    runs = sweep(spec, tmp_path / "out", backend="serial", progress=None)
    params = {"n_agents", "mixing_rate", "collect_every"}
    for column in set(runs.columns) - params - {"probe_loss"}:
        assert f"`{column}`" in text, column
    config = (ROOT / "docs" / "OUTPUTS.md").read_text().split("### config.json")[1]
    from simulator.collect import write_run

    m = get_model("gossip_learning")(rng=0, n_agents=8)
    write_run(m, tmp_path / "run", "gossip_learning", 0)
    import json

    for key in json.loads((tmp_path / "run" / "config.json").read_text()):
        assert f"`{key}`" in config, key


def test_largest_cluster_is_documented_as_a_share():
    row = next(
        line
        for line in (ROOT / "docs" / "OUTPUTS.md").read_text().splitlines()
        if line.startswith("| `largest_cluster`")
    )
    assert "share" in row and "not a count" in row
    m = get_model("polarization")(rng=0, n_agents=20)
    assert 0 < m.largest_cluster <= 1


def own_scenario():
    return get_model(f"{ROOT / 'examples' / 'own_scenario.py'}:ZealotGossip")


def test_the_own_scenario_example_keeps_its_zealots_and_they_hold_the_crowd_back():
    cls = own_scenario()
    m = cls(rng=0, zealot_share=0.2)
    zealots = m.zealots.agents
    assert len(zealots) == 8
    start = m.population.params[zealots].copy()
    m.run_for(60)
    np.testing.assert_array_equal(m.population.params[zealots], start)
    free = cls(rng=0, zealot_share=0.0)
    free.run_for(60)
    assert m.learner_probe_loss > 1.5 * free.learner_probe_loss
    assert 0 < m.zealot_distance < 1  # the learners moved towards the zealots


def test_the_own_scenario_runs_from_the_command_line(tmp_path):
    ref = f"{ROOT / 'examples' / 'own_scenario.py'}:ZealotGossip"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "run",
            ref,
            "--steps",
            "3",
            "--set",
            "zealot_share=0.2",
            "--out",
            str(tmp_path / "z"),
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    header = (tmp_path / "z" / "model.csv").read_text().splitlines()[0].split(",")
    assert {"learner_probe_loss", "zealot_distance", "zealot_share"} <= set(header)


@pytest.mark.slow
def test_every_simulator_command_of_the_readme_runs_as_written(tmp_path):
    """The README's `simulator ...` lines (not `app`, which serves until stopped), in order."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for page in (ROOT / "README.md", ROOT / "docs" / "OWN_SCENARIOS.md"):
        for body in blocks(page, "bash"):
            for line in body.replace("\\\n", " ").splitlines():
                command = line.split("#")[0].strip()
                if not command.startswith("simulator ") or command.startswith("simulator app"):
                    continue
                args = shlex.split(command)[1:]
                out = subprocess.run(
                    [sys.executable, "-m", "simulator", *args],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                assert out.returncode == 0, f"{command}\n{out.stderr[-2000:]}"


@pytest.mark.slow
def test_scenarios_page_quotes_the_measured_monoculture_agreement():
    """docs/SCENARIOS.md's agreement at adopt_share 0.75 and 0.95, as examples/monoculture.py
    measures them (mean of 5 seeds, step 100)."""
    text = (ROOT / "docs" / "SCENARIOS.md").read_text().split("## monoculture")[1]
    quoted = re.search(r"agreement ([\d.]+) -> ([\d.]+) \(([\d.]+) at 0\.95\)", text)
    assert quoted, "the monoculture paragraph no longer quotes agreement as expected"
    code = (
        "import sys; sys.path.insert(0, 'examples')\n"
        "import monoculture as m\n"
        "i = m.COLUMNS.index('agreement')\n"
        "print(*(f'{m.run(s)[i]:.3f}' for s in (0.0, 0.75, 0.95)))\n"
    )
    out = run_python(code, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr
    measured = [float(v) for v in out.stdout.split()]
    for quote, value in zip(quoted.groups(), measured):
        assert abs(float(quote) - value) <= 0.006, (quoted.groups(), measured)
