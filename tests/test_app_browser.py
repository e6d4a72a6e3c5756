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


def image_src(page, panel: str) -> str:
    return page.locator(f".{panel} img").get_attribute("src") or ""


def images_loaded(page) -> bool:
    return all(
        page.locator(f".{panel} img").evaluate("img => img.complete && img.naturalWidth > 0")
        for panel in PANELS
    )


@pytest.fixture
def app(chromium, app_server):
    """A fresh page (its own session) with its model built and every panel drawn."""
    page = chromium.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(app_server)
    page.locator(".neuropop-status").wait_for(timeout=LOAD_MS)
    for panel in PANELS:
        page.locator(f".{panel} img").wait_for(timeout=LOAD_MS)
    page.wait_for_function(
        "panels => panels.every(p => { const img = document.querySelector('.' + p + ' img');"
        " return img && img.complete && img.naturalWidth > 0; })",
        arg=list(PANELS),
        timeout=LOAD_MS,
    )
    yield page
    page.close()


def test_page_shows_graph_map_and_plots_with_no_request_off_the_machine(app):
    assert images_loaded(app)
    assert shown_step(app) == 0
    assert "64 agents" in app.locator(".neuropop-status").inner_text()
    hosts = set()
    for url in app.requests:
        if url.startswith("data:"):
            continue
        hosts.add(urlparse(url.removeprefix("blob:")).hostname)
    assert hosts == {"127.0.0.1"}, sorted(u for u in app.requests if "127.0.0.1" not in u)
    assert any("/_solara/cdn/" in url for url in app.requests)  # served from the local copy


def test_step_play_and_reset_change_what_is_shown(app):
    before = {panel: image_src(app, panel) for panel in ("neuropop-series", "neuropop-map")}
    app.get_by_role("button", name="Step").click()
    wait_step(app, "s => s === 1")
    app.wait_for_function(
        "before => Object.entries(before).every(([panel, src]) => {"
        " const img = document.querySelector('.' + panel + ' img');"
        " return img && img.src && img.src !== src; })",
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


def test_an_invalid_value_shows_its_error_and_the_app_keeps_working(app):
    field = app.get_by_label("n_agents", exact=True)
    field.fill("-5")
    field.press("Enter")
    error = app.locator(".neuropop-error")
    error.wait_for(timeout=STEP_MS)
    assert "n_agents=-5 is not allowed" in error.inner_text()
    app.get_by_role("button", name="Step").click()
    wait_step(app, "s => s === 1")


def test_clicking_an_agent_in_the_graph_inspects_it(app):
    from simulator.app.graphview import SIZE_PX, graph_view
    from simulator.app.session import MAX_DRAWN_NODES
    from simulator.registry import get_model

    model = get_model("gossip_learning")(rng=0)  # the page's default model and seed
    view = graph_view(model.graph, MAX_DRAWN_NODES, seed=0)
    gaps = np.hypot(*(view.xy[:, None, :] - view.xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(gaps, np.inf)
    i = int(np.argmax(gaps.min(axis=1)))  # the most isolated agent: an unambiguous target
    assert view.nodes[i] != 0  # not the agent shown at start
    xmin, xmax, ymin, ymax = view.limits
    x, y = view.xy[i]
    px = (x - xmin) / (xmax - xmin) * SIZE_PX[0]
    py = (ymax - y) / (ymax - ymin) * SIZE_PX[1]
    app.locator(".neuropop-graph img").click(position={"x": px, "y": py})
    chooser = app.get_by_label(re.compile(r"agent \(0\.\.63\)"))
    app.wait_for_function(
        "want => [...document.querySelectorAll('input')].some(el => el.value === want)",
        arg=str(view.nodes[i]),
        timeout=STEP_MS,
    )
    assert chooser.input_value() == str(view.nodes[i])
