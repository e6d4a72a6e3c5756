"""Starting the app's server: the solara command, its environment, the warnings a user needs.

``simulator app`` calls :func:`serve`, which becomes the server process (``os.execve`` on
POSIX, so Ctrl-C and SIGTERM reach solara directly). The server reads its limits and extra
scenarios from the environment set here (:mod:`simulator.app.limits`,
``simulator.app.session.SCENARIOS_ENV``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from simulator.app import assets
from simulator.app.limits import Limits, is_loopback

__all__ = [
    "require_free_port",
    "serve",
    "server_command",
    "server_environment",
    "startup_warnings",
]

PAGE = Path(__file__).resolve().parent / "app.py"


def server_command(host: str, port: int, no_open: bool) -> list[str]:
    """``python -m solara run .../app.py --host H --port P --production [--no-open]``."""
    cmd = [sys.executable, "-m", "solara", "run", str(PAGE), "--host", host]
    cmd += ["--port", str(port), "--production"]
    return [*cmd, "--no-open"] if no_open else cmd


def server_environment(limits: Limits, scenarios: tuple[str, ...] = ()) -> dict[str, str]:
    """The server's environment: local front-end assets, the limits, the user's scenarios."""
    from simulator.app.session import SCENARIOS_ENV

    env = assets.server_env()
    env.update(limits.to_env())
    if scenarios:
        env[SCENARIOS_ENV] = "\n".join(scenarios)  # the server runs in this folder too
    return env


def startup_warnings(host: str, port: int, limits: Limits, env: dict[str, str]) -> list[str]:
    """Warnings for the user: a non-loopback address, missing front-end assets."""
    out = []
    if not is_loopback(host):
        out.append(
            f"warning: --host {host} serves the app beyond this machine: anyone who can reach "
            f"port {port} can run simulations here (up to {limits.max_sessions} sessions of "
            f"{limits.max_memory_mb:,.0f} MiB). Use --host 127.0.0.1 unless you mean it."
        )
    folder = env[assets.ENV_VAR]
    absent = assets.missing(folder)
    if absent:
        out.append(
            f"warning: front-end assets missing in {folder} ({', '.join(absent)}): the page "
            "will need the internet. Fetch them once with `make assets` "
            "(or `python -m simulator.app.assets`)."
        )
    return out


def require_free_port(host: str, port: int) -> None:
    """ParameterError naming ``port`` when the server could not listen on ``host:port`` (another
    server holds it): said before the server starts, not as its traceback after "serving".
    Binds as the server will (address reuse on, so a port in TIME_WAIT counts as free)."""
    from simulator.config import fail

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise fail("host", host, f"an address of this machine ({exc.strerror or exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise fail(
                "port",
                port,
                f"a port free on {host} ({exc.strerror or exc}: another server holds it?)",
            ) from None


def serve(
    host: str,
    port: int,
    no_open: bool,
    limits: Limits,
    scenarios: tuple[str, ...] = (),
    echo: Callable[[str], None] = print,
) -> int:
    """Run the server (replacing this process on POSIX); the exit code elsewhere. A ``port``
    already taken on ``host`` is refused first (ParameterError naming it)."""
    require_free_port(host, port)
    env = server_environment(limits, scenarios)
    for line in startup_warnings(host, port, limits, env):
        echo(line)
    cmd = server_command(host, port, no_open)
    echo(f"serving the app on http://{host}:{port}")
    sys.stderr.flush()
    if os.name == "posix":  # become the server: signals (Ctrl-C, SIGTERM) reach it directly
        os.execve(sys.executable, cmd, env)
        return 0  # only reached when execve is replaced (tests)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
