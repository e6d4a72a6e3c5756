"""Mesa's own SolaraViz serving a scenario (examples/solara_viz.py) in headless Chromium:
render, step, change a parameter, Reset (Mesa rebuilds the model with ``scenario=``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
LOAD_MS = 180_000
STEP_MS = 60_000
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def viz_server(tmp_path_factory):
    """``solara run examples/solara_viz.py`` on a free port (local front-end assets)."""
    from conftest import free_port, serve

    from simulator.app import assets

    port = free_port()
    log = tmp_path_factory.mktemp("viz") / "server.log"
    env = assets.server_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "solara",
        "run",
        str(ROOT / "examples" / "solara_viz.py"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-open",
        "--production",
    ]
    yield from serve(cmd, port, log, "solara", env=env, cwd=ROOT)


def status(page) -> str:
    return page.locator(".neuropop-viz-status").inner_text()


def wait_status(page, pattern: str) -> None:
    page.wait_for_function(
        "pat => { const el = document.querySelector('.neuropop-viz-status');"
        " return el && new RegExp(pat).test(el.innerText); }",
        arg=pattern,
        timeout=STEP_MS,
    )


def test_solaraviz_renders_steps_and_resets_with_a_changed_parameter(chromium, viz_server):
    page = chromium.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(viz_server)
        page.locator(".neuropop-viz-status").wait_for(timeout=LOAD_MS)
        assert status(page).startswith("step 0 | 64 agents")
        page.get_by_role("button", name="Step").click()
        wait_status(page, "^step 1 \\| 64 agents")
        # n_agents: Mesa's slider (SolaraViz's UserInputs); ten steps left with the keyboard
        slider = page.locator(".v-input", has=page.get_by_text("n_agents", exact=True))
        slider.get_by_role("slider").first.focus()
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        page.get_by_role("button", name="Reset").click()
        wait_status(page, "^step 0 \\| 54 agents \\| seed 0")
        page.get_by_role("button", name="Step").click()
        wait_status(page, "^step 1 \\| 54 agents")
        assert page.get_by_text("Traceback").count() == 0
        assert page.locator(".v-alert.error").count() == 0
        hosts = {urlparse(u.removeprefix("blob:")).hostname for u in requests if "://" in u}
        assert hosts <= {"127.0.0.1"}, sorted(hosts)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "solaraviz-failure.png"), full_page=True)
        raise
    finally:
        page.close()
