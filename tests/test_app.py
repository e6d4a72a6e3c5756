"""The browser app, in-process: the page rendered with solara.render and driven through widgets.

The page's model work runs on a per-session worker thread, so each interaction is followed by
waiting for the page to show its effect (``wait_for``).
"""

from __future__ import annotations

import io
import json
import re
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

solara = pytest.importorskip("solara")
v = pytest.importorskip("ipyvuetify")

from simulator.app import assets  # noqa: E402
from simulator.app.controls import control_kind  # noqa: E402
from simulator.app.graphview import (  # noqa: E402
    cluster_colours,
    graph_view,
    snowball_sample,
)
from simulator.app.projection import HomogenizationMap, top2_directions  # noqa: E402
from simulator.app.session import Session  # noqa: E402
from simulator.collect import model_table, write_table  # noqa: E402
from simulator.registry import load_registry  # noqa: E402

TIMEOUT = 180  # seconds: a cold Numba cache compiles kernels on the first build


# ---------------------------------------------------------------------------- helpers
def wait_for(condition, timeout: float = TIMEOUT, what: str = "condition"):
    """Poll ``condition()`` until it is truthy; return its value or fail."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def texts(rc, cls: str) -> list[str]:
    """Texts of the page's Html elements with CSS class ``cls``."""
    return [str(w.children[0]) for w in rc.find(v.Html, class_=cls).widgets if w.children]


def status(rc) -> str:
    found = texts(rc, "neuropop-status")
    return found[0] if found else ""


def agents_shown(rc) -> int | None:
    match = re.search(r"([\d,]+) agents", status(rc))
    return int(match.group(1).replace(",", "")) if match else None


def step_shown(rc) -> int | None:
    match = re.search(r"step (\d+)", status(rc))
    return int(match.group(1)) if match else None


def field(rc, label: str):
    """The parameter control with this label (text field, select, slider or checkbox)."""
    for cls in (v.TextField, v.Select, v.Slider, v.Checkbox):
        found = rc.find(cls, label=label).widgets
        if found:
            return found[0]
    raise AssertionError(f"no control labelled {label!r}")


def type_into(widget, text: str) -> None:
    """Type ``text`` into a text field and press Enter."""
    widget.v_model = text
    widget.fire_event("keyup.enter", None)


@pytest.fixture
def app_page():
    """A fresh page (its own session) rendered in-process, its model built."""
    from simulator.app.app import Page

    _, rc = solara.render(solara.AppLayout(children=[Page()]), handle_error=False)
    wait_for(lambda: step_shown(rc) == 0, what="the first model")
    yield rc
    rc.close()


# ---------------------------------------------------------------------------- the page
def test_every_parameter_of_every_scenario_gets_a_control():
    from simulator.app.controls import ParamControls

    session = Session(build=False)
    for scenario, cls in sorted(load_registry().items()):
        _, rc = solara.render(ParamControls(session, lambda *a: None, scenario, {}))
        try:
            for name, spec in cls.param_specs().items():
                widget = field(rc, name)
                if control_kind(spec) == "text":
                    assert spec.validate(name, widget.v_model) == spec.default
        finally:
            rc.close()


def test_switching_scenario_shows_its_parameters(app_page):
    field(app_page, "scenario").v_model = "social_learning"
    wait_for(lambda: status(app_page).startswith("social_learning:"), what="social_learning")
    specs = load_registry()["social_learning"].param_specs()
    wait_for(lambda: field(app_page, "task").v_model == specs["task"].default, what="its task")
    for name in specs:
        field(app_page, name)
    field(app_page, "seed")


def test_step_advances_the_model_and_reset_restores_step_zero(app_page):
    app_page.find(v.Btn, children=["Step"]).widget.click()
    wait_for(lambda: step_shown(app_page) == 1, what="step 1")
    app_page.find(v.Btn, children=["Step"]).widget.click()
    wait_for(lambda: step_shown(app_page) == 2, what="step 2")
    app_page.find(v.Btn, children=["Reset"]).widget.click()
    wait_for(lambda: step_shown(app_page) == 0, what="step 0 after Reset")


def test_play_steps_until_paused(app_page):
    app_page.find(v.Btn, children=["Play"]).widget.click()
    wait_for(lambda: (step_shown(app_page) or 0) >= 2, what="two steps while playing")
    app_page.find(v.Btn, children=["Pause"]).widget.click()
    wait_for(lambda: app_page.find(v.Btn, children=["Play"]).widgets, what="Play again")
    wait_until_stable(lambda: step_shown(app_page), what="the step count to stop")


def wait_until_stable(read, quiet: float = 2.0, timeout: float = 60.0, what: str = "value"):
    """Wait until ``read()`` stays the same for ``quiet`` seconds (a frame running at Pause
    may still finish); fail if it keeps changing for ``timeout`` seconds."""
    end = time.monotonic() + timeout
    value = read()
    while time.monotonic() < end:
        time.sleep(quiet)
        now = read()
        if now == value:
            return value
        value = now
    raise AssertionError(f"{what}: still changing after {timeout} s")


def test_changing_a_parameter_rebuilds_the_model(app_page):
    type_into(field(app_page, "n_agents"), "30")
    wait_for(lambda: agents_shown(app_page) == 30, what="30 agents")
    wait_for(
        lambda: app_page.find(v.TextField, label="agent (0..29)").widgets, what="agent chooser"
    )


def test_invalid_parameter_marks_its_field_and_the_page_keeps_working(app_page):
    type_into(field(app_page, "n_agents"), "-5")
    wait_for(lambda: field(app_page, "n_agents").error, what="the field's error")
    assert "n_agents=-5 is not allowed" in str(field(app_page, "n_agents").messages)
    assert agents_shown(app_page) == 64  # the previous model is kept
    app_page.find(v.Btn, children=["Step"]).widget.click()
    wait_for(lambda: step_shown(app_page) == 1, what="a step after the error")
    slider = field(app_page, "mixing_rate")  # another field still rebuilds the model
    slider.v_model = 0.2
    slider.fire_event("change", 0.2)
    wait_for(lambda: step_shown(app_page) == 0, what="the rebuilt model")
    assert field(app_page, "n_agents").error  # still marked


def _alerts(rc) -> list[str]:
    out = []
    for alert in rc.find(v.Alert).widgets:
        out.append(" ".join(str(c) for c in alert.children))
    return out


def test_slider_commits_on_release(app_page):
    slider = field(app_page, "mixing_rate")
    slider.v_model = 0.2  # dragging: no rebuild yet
    slider.fire_event("change", 0.2)
    wait_for(lambda: field(app_page, "mixing_rate").v_model == 0.2, what="slider value")
    app_page.find(v.Btn, children=["Step"]).widget.click()
    wait_for(lambda: step_shown(app_page) == 1, what="step 1")


def test_two_pages_have_independent_models(app_page):
    from simulator.app.app import Page

    _, other = solara.render(solara.AppLayout(children=[Page()]), handle_error=False)
    try:
        wait_for(lambda: step_shown(other) == 0, what="the second page's model")
        app_page.find(v.Btn, children=["Step"]).widget.click()
        wait_for(lambda: step_shown(app_page) == 1, what="step 1 on the first page")
        assert step_shown(other) == 0
    finally:
        other.close()


# ---------------------------------------------------------------------------- the session
@pytest.fixture(scope="module")
def session():
    s = Session("gossip_learning", seed=3)
    assert s.set_param("n_agents", "24"), s.error
    assert s.step(3), s.error
    return s


def test_session_csv_is_the_table_simulator_run_writes(session, tmp_path):
    path = write_table(model_table(session.model, "gossip_learning"), tmp_path / "model")
    assert session.csv_bytes() == path.read_bytes()
    df = pd.read_csv(io.BytesIO(session.csv_bytes()))
    assert list(df["step"]) == [0, 1, 2, 3]
    assert session.csv_name() == "gossip_learning-seed3-step3.csv"


def test_session_keeps_the_model_on_a_bad_value_and_marks_its_field(session):
    before = session.model
    assert not session.set_param("graph_params", "{'k': 1000}")  # valid alone, not with 24
    assert "graph_params" in session.field_errors["graph_params"] and session.model is before
    assert session.error == ""
    assert session.set_param("mixing_rate", 0.25), session.field_errors  # other fields work
    assert session.model is not before and session.model.p["mixing_rate"] == 0.25
    assert session.model.p["graph_params"] == {"k": 4, "p": 0.1}  # the bad value was not used
    assert "graph_params" in session.field_errors  # still marked until it is fixed
    assert session.set_param("graph_params", "")  # emptied: back to the default
    assert "graph_params" not in session.field_errors


def test_two_bad_values_are_each_marked_on_their_own_field():
    s = Session("gossip_learning", seed=0)
    assert not s.set_param("n_agents", "-5")
    assert not s.set_param("lr", "100")
    assert set(s.field_errors) == {"n_agents", "lr"}
    assert "n_agents=-5 is not allowed" in s.field_errors["n_agents"]
    assert "lr=100" in s.field_errors["lr"]
    assert s.set_param("n_agents", "20") and s.model.n_agents == 20
    assert set(s.field_errors) == {"lr"}


def test_agent_info_matches_the_graph(session):
    m = session.model
    info = session.agent_info(5)
    assert info["neighbours"] == sorted(m.graph.neighbors(5))
    assert info["degree"] == m.graph.degree(5)
    assert info["loss"] == pytest.approx(float(m.losses[5]))


def test_control_kinds_follow_the_declarations():
    specs = load_registry()["gossip_learning"].param_specs()
    assert control_kind(specs["mixing_rate"]) == "slider"  # float in [0, 1]
    assert control_kind(specs["graph"]) == "select"
    assert control_kind(specs["graph_params"]) == "text"  # a dict
    assert control_kind(specs["n_agents"]) == "text"  # [2, 1e6]: too wide for a slider


# ---------------------------------------------------------------------------- views
def test_snowball_sample_is_capped_connected_and_seeded():
    import networkx as nx

    G = nx.convert_node_labels_to_integers(nx.grid_2d_graph(40, 40))
    a = snowball_sample(G, 300, np.random.default_rng(1))
    b = snowball_sample(G, 300, np.random.default_rng(1))
    assert len(a) == 300 and np.array_equal(a, b)
    assert nx.is_connected(G.subgraph(a.tolist()))
    small = nx.path_graph(10)
    assert np.array_equal(snowball_sample(small, 300, np.random.default_rng(0)), np.arange(10))


def test_layout_is_computed_from_the_seed():
    import networkx as nx

    G = nx.watts_strogatz_graph(50, 4, 0.1, seed=0)
    view, again = graph_view(G, seed=7), graph_view(G, seed=7)
    assert np.array_equal(view.xy, again.xy) and not view.sampled
    assert np.abs(view.xy).max() == pytest.approx(1.0)
    assert len(view.edges) == G.number_of_edges()


def test_cluster_colours_give_the_largest_cluster_the_first_colour():
    labels = np.array([5, 5, 5, 2, 2, 9])
    colours = cluster_colours(labels)
    assert np.array_equal(colours[0], colours[1]) and not np.array_equal(colours[0], colours[3])
    assert np.allclose(colours[0], cluster_colours(np.array([1, 1, 0]))[0])  # rank 0
    assert np.allclose(colours[5], (0.62, 0.62, 0.62, 1.0))  # a singleton is grey


def test_top2_directions_match_the_svd_oracle():
    rng = np.random.default_rng(0)
    for k, d in [(60, 20), (20, 60), (560, 530)]:
        scale = np.full(d, 0.5)
        scale[:3] = (10, 4, 1.5)  # a spectrum with gaps, as populations have
        X = rng.standard_normal((k, d)) * scale
        X -= X.mean(axis=0)
        V = top2_directions(X, None)
        _, _, vt = np.linalg.svd(X, full_matrices=False)
        assert np.allclose(np.abs(np.sum(V * vt[:2].T, axis=0)), 1, atol=1e-6)
        flipped = top2_directions(X, -V)
        assert np.allclose(flipped, -V, atol=1e-6)  # signs follow the previous frame


def test_map_of_identical_agents_is_a_single_point(session):
    m = session.model
    pop = m.population
    saved = pop.params.copy()
    try:
        pop.params[:] = pop.params[0]
        m._probe_cache = None
        frame = HomogenizationMap(m.n_agents).frame(m, "function")
        assert frame.spread == pytest.approx(0, abs=1e-9)
        assert np.allclose(frame.xy, frame.xy[0], atol=1e-9)
        assert frame.truth is not None
        weights = HomogenizationMap(m.n_agents).frame(m, "weights")
        assert weights.spread == pytest.approx(0, abs=1e-6)
    finally:
        pop.params[:] = saved
        m._probe_cache = None


# ---------------------------------------------------------------------------- assets and CLI
def test_asset_list_matches_what_the_installed_solara_requests():
    from solara.server import settings

    template = (
        Path(solara.__file__).parent / "server" / "templates" / "solara.html.j2"
    ).read_text()
    requested = set(re.findall(r"\{\{cdn\}\}/(@?[\w.-]+(?:/[\w.-]+)?@[\w.-]+)/", template))
    requested = {r for r in requested if "vuetify3" not in r}  # the Vue 3 page is not used
    requested.add(settings.assets.fontawesome_path.strip("/").split("/")[0])
    assert requested <= set(assets.PACKAGES)


@pytest.mark.skipif(sys.platform == "win32", reason="a shell-script stand-in for npm")
def test_fetch_unpacks_npm_tarballs_into_versioned_folders_once(tmp_path):
    log = tmp_path / "calls.log"
    fake = tmp_path / "npm"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import io, json, sys, tarfile, pathlib\n"
        f"open({str(log)!r}, 'a').write(sys.argv[2] + '\\n')\n"
        "spec = sys.argv[2]\n"
        "dest = pathlib.Path(sys.argv[sys.argv.index('--pack-destination') + 1])\n"
        "name = spec.replace('@', '').replace('/', '-') + '.tgz'\n"
        "with tarfile.open(dest / name, 'w:gz') as tar:\n"
        "    for path, text in [('package/package.json', json.dumps({'name': spec})),\n"
        "                       ('package/dist/app.js', 'x = 1;')]:\n"
        "        data = text.encode(); info = tarfile.TarInfo(path); info.size = len(data)\n"
        "        tar.addfile(info, io.BytesIO(data))\n"
        "print(json.dumps([{'filename': name}]))\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    dest = tmp_path / "assets"
    packages = ("@scope/pkg@1.2.3", "plain@0.1.0")
    assets.fetch(dest, packages, npm=str(fake), quiet=True)
    assert (dest / "@scope/pkg@1.2.3/dist/app.js").read_text() == "x = 1;"
    assert json.loads((dest / "plain@0.1.0/package.json").read_text()) == {"name": "plain@0.1.0"}
    assert (dest / assets.STAMP).read_text().split() == list(packages)
    assert assets.missing(dest, packages) == []
    assets.fetch(dest, packages, npm=str(fake), quiet=True)  # idempotent: nothing fetched
    assert log.read_text().split() == list(packages)


def test_app_command_serves_the_page_with_local_assets(monkeypatch, tmp_path):
    import os

    from click.testing import CliRunner

    from simulator.cli import main

    calls = []
    monkeypatch.setenv(assets.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append((argv, env)))
    monkeypatch.setattr("subprocess.call", lambda argv, env: calls.append((argv, env)) or 0)
    result = CliRunner().invoke(main, ["app", "--port", "8799", "--no-open"])
    assert result.exit_code == 0, result.output
    argv, env = calls[0]
    assert argv[-6:] == ["--host", "127.0.0.1", "--port", "8799", "--production", "--no-open"]
    assert argv[argv.index("run") + 1].endswith(str(Path("simulator", "app", "app.py")))
    assert env[assets.ENV_VAR] == str(tmp_path)
    assert env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False"
    assert "missing" in result.output  # the empty folder has no assets: the user is told


def test_app_command_refuses_a_port_another_server_holds_before_serving(monkeypatch):
    """A taken port is a one-line error naming it (exit 2), said before "serving the app": the
    server is never started."""
    import os
    import socket

    from click.testing import CliRunner

    from simulator.cli import main

    calls = []
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append(argv))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = CliRunner().invoke(main, ["app", "--port", str(port), "--no-open"])
    assert result.exit_code == 2 and not calls
    assert f"port={port} is not allowed" in result.output and "serving" not in result.output


# ---------------------------------------------------------------------------- charts and panels
def test_default_panels_are_the_scenarios_watch_measures_without_repeats():
    from simulator.app.watch import default_measures, watch_list

    for scenario, cls in sorted(load_registry().items()):
        m = cls(rng=0, n_agents=12)
        shown = default_measures(m)
        assert shown and len(shown) == len(set(shown)), scenario
        assert set(shown) <= set(watch_list(cls)) & set(m.measure_names), scenario
        if m.task.kind == "regression":
            assert not {"ambiguity", "ensemble_gain"} <= set(shown), scenario
    gan = load_registry()["gan_population"](rng=0, n_agents=8)
    assert default_measures(gan)[:2] == ["mode_coverage", "population_coverage"]
    assert "consensus_time" not in default_measures(gan)


def test_a_scenarios_declared_watch_tuple_wins():
    from simulator.app.watch import default_measures
    from simulator.registry import get_model

    root = Path(__file__).resolve().parent.parent
    cls = get_model(f"{root / 'examples' / 'own_scenario.py'}:ZealotGossip")
    assert default_measures(cls(rng=0)) == ["learner_probe_loss", "zealot_distance", "probe_loss"]


def test_two_names_of_one_series_are_plotted_once(session):
    from simulator.app.render import shown_measures

    session.set_view(measures=["ambiguity", "ensemble_gain", "probe_loss"])
    try:
        assert shown_measures(session) == ["ensemble_gain", "probe_loss"]
    finally:
        session.set_view(measures=[])


def _layers(spec: dict) -> list[dict]:
    out = []
    for key in ("layer", "concat"):
        for part in spec.get(key, []):
            out += _layers(part)
    return out or [spec]


def test_charts_label_their_axes_offer_tooltips_and_zoom(session):
    import json

    from simulator.app import charts
    from simulator.app.render import draw

    draw(session)
    specs = session.images
    for name in ("graph", "map", "series", "agent"):
        spec = specs[name]
        json.dumps(spec, allow_nan=False)  # valid JSON: NaN became null
        assert spec["$schema"].endswith("v5.json")
        assert spec["usermeta"]["embedOptions"] == {"renderer": "svg", "actions": False}
        marks = [layer for layer in _layers(spec) if "encoding" in layer]
        assert any("tooltip" in layer["encoding"] for layer in marks), name
        titled = [layer for layer in marks if layer["encoding"].get("x", {}).get("title")]
        assert titled and all(layer["encoding"]["y"].get("title") for layer in titled), name
    for name in ("graph", "map", "series"):  # zoom and pan: interval selections bound to scales
        spec = specs[name]
        params = spec.get("params", []) + [p for x in _layers(spec) for p in x.get("params", [])]
        zooms = [p for p in params if p["select"]["type"] == "interval" and p["bind"] == "scales"]
        assert zooms, name
    from simulator.app.render import shown_measures

    assert charts_names(specs["series"]) == shown_measures(session)
    m = session.model
    assert len(specs["graph"]["datasets"]["points"]) == m.n_agents
    assert len(specs["map"]["datasets"]["points"]) == m.n_agents
    rows = specs["series"]["datasets"]["series"]
    assert {r["measure"] for r in rows} == set(charts_names(specs["series"]))
    assert len(rows) == len(m.model_dataframe()) * len(set(charts_names(specs["series"])))
    assert charts.series_spec(m.model_dataframe(), ["consensus_distance"])["datasets"]


def charts_names(spec: dict) -> list[str]:
    return [layer["encoding"]["y"]["title"] for layer in _layers(spec)]


def test_own_parameters_come_first_and_the_rest_under_advanced():
    from simulator.app.controls import ParamControls
    from simulator.registry import own_parameters

    session = Session(build=False)
    cls = load_registry()["monoculture"]
    _, rest = own_parameters(cls)
    _, rc = solara.render(ParamControls(session, lambda *a: None, "monoculture", {}))
    try:
        advanced = rc.find(v.ExpansionPanel).widget
        header = rc.find(v.ExpansionPanelHeader).widget
        assert header.children == [f"advanced ({len(rest)} more)"]
        inside = {
            w.label
            for cls_ in (v.TextField, v.Select, v.Slider, v.Checkbox)
            for w in rc.find(cls_).widgets
            if _contains(advanced, w)
        }
        assert inside == set(rest)
        assert rc.find(v.ExpansionPanels).widget.v_model is None  # collapsed
        values = [
            str(w.children[0]) for w in rc.find(v.Html, class_="neuropop-slider-value").widgets
        ]
        assert "0.5" in values and "0.9" in values  # adopt_share and lr_spread, shown
    finally:
        rc.close()


def _contains(root, widget) -> bool:
    if root is widget:
        return True
    return any(
        _contains(c, widget) for c in getattr(root, "children", []) if hasattr(c, "children")
    )


def test_a_full_server_tells_the_next_visitor_it_is_busy(monkeypatch):
    import simulator.app.app as app_module
    from simulator.app.limits import SessionSlots

    monkeypatch.setattr(app_module, "SLOTS", SessionSlots(1))
    _, first = solara.render(solara.AppLayout(children=[app_module.Page()]), handle_error=False)
    try:
        wait_for(lambda: step_shown(first) == 0, what="the first page's model")
        _, second = solara.render(
            solara.AppLayout(children=[app_module.Page()]), handle_error=False
        )
        try:
            assert any("This server is busy" in a for a in _alerts(second))
            assert step_shown(second) is None  # no model was built for it
        finally:
            second.close()
    finally:
        first.close()


def test_a_users_scenario_is_offered_in_the_picker(tmp_path):
    from simulator.app.session import SCENARIOS_ENV, app_registry

    own = tmp_path / "mine_app.py"
    own.write_text(
        "from simulator import NeuralModel\n"
        "from simulator.params import with_defaults\n"
        "class Mine(NeuralModel):\n    '''Mine.'''\n"
        "    params = with_defaults(n_agents=10, measures='fast')\n"
    )
    ref = f"{own}:Mine"
    s = Session(registry=app_registry({SCENARIOS_ENV: ref}), build=False)
    assert ref in s.scenarios
    assert s.set_scenario(ref), s.error
    assert s.model.n_agents == 10 and s.step(1)


def test_asset_list_has_the_chart_libraries_solaras_vegalite_widget_requests():
    vue = Path(solara.__file__).parent / "widgets" / "vue" / "vegalite.vue"
    requested = set(
        re.findall(r"getCdn\(\)\}/((?:vega|vega-lite|vega-embed)@\d+)/", vue.read_text())
    )
    assert requested == {"vega@5", "vega-lite@5", "vega-embed@6"}
    assert requested <= set(assets.PACKAGES)


def test_every_scenarios_charts_are_valid_json_after_a_step():
    import json

    from simulator.app.render import PANELS, draw

    for scenario in sorted(load_registry()):
        s = Session(scenario, seed=0)
        assert s.set_param("n_agents", "16"), (scenario, s.field_errors)
        assert s.step(1), (scenario, s.error)
        draw(s)
        assert set(s.images) == set(PANELS), scenario
        for panel, spec in s.images.items():
            text = json.dumps(spec, allow_nan=False)
            assert '"datasets"' in text, (scenario, panel)
