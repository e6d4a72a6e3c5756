"""Parsing and checking the fields of a sweep spec, with the TOML line of each problem."""

from __future__ import annotations

import math
import re
from typing import Any

from simulator.config import ParameterError
from simulator.sweep.check import check_count

RESERVED = {"run_id", "model", "seed", "status", "seconds", "error", "step", "attempts"}
RESERVED |= {"resumed_from_step"}


class SpecError(ParameterError):
    """A sweep spec that cannot run. The message names the TOML line when there is one."""


class Lines:
    """Find the line of a key in TOML text (tomllib keeps no positions)."""

    _HEAD = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]")
    _KEY = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_.\-]+))\s*=""")

    def __init__(self, text: str, source: str):
        self.source, self.where = source, {}
        table, count = None, {}
        for lineno, line in enumerate(text.splitlines(), 1):
            head = self._HEAD.match(line)
            if head:
                table = head.group(2).strip().strip("\"'")
                index = count[table] = count.get(table, -1) + 1
                key = (table, index) if head.group(1) == "[[" else (table, None)
                self.where.setdefault((*key, None), lineno)
                continue
            m = self._KEY.match(line)
            if m:
                name = m.group(1) or m.group(2) or m.group(3)
                index = count.get(table) if table else None
                is_array = table is not None and (table, index, None) in self.where
                self.where.setdefault((table, index if is_array else None, name), lineno)

    def line(self, table: str | None, key: str | None, index: int | None = None) -> int | None:
        w = self.where
        for probe in ((table, index, key), (None, None, f"{table}.{key}"), (table, index, None)):
            if probe in w:
                return w[probe]
        return w.get((None, None, table)) if table else None

    def error(self, msg: str, table: str | None = None, key: str | None = None, index=None):
        lineno = self.line(table, key, index)
        at = f"{self.source}, line {lineno}" if lineno else self.source
        return SpecError(f"{at}: {msg}")


def table(data: dict, name: str, at: Lines) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise at.error(f"{name} must be a table: [{name}] then one name = value a line", None, name)
    return value


def values(name: str, raw: Any, spec: Any, at: Lines) -> list[Any]:
    """The values of one [vary] entry: a list, or a range {start, stop, num | step}."""
    if isinstance(raw, list):
        if not raw:
            raise at.error(f"{name} = []: empty list of values", "vary", name)
        return raw
    if not isinstance(raw, dict):
        raise at.error(
            f"{name} = {raw!r}: a swept parameter takes a list [a, b] or a range "
            "{start, stop, num} / {start, stop, step}; a single value goes under [fixed]",
            "vary",
            name,
        )
    keys = set(raw)
    if not ({"start", "stop"} <= keys and len(keys & {"num", "step"}) == 1) or keys - {
        "start",
        "stop",
        "num",
        "step",
    }:
        raise at.error(
            f"{name} = {raw!r}: a range has start, stop and one of num or step "
            "(several dict values: write a list of tables, [{...}, {...}])",
            "vary",
            name,
        )
    nums = [raw[k] for k in keys]
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in nums
    ):
        raise at.error(f"{name} = {raw!r}: range bounds must be finite numbers", "vary", name)
    start, stop = raw["start"], raw["stop"]
    if "num" in raw:
        num = raw["num"]
        if not isinstance(num, int) or num < 1:
            raise at.error(f"{name}: empty range (num={num!r}; need an integer >= 1)", "vary", name)
        check_count(name, num, at, "vary")
        values = [start + (stop - start) * i / max(num - 1, 1) for i in range(num)]
    else:
        step = raw["step"]
        ratio = (stop - start) / step if step else -1.0
        count = math.floor(ratio + 1e-9) + 1 if math.isfinite(ratio) and ratio >= 0 else 0
        check_count(name, count, at, "vary")
        if count < 1:
            raise at.error(f"{name}: empty range (from {start} to {stop} by {step})", "vary", name)
        values = [start + i * step for i in range(count)]
    whole = all(isinstance(v, int) for v in nums) or getattr(spec, "kind", "") == "int"
    return [round(v) if whole and float(v).is_integer() else float(f"{v:.12g}") for v in values]


def check_overlaps(fixed: dict, vary: dict, combos: tuple[dict, ...], at: Lines) -> None:
    combo_keys = {k for c in combos for k in c}
    for name, table in [(k, "vary") for k in vary] + [(k, "combinations") for k in combo_keys]:
        if name in RESERVED:
            raise at.error(f"{name!r} is a reserved column name", table, name)
        if name in fixed:
            raise at.error(f"{name} is both fixed and swept: keep one", "fixed", name)
    both = set(vary) & combo_keys
    if both:
        name = sorted(both)[0]
        raise at.error(f"{name} is both in [vary] and [[combinations]]: keep one", "vary", name)


def seeds(raw: Any, at: Lines) -> tuple[int, ...]:
    if isinstance(raw, dict):
        if set(raw) - {"count", "base"} or "count" not in raw:
            raise at.error(f"seeds = {raw!r}: write {{count = N, base = 0}}", None, "seeds")
        count, base = raw["count"], raw.get("base", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (count, base)) or (
            count < 1 or base < 0
        ):
            raise at.error(f"seeds = {raw!r}: count >= 1 and base >= 0 integers", None, "seeds")
        check_count("seeds", count, at)
        return tuple(range(base, base + count))
    ok = (
        isinstance(raw, list)
        and raw
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw)
    )
    if not ok or len(set(raw)) < len(raw):
        raise at.error(
            f"seeds = {raw!r}: a non-empty list of distinct integers >= 0, or {{count, base}}",
            None,
            "seeds",
        )
    return tuple(raw)


def measures(raw: Any, at: Lines) -> tuple[str, ...] | None:
    from simulator.measures import MEASURE_DOCS

    if raw == "all":
        return None
    if isinstance(raw, str):
        raise at.error(
            f'measures = {raw!r}: a list of measure names or "all" (the model\'s measure set, '
            f'"standard" or "fast", is the parameter measures under [fixed])',
            None,
            "measures",
        )
    if not isinstance(raw, list) or not raw:
        raise at.error('measures must be a non-empty list of names, or "all"', None, "measures")
    for name in raw:
        if name not in MEASURE_DOCS:
            raise at.error(
                f"unknown measure {name!r}; measures are: {', '.join(MEASURE_DOCS)}",
                None,
                "measures",
            )
    return tuple(dict.fromkeys(raw))


def record(raw: Any, at: Lines) -> str | int:
    if raw in ("every", "end"):
        return raw
    if isinstance(raw, dict) and set(raw) == {"every"}:
        k = raw["every"]
        if isinstance(k, int) and not isinstance(k, bool) and k >= 1:
            return k
    raise at.error(
        f'record = {raw!r}: "every" (each collected step), "end", or {{every = K}}',
        None,
        "record",
    )
