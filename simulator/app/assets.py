"""Front-end assets of the browser app, fetched once at set-up time from the npm registry.

A Solara page loads its JavaScript, CSS and fonts from a public CDN by default, so offline it is
blank. Solara can serve them from a local folder instead (``SOLARA_ASSETS_PROXY_CACHE_DIR``),
laid out as ``<dir>/<npm package>@<version>/...``: the unpacked npm tarballs. :func:`fetch`
fills such a folder with ``npm pack`` (``make assets`` runs it once); the app only reads it.
Nothing is downloaded when the app runs.

Command line::

    python -m simulator.app.assets [--dest DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# What solara 1.64's Vue 2 page requests from the CDN (its template, font-awesome, the grid
# layout); tests/test_app.py checks the installed solara still asks for these versions.
PACKAGES: tuple[str, ...] = (
    "@widgetti/solara-vuetify-app@10.1.1",
    "requirejs@2.3.6",
    "font-awesome@4.5.0",
    "@widgetti/vue-grid-layout@2.3.13-alpha.2",
    # the charts: solara's VegaLite widget (FigureAltair) asks for these major versions
    "vega@5",
    "vega-lite@5",
    "vega-embed@6",
)
ENV_VAR = "SOLARA_ASSETS_PROXY_CACHE_DIR"
STAMP = ".complete"
# Server settings: no usage statistics sent out; no "runs on Solara" banner over the page's
# corner; a session whose browser went away without closing the page (a dropped connection)
# is ended after 10 minutes, not solara's 24 hours, so it frees its session slot and memory;
# Numba's OpenMP workers wait passively between kernel calls (spinning, they would keep a core
# busy while the page sits idle).
SERVER_ENV = {
    "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
    "SOLARA_THEME_SHOW_BANNER": "False",
    "SOLARA_KERNEL_CULL_TIMEOUT": "10m",
    "OMP_WAIT_POLICY": "passive",
}


def project_root() -> Path:
    """The source checkout holding this package (where ``.solara-assets`` lives)."""
    return Path(__file__).resolve().parents[2]


def default_dir() -> Path:
    """``$SOLARA_ASSETS_PROXY_CACHE_DIR`` if set, else ``<project root>/.solara-assets``."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else project_root() / ".solara-assets"


def missing(dest: str | os.PathLike | None = None, packages: tuple[str, ...] = PACKAGES) -> list:
    """The packages of ``packages`` not yet unpacked in ``dest`` (default :func:`default_dir`)."""
    root = Path(dest) if dest is not None else default_dir()
    return [spec for spec in packages if not (root / spec / "package.json").is_file()]


def _unpack(tgz: Path, target: Path) -> None:
    """Untar an npm tarball (members under ``package/``) into ``target``, atomically."""
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(tgz) as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) < 2:
                continue
            member.name = str(Path(*parts[1:]))  # strip the top folder ("package/")
            members.append(member)
        tar.extractall(tmp, members=members, filter="data")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def fetch(
    dest: str | os.PathLike | None = None,
    packages: tuple[str, ...] = PACKAGES,
    npm: str = "npm",
    quiet: bool = False,
) -> Path:
    """Unpack every missing package of ``packages`` into ``dest`` with ``npm pack``; idempotent.

    Parameters
    ----------
    dest : path, optional
        The assets folder (default :func:`default_dir`); created if needed.
    packages : tuple of str
        npm specs ``name@version``; each lands in ``dest/name@version/``.
    npm : str
        The npm executable.

    Returns
    -------
    Path
        ``dest``. A ``.complete`` stamp listing the packages is written once all are there.
    """
    root = Path(dest) if dest is not None else default_dir()
    root.mkdir(parents=True, exist_ok=True)
    todo = missing(root, packages)
    if todo and shutil.which(npm) is None:
        raise RuntimeError(f"{npm!r} not found: install Node.js/npm to fetch {', '.join(todo)}")
    for spec in todo:
        if not quiet:
            print(f"fetching {spec} from the npm registry", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [npm, "pack", spec, "--json", "--pack-destination", tmp],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"npm pack {spec} failed:\n{out.stderr.strip()}")
            filename = json.loads(out.stdout)[0]["filename"]
            _unpack(Path(tmp) / filename, root / spec)
    (root / STAMP).write_text("\n".join(packages) + "\n")
    return root


def server_env(env: dict[str, str] | None = None, dest: str | os.PathLike | None = None) -> dict:
    """``env`` (default a copy of ``os.environ``) for the app server: assets from ``dest``.

    Values already set in ``env`` win.
    """
    env = dict(os.environ if env is None else env)
    env.setdefault(ENV_VAR, str(Path(dest) if dest is not None else default_dir()))
    for key, value in SERVER_ENV.items():
        env.setdefault(key, value)
    return env


def use_local_assets() -> Path | None:
    """Point an already-imported solara server at the local assets, if none was configured.

    For ``solara run simulator/app/app.py`` started without ``SOLARA_ASSETS_PROXY_CACHE_DIR``:
    solara reads its settings before it imports the page, so the page sets them here. Returns
    the folder used, or None when the variable was set by the user or the assets are missing.
    Either way the "runs on Solara" banner, which would cover the page's corner, is switched off.
    """
    try:
        from solara.server import settings
    except ImportError:  # pragma: no cover - solara is a dependency
        return None
    settings.theme.show_banner = False
    if os.environ.get(ENV_VAR) or missing():
        return None
    settings.assets.proxy_cache_dir = default_dir()
    settings.telemetry.mixpanel_enable = False
    return default_dir()


def main(argv: list[str] | None = None) -> int:
    """``python -m simulator.app.assets``: fetch (default) or check the assets folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=None, help="assets folder (default .solara-assets)")
    parser.add_argument("--check", action="store_true", help="only report missing packages")
    args = parser.parse_args(argv)
    if args.check:
        todo = missing(args.dest)
        for spec in todo:
            print(f"missing: {spec}")
        return 1 if todo else 0
    try:
        root = fetch(args.dest)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"solara assets ready in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
