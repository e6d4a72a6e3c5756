"""Finding scenarios: registered names, MODULE:CLASS references, entry points, shadowing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simulator.config import ParameterError
from simulator.params import Param, did_you_mean, resolve
from simulator.registry import (
    builtin_registry,
    get_model,
    load_registry,
    own_parameters,
)

ROOT = Path(__file__).resolve().parent.parent

SCENARIO_SOURCE = '''
from simulator import NeuralModel
from models._base import with_defaults

class Crowd(NeuralModel):
    """A small crowd of gossiping agents (a user's own scenario)."""
    params = with_defaults(n_agents=9, mixing_rate=0.5, measures="fast")

NOT_A_MODEL = 3
'''


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def cli(*args: str, cwd: Path, extra_path: str | None = None) -> subprocess.CompletedProcess:
    """``python -m simulator ARGS`` in ``cwd`` (which Python puts first on sys.path)."""
    env = dict(os.environ)
    paths = [str(ROOT)] + ([extra_path] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_dotted_module_in_the_current_folder_names_a_scenario(tmp_path, monkeypatch):
    write(tmp_path / "lab" / "__init__.py", "")
    write(tmp_path / "lab" / "crowds.py", SCENARIO_SOURCE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    cls = get_model("lab.crowds:Crowd")
    m = cls(rng=0)
    m.step()
    assert (cls.__name__, m.n_agents, m.steps) == ("Crowd", 9, 1)


def test_a_path_to_a_py_file_names_a_scenario(tmp_path):
    path = write(tmp_path / "somewhere" / "crowd_file.py", SCENARIO_SOURCE)
    cls = get_model(f"{path}:Crowd")
    assert cls(rng=0).n_agents == 9
    assert get_model(f"{path}:Crowd") is cls  # imported once


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("{dir}/nothing_here.py:Crowd", "no such file"),
        ("{dir}/crowd_err.py:Missing", "has no 'Missing'"),
        ("{dir}/crowd_err.py:NOT_A_MODEL", "not a scenario"),
        ("no_such_module_xyz:Crowd", "cannot import 'no_such_module_xyz'"),
        ("gossip_lerning", "did you mean 'gossip_learning'"),
        ("gossip", "did you mean 'gossip_learning'"),
    ],
)
def test_a_bad_reference_gets_a_one_line_error(tmp_path, ref, message):
    write(tmp_path / "crowd_err.py", SCENARIO_SOURCE)
    with pytest.raises(ParameterError, match=message) as info:
        get_model(ref.format(dir=tmp_path))
    assert "\n" not in str(info.value)


def test_a_users_models_py_never_shadows_the_builtin_scenarios(tmp_path):
    write(tmp_path / "models.py", SCENARIO_SOURCE.replace("from models._base", "from models._base"))
    listed = cli("models", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for name in builtin_registry():
        assert name in listed.stdout
    # and the user's own file is still reachable by its name
    ran = cli("run", "models:Crowd", "--steps", "1", "--out", "out", "--quiet", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "out" / "model.csv").exists()


def test_a_foreign_models_module_imported_first_gets_a_one_line_error(tmp_path):
    write(tmp_path / "models.py", "REGISTRY = {}\n")
    code = (
        "import models\n"
        "from simulator.registry import load_registry\n"
        "from simulator.config import ParameterError\n"
        "try:\n    load_registry()\nexcept ParameterError as e:\n    print(e)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "is shadowed by" in out.stdout and str(tmp_path / "models.py") in out.stdout


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed package (a dist-info on sys.path) declaring scenarios by entry point."""
    site = tmp_path / "site"
    write(site / "neuropop_plugin_mod.py", SCENARIO_SOURCE)
    info = site / "neuropop_plugin-0.1.dist-info"
    write(info / "METADATA", "Metadata-Version: 2.1\nName: neuropop-plugin\nVersion: 0.1\n")
    write(
        info / "entry_points.txt",
        "[neuropop.scenarios]\n"
        "plugin_crowd = neuropop_plugin_mod:Crowd\n"
        "plugin_broken = neuropop_plugin_mod:Missing\n"
        "gossip_learning = neuropop_plugin_mod:Crowd\n",
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_installed_packages_scenarios_appear_by_name(plugin):
    with pytest.warns(UserWarning) as caught:
        registry = load_registry()
    assert registry["plugin_crowd"].__name__ == "Crowd"
    assert registry["gossip_learning"] is builtin_registry()["gossip_learning"]  # never replaced
    assert "plugin_broken" not in registry
    messages = " ".join(str(w.message) for w in caught)
    assert "could not be loaded" in messages and "already taken" in messages
    with pytest.warns(UserWarning):
        assert get_model("plugin_crowd")(rng=0).n_agents == 9


def test_the_command_line_runs_an_installed_scenario_by_name(plugin, tmp_path):
    ran = cli(
        "run",
        "plugin_crowd",
        "--steps",
        "2",
        "--out",
        "o",
        "--quiet",
        cwd=tmp_path,
        extra_path=str(plugin),
    )
    assert ran.returncode == 0, ran.stderr
    assert "plugin_crowd" in cli("models", cwd=tmp_path, extra_path=str(plugin)).stdout


def test_a_sweep_runs_a_users_scenario_file(tmp_path):
    from simulator.sweep import sweep

    write(tmp_path / "crowd_sweep.py", SCENARIO_SOURCE)
    spec = write(
        tmp_path / "spec.toml",
        f"""
        model = "{tmp_path / "crowd_sweep.py"}:Crowd"
        steps = 2
        seeds = [0, 1]
        [vary]
        mixing_rate = [0.0, 1.0]
        """,
    )
    runs = sweep(spec, tmp_path / "out", backend="local", workers=1, progress=None)
    assert len(runs) == 4 and (runs["status"] == "ok").all()


def test_unknown_parameter_names_get_a_did_you_mean():
    specs = {"mixing_rate": Param(0.0), "n_agents": Param(3, "int")}
    with pytest.raises(ParameterError, match=r"'mixin_rate' \(did you mean 'mixing_rate'\?\)"):
        resolve(specs, {"mixin_rate": 1.0}, "M")
    assert did_you_mean("zzz", specs) == ""


def test_the_command_line_suggests_the_parameter_meant(tmp_path):
    ran = cli("run", "gossip_learning", "--set", "n_agent=3", "--steps", "1", cwd=tmp_path)
    assert ran.returncode != 0
    assert "did you mean 'n_agents'" in ran.stderr


def test_own_parameters_are_those_a_scenario_sets_or_adds():
    own, rest = own_parameters(get_model("gan_population"))
    assert {"n_agents", "task", "gan_diversity", "d_lr"} <= set(own)
    assert "fedavg_every" in rest and not set(own) & set(rest)
    own, _ = own_parameters(get_model("monoculture"))
    assert "adopt_share" in own and "mixing_rate" not in own


def test_models_name_lists_the_scenarios_own_parameters_first(tmp_path):
    out = cli("models", "monoculture", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    own_at, rest_at = text.index("Set by this scenario"), text.index("Other parameters")
    assert own_at < text.index("  adopt_share ") < rest_at < text.index("  mixing_rate ")
    assert "base default 0.0" in text  # what the scenario's value replaces


def test_a_scenario_module_that_raises_on_import_gets_a_clear_error(tmp_path):
    bad = tmp_path / "broken_scenario.py"
    bad.write_text("x = 1\nraise RuntimeError('boom at import')\n")
    with pytest.raises(ParameterError, match=r"raised RuntimeError: boom at import \(at .*:2\)"):
        get_model(f"{bad}:Model")
    assert not any(getattr(m, "__file__", None) == str(bad) for m in list(sys.modules.values()))
