"""The ``simulator`` command: run a scenario, sweep parameters, plot a sweep, list scenarios.

Heavy libraries are imported inside commands so ``simulator --help`` stays fast.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    from simulator.params import parse_value

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--set")
        key, value = pair.split("=", 1)
        if key.strip() in ("rng", "seed"):
            raise click.BadParameter(f"{pair!r}: give the seed with --seed", param_hint="--set")
        out[key.strip()] = parse_value(value)
    return out


@click.group()
@click.version_option(package_name="neuropop")
def main() -> None:
    """Populations of neural-network agents on social graphs: homogenization and emergence."""


@main.command()
@click.argument("model", required=False)
@click.option(
    "--steps", type=click.IntRange(0), help="total steps  [default: 100; resuming: the run's]"
)
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
    help="output folder (written as a whole when the run ends)",
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
@click.option("--force", is_flag=True, help="replace an existing --out folder (when the run ends)")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(0),
    default=0,
    metavar="K",
    help="save a checkpoint every K steps (and at the end) so a killed run can --resume",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="continue the run in DIR from its last checkpoint (to --steps in all)",
)
@click.option(
    "--divergence-factor",
    type=click.FloatRange(0),
    callback=lambda ctx, param, value: _finite(param, value),
    default=1e6,
    show_default=True,
    help="stop as diverged when a loss exceeds this x max(1, median initial loss); 0: off",
)
@click.option("--quiet", is_flag=True, help="no progress output")
def run(
    model: str | None,
    steps: int | None,
    seed: int,
    sets: tuple[str, ...],
    out_dir: str,
    agents_every: int | None,
    fmt: str,
    force: bool,
    checkpoint_every: int,
    resume_dir: str | None,
    divergence_factor: float,
    quiet: bool,
) -> None:
    """Run scenario MODEL for --steps steps and write model.csv, agents.csv, config.json.

    The folder is written whole when the run ends (an existing one is refused unless --force).
    A run that stops early (divergence, Ctrl-C, an error) still writes its collected steps,
    with a status in config.json. Exit codes: 0 completed, 2 bad input (nothing written),
    3 diverged, 4 error in a step, 130 Ctrl-C, 143 SIGTERM. See docs/RUNS.md.
    """
    from simulator.config import ParameterError
    from simulator.runfolder import OutputFolder, run_into
    from simulator.runprogress import StepProgress

    ctx = click.get_current_context()
    try:
        if resume_dir is not None:
            flags = {"seed": "--seed", "sets": "--set", "agents_every": "--agents-every"}
            flags["out_dir"] = "--out"
            given = [flag for name, flag in flags.items() if not _default(ctx, name)]
            if given:
                names = ", ".join(given)
                raise ParameterError(
                    f"--resume continues a run with its own settings: drop {names}"
                )
            folder = OutputFolder(resume_dir, resume=True)
            m, scenario, steps, info = _resumed(folder, model, steps, quiet)
            kept = info.get("fmt", "csv")
            if not _default(ctx, "fmt") and fmt != kept:  # its tables stay in one format
                raise ParameterError(
                    f"--resume continues a run with its own settings: drop --format {fmt} "
                    f"(the run in {resume_dir} writes {kept})"
                )
            fmt = kept
            if _default(ctx, "checkpoint_every"):
                checkpoint_every = int(info.get("checkpoint_every", 0))
        else:
            if model is None:
                raise ParameterError("give a scenario (MODEL) or --resume DIR")
            params = _parse_sets(sets)
            if agents_every is not None:
                if params.get("agent_every", agents_every) != agents_every:
                    raise ParameterError(
                        f"--agents-every {agents_every} and --set "
                        f"agent_every={params['agent_every']!r} disagree: give one of them"
                    )
                params["agent_every"] = agents_every
            if fmt == "parquet":
                _require_pyarrow()
            folder = OutputFolder(out_dir, force=force)
            folder.open()  # before the (maybe long) build: an unusable --out is found first
            try:
                m, scenario = _build(model, seed, params, quiet), model
            except BaseException:
                folder.abandon()
                raise
            steps = 100 if steps is None else steps
        if resume_dir is not None:
            folder.open()
    except ParameterError as exc:
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("interrupted before the first step: nothing written", err=True)
        raise SystemExit(130) from None
    progress = StepProgress(steps, m.steps, quiet)
    start, first = time.perf_counter(), m.steps
    try:
        outcome = run_into(
            m,
            folder,
            steps,
            scenario,
            command=["simulator", *sys.argv[1:]],
            fmt=fmt,
            checkpoint_every=checkpoint_every,
            progress=progress,
            divergence_factor=divergence_factor,
            run_info={"checkpoint_every": checkpoint_every},
        )
    except OSError as exc:  # disk full, permissions changed under the run...
        click.echo(f"error: cannot write the run's files ({exc}); {folder.partial} kept", err=True)
        raise SystemExit(4) from None
    if outcome.message:
        click.echo(outcome.message, err=True)
    elif not quiet:
        took = time.perf_counter() - start
        click.echo(
            f"{scenario}: steps {first}..{m.steps} of {m.n_agents} agents in {took:.1f} s", err=True
        )
        last = m.model_dataframe().iloc[-1]
        shown = {k: last[k] for k in m.measure_names[:8]}
        click.echo("final: " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()), err=True)
    if not quiet:
        for path in outcome.paths.values():
            click.echo(f"wrote {path}")
    if outcome.code:
        raise SystemExit(outcome.code)


def _finite(param: click.Parameter, value: float) -> float:
    import math

    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", param=param)
    return value


def _default(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source in (None, click.core.ParameterSource.DEFAULT)


def _build(name: str, seed: int, params: dict[str, Any], quiet: bool) -> Any:
    """Build scenario ``name``; when the kernels must be compiled, a notice first and a helper
    process compiling the measures' and the step's kernels beside the build
    (:mod:`simulator.compile_ahead`; stopped when the command ends)."""
    from simulator import compile_ahead
    from simulator.registry import get_model
    from simulator.runprogress import kernels_cold

    cls = get_model(name)
    dtype = params.get("dtype", cls.param_specs()["dtype"].default)
    if isinstance(dtype, str) and kernels_cold(dtype):
        helper = compile_ahead.start(name, params)
        if helper is not None:
            click.get_current_context().call_on_close(helper.stop)
        if not quiet:
            click.echo(
                f"compiling the simulation kernels for {dtype} (first use after an install or "
                f"upgrade: a few minutes{' in two processes' if helper else ''}; cached for "
                "later runs)...",
                err=True,
            )
    return cls(rng=seed, **params)


def _resumed(folder: Any, model: str | None, steps: int | None, quiet: bool) -> tuple:
    """The model continued from ``folder``'s newest checkpoint, its scenario, target steps and
    the run's settings (format, checkpoint period) stored with the checkpoint."""
    from simulator.checkpoint import compatibility, load, read_metadata
    from simulator.config import ParameterError

    path = folder.checkpoint()
    if path is None:
        raise ParameterError(
            f"--resume {folder.out}: no checkpoint there (a run keeps one when stopped by "
            "Ctrl-C or with --checkpoint-every K)"
        )
    meta = read_metadata(path)
    info = meta.get("run") or {}
    scenario = info.get("scenario") or (meta.get("model") or {}).get("scenario")
    if model is not None and model != scenario:
        raise ParameterError(f"--resume {folder.out} holds a run of {scenario!r}, not {model!r}")
    notes = compatibility(meta)
    if notes and not quiet:
        click.echo(
            "note: written by other code/packages (" + "; ".join(notes[:3]) + "): the "
            "continuation may differ from an uninterrupted run",
            err=True,
        )
    m = load(path, model_class=_scenario_class(scenario))
    steps = int(info.get("steps", m.steps)) if steps is None else steps
    if steps < m.steps:
        raise ParameterError(
            f"--steps {steps}: the run in {folder.out} is already at step {m.steps}"
        )
    if not quiet:
        click.echo(f"resuming {scenario} at step {m.steps} of {steps} from {path}", err=True)
    return m, scenario, steps, info


def _scenario_class(scenario: str | None) -> type | None:
    """The class of a resumed run's scenario as the run named it (a built-in name, a module or
    a ``path.py:Class``: a file's module is not importable by name in a new process), or None
    when it cannot be resolved (the checkpoint's own record of its class is tried then)."""
    from simulator.config import ParameterError
    from simulator.registry import get_model

    if not scenario:
        return None
    try:
        return get_model(scenario)
    except ParameterError:
        return None


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
@click.option(
    "--checkpoint-every",
    type=click.IntRange(0),
    default=0,
    metavar="K",
    help="each run saves a checkpoint every K steps; --resume continues runs in flight from them",
)
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
    checkpoint_every: int,
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
            checkpoint_every=checkpoint_every,
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
    try:
        code = serve(host, port, no_open, limits, scenarios, echo=lambda s: click.echo(s, err=True))
    except ParameterError as exc:  # the port is taken: before anything is started
        raise click.UsageError(str(exc)) from None
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
