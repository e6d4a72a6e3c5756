"""The browser app end to end: `simulator app` served, driven in headless Chromium by Playwright.

Needs the system Chromium (``apt-get install chromium``; never a downloaded browser), the
``browser`` extra (playwright) and the front-end assets (``make assets``). Every request the
page makes must go to the local server: the app works offline.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

pytestmark = pytest.mark.browser

LOAD_MS = 180_000  # a cold Numba cache compiles kernels on the first build
STEP_MS = 60_000
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PANELS = ("neuropop-graph", "neuropop-map", "neuropop-series", "neuropop-agent")


def shown_step(page) -> int:
    text = page.locator(".neuropop-status").inner_text()
    return int(re.search(r"step (\d+)", text).group(1))


def wait_step(page, condition) -> None:
    page.wait_for_function(
        "cond => { const el = document.querySelector('.neuropop-status');"
        " if (!el) return false; const m = el.innerText.match(/step (\\d+)/);"
        " return m && eval(cond)(parseInt(m[1])); }",
        arg=condition,
        timeout=STEP_MS,
    )


def chart_svg(page, panel: str) -> str:
    """The SVG markup of a panel's chart (changes when the chart is redrawn with new data)."""
    return page.locator(f".{panel} svg.marks").first.evaluate("el => el.outerHTML")


def charts_drawn(page) -> bool:
    return all(page.locator(f".{panel} svg.marks .role-mark").count() for panel in PANELS)


@pytest.fixture
def app(chromium, app_server):
    """A fresh page (its own session) with its model built and every panel drawn."""
    page = chromium.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(app_server)
    page.locator(".neuropop-status").wait_for(timeout=LOAD_MS)
    for panel in PANELS:
        page.locator(f".{panel} svg.marks").first.wait_for(timeout=LOAD_MS)
    yield page
    page.close()


def test_page_shows_graph_map_and_plots_with_no_request_off_the_machine(app):
    assert charts_drawn(app)
    assert shown_step(app) == 0
    assert "64 agents" in app.locator(".neuropop-status").inner_text()
    hosts = set()
    for url in app.requests:
        if url.startswith("data:"):
            continue
        hosts.add(urlparse(url.removeprefix("blob:")).hostname)
    assert hosts == {"127.0.0.1"}, sorted(u for u in app.requests if "127.0.0.1" not in u)
    assert any("/_solara/cdn/" in url for url in app.requests)  # served from the local copy
    assert any("vega-lite@5" in url for url in app.requests)  # the charts' library, local too
    assert app.get_by_text("runs on Solara").count() == 0  # no banner over the content


def test_step_play_and_reset_change_what_is_shown(app):
    before = {panel: chart_svg(app, panel) for panel in ("neuropop-series", "neuropop-map")}
    app.get_by_role("button", name="Step").click()
    wait_step(app, "s => s === 1")
    app.wait_for_function(
        "before => Object.entries(before).every(([panel, svg]) => {"
        " const el = document.querySelector('.' + panel + ' svg.marks');"
        " return el && el.outerHTML !== svg; })",
        arg=before,
        timeout=STEP_MS,
    )
    app.get_by_role("button", name="Play").click()
    wait_step(app, "s => s >= 4")
    app.get_by_role("button", name="Pause").click()
    app.get_by_role("button", name="Play").wait_for(timeout=STEP_MS)
    # a frame running at Pause may still finish; then nothing may change
    stable = shown_step(app)
    for _ in range(30):
        app.wait_for_timeout(2000)
        if shown_step(app) == stable:
            break
        stable = shown_step(app)
    else:
        raise AssertionError("the step count kept changing after Pause")
    ARTIFACTS.mkdir(exist_ok=True)
    app.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    app.get_by_role("button", name="Reset").click()
    wait_step(app, "s => s === 0")


def test_download_gives_the_run_so_far_as_csv(app):
    app.get_by_role("button", name="Step").click()
    wait_step(app, "s => s === 1")
    with app.expect_download(timeout=STEP_MS) as info:
        app.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "gossip_learning-seed0-step1.csv"
    lines = Path(download.path()).read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "step" and {"function_dispersion", "model", "seed"} <= set(header)
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1"]


def test_changing_a_control_changes_the_model(app):
    field = app.get_by_label("n_agents", exact=True)
    field.fill("30")
    field.press("Enter")
    app.wait_for_function(
        "() => { const el = document.querySelector('.neuropop-status');"
        " return el && el.innerText.includes('30 agents'); }",
        timeout=STEP_MS,
    )
    app.get_by_label("agent (0..29)").wait_for(timeout=STEP_MS)


def test_an_invalid_value_marks_its_field_and_blocks_nothing_else(app):
    field = app.get_by_label("n_agents", exact=True)
    field.fill("-5")
    field.press("Enter")
    marked = app.locator(".v-input.error--text", has=app.get_by_label("n_agents", exact=True))
    marked.wait_for(timeout=STEP_MS)
    assert "n_agents=-5 is not allowed" in marked.inner_text()
    app.get_by_role("button", name="Step").click()
    wait_step(app, "s => s === 1")
    lr = app.get_by_label("lr", exact=True)  # another field still rebuilds the model
    lr.fill("0.02")
    lr.press("Enter")
    wait_step(app, "s => s === 0")
    assert marked.count() == 1  # the bad value stays marked until it is fixed


def test_clicking_an_agent_in_the_graph_inspects_it(app):
    from simulator.app.graphview import graph_view
    from simulator.app.session import MAX_DRAWN_NODES
    from simulator.registry import get_model

    model = get_model("gossip_learning")(rng=0)  # the page's default model and seed
    view = graph_view(model.graph, MAX_DRAWN_NODES, seed=0)
    gaps = np.hypot(*(view.xy[:, None, :] - view.xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(gaps, np.inf)
    i = int(np.argmax(gaps.min(axis=1)))  # the most isolated agent: an unambiguous target
    assert view.nodes[i] != 0  # not the agent shown at start
    node = app.locator(".neuropop-graph svg.marks .mark-symbol").first.locator("path").nth(i)
    node.hover()
    tooltip = app.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible", timeout=STEP_MS)
    assert f"agent{view.nodes[i]}" in re.sub(r"\s", "", tooltip.inner_text())
    node.click()
    app.wait_for_function(
        "want => [...document.querySelectorAll('input')].some(el => el.value === want)",
        arg=str(view.nodes[i]),
        timeout=STEP_MS,
    )
    chooser = app.get_by_label(re.compile(r"agent \(0\.\.63\)"))
    assert chooser.input_value() == str(view.nodes[i])


def test_the_measures_panel_zooms_and_has_labelled_axes(app):
    for _ in range(3):
        app.get_by_role("button", name="Step").click()
        wait_step(app, f"s => s >= {_ + 1}")
    # the chart of step 3 drawn (vega replaces the SVG when new data arrives): 4 points
    app.wait_for_function(
        "() => { const g = document.querySelector('.neuropop-series svg.marks .mark-symbol');"
        " return g && g.querySelectorAll('path').length === 4; }",
        timeout=STEP_MS,
    )
    chart = app.locator(".neuropop-series svg.marks").first
    titles = chart.locator(".role-axis-title").evaluate_all("els => els.map(e => e.textContent)")
    assert "step" in titles and "consensus_distance" in titles  # the Watch list's first
    before = chart.locator(".role-axis-label").first.evaluate("e => e.textContent")
    box = chart.locator(".mark-line path").first.bounding_box()
    app.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    app.mouse.wheel(0, -600)  # zoom in on the step axis
    app.wait_for_function(
        "before => { const el = document.querySelector("
        "'.neuropop-series svg.marks .role-axis-label');"
        " return el && el.textContent !== before; }",
        arg=before,
        timeout=STEP_MS,
    )


def test_own_parameters_first_advanced_collapsed_slider_values_shown(app):
    params = app.locator(".neuropop-params")
    labels = params.locator("label").all_inner_texts()
    assert labels.index("n_agents") < labels.index("mixing_rate")
    advanced = app.get_by_label("batch_size", exact=True)  # not set by gossip_learning
    assert advanced.count() == 0 or not advanced.is_visible()  # collapsed
    app.get_by_text("advanced (").click()
    advanced.wait_for(state="visible", timeout=STEP_MS)
    shown = app.locator(".neuropop-slider-value").all_inner_texts()
    assert "0.5" in shown  # mixing_rate's value beside its slider


def test_an_oversized_request_is_refused_and_other_sessions_keep_working(app, chromium):
    other = chromium.new_page()
    try:
        other.goto(app.url)
        other.locator(".neuropop-status").wait_for(timeout=LOAD_MS)
        field = app.get_by_label("n_agents", exact=True)
        field.fill("1000000")
        field.press("Enter")
        marked = app.locator(".v-input.error--text", has=field)
        marked.wait_for(timeout=STEP_MS)
        assert "over this server's limit" in marked.inner_text()
        assert "64 agents" in app.locator(".neuropop-status").inner_text()
        other.get_by_role("button", name="Step").click()
        wait_step(other, "s => s === 1")
        app.get_by_role("button", name="Step").click()
        wait_step(app, "s => s === 1")
    finally:
        other.close()


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """`simulator app --max-sessions 1 --max-agents 500` on a free port."""
    import sys

    from conftest import free_port, serve

    port = free_port()
    log = tmp_path_factory.mktemp("small") / "server.log"
    cmd = [sys.executable, "-m", "simulator", "app", "--no-open", "--port", str(port)]
    cmd += ["--max-sessions", "1", "--max-agents", "500"]
    yield from serve(cmd, port, log, "the app server")


def test_a_full_server_turns_the_next_visitor_away_until_a_page_closes(chromium, small_server):
    first = chromium.new_page()
    first.goto(small_server)
    first.locator(".neuropop-status").wait_for(timeout=LOAD_MS)
    field = first.get_by_label("n_agents", exact=True)
    field.fill("501")
    field.press("Enter")
    marked = first.locator(".v-input.error--text", has=field)
    try:
        marked.wait_for(timeout=STEP_MS)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        first.screenshot(path=str(ARTIFACTS / "full-server.png"), full_page=True)
        raise
    assert "limit of 500 agents" in marked.inner_text()
    second = chromium.new_page()
    try:
        second.goto(small_server)
        busy = second.locator(".neuropop-busy-server")
        busy.wait_for(timeout=LOAD_MS)
        assert "This server is busy" in busy.inner_text()
        first.close()  # frees the slot
        second.reload()
        second.locator(".neuropop-status").wait_for(timeout=LOAD_MS)
    finally:
        second.close()
