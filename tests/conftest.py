"""Shared test setup: kept minimal on purpose."""

import os

# Numba's OpenMP threading layer spins its idle workers by default; on a machine shared with
# other jobs that turns a tiny parallel kernel call from ~0.1 ms into ~15 ms. Passive waiting
# changes no result (training is bit-identical on any thread count), only the wall time.
# Must be set before the first parallel kernel runs; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")


# ==== browser app (tests/test_app_browser.py) ========================================== begin
# Fixtures for the end-to-end tests of the Solara app: a server started with `simulator app`
# on a free port, and Debian's headless Chromium driven by Playwright (never a downloaded
# browser). Kept in this block so other fixtures can be added around it.
import shutil as _app_shutil
import socket as _app_socket
import subprocess as _app_subprocess
import sys as _app_sys
import time as _app_time
import urllib.request as _app_urllib

import pytest as _app_pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with _app_socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_path() -> str | None:
    """The system Chromium (``$NEUROPOP_CHROMIUM`` or chromium on PATH), or None."""
    return os.environ.get("NEUROPOP_CHROMIUM") or _app_shutil.which("chromium")


def serve(cmd: list[str], port: int, log, what: str, **popen):
    """Generator for a module fixture: start ``cmd`` (output to the file ``log``), wait until
    http://127.0.0.1:PORT/ answers 200 (a clear failure with the log's end if the process
    exits or 120 s pass), yield that URL, then stop the process."""
    with open(log, "wb") as out:
        proc = _app_subprocess.Popen(cmd, stdout=out, stderr=_app_subprocess.STDOUT, **popen)
    url = f"http://127.0.0.1:{port}/"
    deadline = _app_time.monotonic() + 120
    while True:
        try:
            with _app_urllib.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or _app_time.monotonic() > deadline:
            proc.kill()
            _app_pytest.fail(f"{what} did not start:\n{log.read_text()[-3000:]}")
        _app_time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except _app_subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@_app_pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """URL of a `simulator app` server on a free port; stopped after the module's tests."""
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "server.log"
    cmd = [_app_sys.executable, "-m", "simulator", "app", "--no-open", "--port", str(port)]
    yield from serve(cmd, port, log, "the app server")


@_app_pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A Playwright persistent browser context on the system Chromium (fresh profile)."""
    playwright = _app_pytest.importorskip("playwright.sync_api")
    path = chromium_path()
    if path is None:
        _app_pytest.skip("no system chromium (apt-get install chromium); never a downloaded one")
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=path,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 1000},
        )
        yield context
        context.close()


# ==== browser app ========================================================================= end
