"""The ``simulator`` command: run a scenario, list scenarios.

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
@click.argument("name", required=False)
def models(name: str | None) -> None:
    """List scenarios, or the parameters of scenario NAME with defaults and allowed values."""
    from simulator.config import ParameterError
    from simulator.registry import get_model, load_registry

    registry = load_registry()
    if name is None:
        for key, cls in sorted(registry.items()):
            first = (cls.__doc__ or "").strip().splitlines()[0]
            click.echo(f"{key:20s} {first}")
        click.echo("\n`simulator models NAME` lists a scenario's parameters.")
        return
    try:
        cls = get_model(name)
    except ParameterError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo((cls.__doc__ or "").strip() + "\n")
    click.echo(f"{'parameter':22s} {'default':28s} allowed")
    for key, spec in cls.param_specs().items():
        click.echo(
            f"{key:22s} {spec.default!r:28s} {spec.allowed()}"
            + (f"  -- {spec.help}" if spec.help else "")
        )


if __name__ == "__main__":
    main()
