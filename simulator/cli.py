"""The ``simulator`` command: run a scenario, sweep parameters, plot a sweep, list scenarios.

Heavy libraries are imported inside commands so ``simulator --help`` stays fast.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click


class _Progress:
    """A tqdm bar on a terminal; a plain line every 10% or 30 s when output goes to a log."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.done = total, quiet, 0
        self.start = self.last = time.monotonic()
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", file=sys.stderr)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        tenth = max(self.total // 10, 1)
        if not self.quiet and (
            self.done % tenth == 0 or now - self.last > 30 or self.done == self.total
        ):
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / max(rate, 1e-9)
            click.echo(
                f"step {self.done}/{self.total}  {rate:.1f} steps/s  ETA {eta:.0f} s", err=True
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    from simulator.params import parse_value

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--set")
        key, value = pair.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


@click.group()
@click.version_option(package_name="neuropop")
def main() -> None:
    """Populations of neural-network agents on social graphs: homogenization and emergence."""


@main.command()
@click.argument("model")
@click.option("--steps", default=100, show_default=True, type=click.IntRange(0))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="a model parameter, e.g. --set n_agents=200 --set graph=ring (repeatable)",
)
@click.option(
    "--out",
    "out_dir",
    default="out/run",
    show_default=True,
    type=click.Path(file_okay=False),
    help="output folder",
)
@click.option(
    "--agents-every",
    type=click.IntRange(0),
    default=None,
    help="also write agents.csv with one row per agent every K steps",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True
)
@click.option("--quiet", is_flag=True, help="no progress output")
def run(
    model: str,
    steps: int,
    seed: int,
    sets: tuple[str, ...],
    out_dir: str,
    agents_every: int | None,
    fmt: str,
    quiet: bool,
) -> None:
    """Run scenario MODEL for --steps steps and write model.csv, agents.csv, config.json."""
    from simulator.collect import write_run
    from simulator.config import ParameterError
    from simulator.registry import get_model

    try:
        params = _parse_sets(sets)
        if agents_every is not None:
            params["agent_every"] = agents_every
        if fmt == "parquet":
            _require_pyarrow()
        cls = get_model(model)
        m = cls(rng=seed, **params)
    except ParameterError as exc:
        raise click.UsageError(str(exc)) from None
    progress = _Progress(steps, quiet)
    start = time.perf_counter()
    for _ in range(steps):
        m.step()
        progress.update()
    progress.close()
    written = write_run(m, out_dir, model, steps, command=["simulator", *sys.argv[1:]], fmt=fmt)
    if not quiet:
        took = time.perf_counter() - start
        click.echo(f"{model}: {steps} steps of {m.n_agents} agents in {took:.1f} s", err=True)
        last = m.model_dataframe().iloc[-1]
        shown = {k: last[k] for k in m.measure_names[:8]}
        click.echo("final: " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()), err=True)
        for path in written.values():
            click.echo(f"wrote {path}")


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        from simulator.config import ParameterError

        raise ParameterError(
            "format='parquet' needs pyarrow: pip install 'neuropop[parquet]'"
        ) from None


@main.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="output folder [default: out/<spec file name>]; rerunning into it resumes",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "dask", "serial"]),
    default="local",
    show_default=True,
    help="local: every core (processes); dask: a Dask cluster; serial: this process",
)
@click.option("--workers", type=click.IntRange(1), help="local processes [default: every core]")
@click.option(
    "--scheduler",
    envvar="NEUROPOP_DASK_SCHEDULER",
    metavar="ADDRESS",
    help="Dask scheduler, e.g. tcp://host:8786 [env NEUROPOP_DASK_SCHEDULER; none: local cluster]",
)
@click.option("--resume", is_flag=True, help="continue the sweep in --out (SPEC optional)")
@click.option("--force", is_flag=True, help="write into a folder of another spec/code revision")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True
)
@click.option("--fsync", is_flag=True, help="fsync after every run (survive a power cut)")
@click.option("--quiet", is_flag=True, help="no progress output")
def sweep(
    spec: str | None,
    out_dir: str | None,
    backend: str,
    workers: int | None,
    scheduler: str | None,
    resume: bool,
    force: bool,
    fmt: str,
    fsync: bool,
    quiet: bool,
) -> None:
    """Run the parameter sweep SPEC (a TOML file) and write runs.csv, steps.csv, manifest.json.

    Finished runs are on disk as they end: after a crash, run the same command again (or
    --resume --out DIR) and only the missing or failed runs run. Exits with status 1 if any
    run failed (see the error column of runs.csv and errors.log).
    """
    from pathlib import Path

    from simulator.config import ParameterError
    from simulator.sweep import sweep as run_sweep

    if spec is None and not resume:
        raise click.UsageError("give a SPEC file (or --resume --out DIR)")
    if out_dir is None:
        if spec is None:
            raise click.UsageError("--resume needs --out DIR")
        out_dir = str(Path("out") / Path(spec).stem)
    start = time.perf_counter()
    try:
        runs = run_sweep(
            spec,
            out_dir,
            backend=backend,
            workers=workers,
            scheduler=scheduler,
            force=force,
            fmt=fmt,
            progress=None if quiet else "auto",
            fsync=fsync,
            command=["simulator", *sys.argv[1:]],
        )
    except ParameterError as exc:
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo(f"interrupted: finished runs are in {out_dir}; rerun to resume", err=True)
        raise SystemExit(130) from None
    failed = int((runs["status"] != "ok").sum())
    if not quiet:
        took = time.perf_counter() - start
        click.echo(
            f"{len(runs)} runs ({failed} failed) in {took:.1f} s -> {out_dir}/runs.csv, steps.csv",
            err=True,
        )
    if failed:
        raise SystemExit(1)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--stat",
    type=click.Choice(["final", "mean"]),
    default="final",
    show_default=True,
    help="sweeps, per run: the value at the last step, or the mean over the recorded steps",
)
@click.option("--measure", "measures", multiple=True, help="a measure to draw (repeatable)")
@click.option("--out", "figdir", type=click.Path(file_okay=False), help="[default: FOLDER/figures]")
def plot(folder: str, stat: str, measures: tuple[str, ...], figdir: str | None) -> None:
    """Draw the standard figures of FOLDER as PNG: a sweep's (each measure against each swept
    parameter, a heat map when two are swept, measures against steps) or a single run's
    (measures against steps; per-agent columns when agents.csv is there)."""
    from simulator.config import ParameterError
    from simulator.sweep.plot import plot_folder

    try:
        paths = plot_folder(folder, list(measures) or None, stat=stat, figdir=figdir)
    except ParameterError as exc:
        raise click.UsageError(str(exc)) from None
    for path in paths:
        click.echo(f"wrote {path}")


@main.command()
@click.argument("name", required=False)
def models(name: str | None) -> None:
    """List scenarios, or the parameters of scenario NAME (or MODULE:CLASS): the ones it sets
    first, with its values, then the others with their defaults."""
    from simulator.config import ParameterError
    from simulator.registry import get_model, load_registry

    try:
        if name is None:
            registry = load_registry()
            for key, cls in sorted(registry.items()):
                first = ((cls.__doc__ or "").strip().splitlines() or [""])[0]
                click.echo(f"{key:20s} {first}")
            click.echo(
                "\n`simulator models NAME` lists a scenario's parameters; your own scenarios "
                "run as MODULE:CLASS (see docs/OWN_SCENARIOS.md)."
            )
            return
        cls = get_model(name)
    except ParameterError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo((cls.__doc__ or "").strip() + "\n")
    _param_table(cls)


def _param_table(cls: Any) -> None:
    """The scenario's own parameters (and the base default each replaces), then the rest."""
    from simulator.model_params import BASE_PARAMS
    from simulator.registry import own_parameters

    specs = cls.param_specs()
    own, rest = own_parameters(cls)
    click.echo(f"Set by this scenario ({len(own)}):")
    click.echo(f"  {'parameter':22s} {'value':28s} allowed")
    for key in own:
        spec = specs[key]
        base = BASE_PARAMS.get(key)
        if base is None:
            note = "new in this scenario"
        elif base.default == spec.default:
            note = "same as the base default"
        else:
            note = f"base default {base.default!r}"
        click.echo(
            f"  {key:22s} {spec.default!r:28s} {spec.allowed()}  ({note})"
            + (f"  -- {spec.help}" if spec.help else "")
        )
    click.echo(f"\nOther parameters, at their base defaults ({len(rest)}):")
    click.echo(f"  {'parameter':22s} {'default':28s} allowed")
    for key in rest:
        spec = specs[key]
        click.echo(
            f"  {key:22s} {spec.default!r:28s} {spec.allowed()}"
            + (f"  -- {spec.help}" if spec.help else "")
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-open", is_flag=True, help="do not open a web browser")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    metavar="MODULE:CLASS",
    help="also offer this scenario of yours in the picker (repeatable)",
)
@click.option(
    "--max-agents",
    type=click.IntRange(2),
    default=100_000,
    show_default=True,
    help="largest number of agents one session may build",
)
@click.option(
    "--max-memory",
    type=click.FloatRange(16),
    default=1024.0,
    show_default=True,
    metavar="MIB",
    help="largest estimated memory of one session's model, in MiB",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="browser sessions served at once",
)
def app(
    host: str,
    port: int,
    no_open: bool,
    scenarios: tuple[str, ...],
    max_agents: int,
    max_memory: float,
    max_sessions: int,
) -> None:
    """Open the browser app: watch a population homogenize, live (Ctrl-C stops it).

    Each session's model is estimated before it is built and refused above --max-agents or
    --max-memory (the page says why); at most --max-sessions sessions run at once. The
    defaults fit a laptop.
    """
    from simulator.app.limits import Limits
    from simulator.app.serve import serve
    from simulator.config import ParameterError
    from simulator.registry import get_model

    try:
        for ref in scenarios:
            get_model(ref)  # a bad reference fails here, not in the page
    except ParameterError as exc:
        raise click.UsageError(str(exc)) from None
    limits = Limits(max_agents=max_agents, max_memory_mb=max_memory, max_sessions=max_sessions)
    code = serve(host, port, no_open, limits, scenarios, echo=lambda s: click.echo(s, err=True))
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
