"""The sweep folder: an append-only journal of finished runs that survives being killed.

Files
-----
``manifest.json``
    The spec (normalized and as written), its hash, package versions, the code revision and
    one entry per invocation (``history``).
``runs.csv``
    One row per finished run: ``run_id, model, <parameters>, seed, status, seconds, error,
    <final value of each measure>``. ``status`` is ``ok`` or ``failed``.
``steps.csv``
    One row per run and recorded step: ``run_id, <parameters>, seed, step, <measures>``. A
    run that failed (an error, a divergence) keeps the steps it collected before it stopped.
``agents.csv``
    Only when runs keep per-agent rows (parameter ``agent_every``): ``run_id, <swept
    parameters>, seed, step, agent, ...``.
``errors.log``
    The traceback of every failed run.
``checkpoints/``
    With ``checkpoint_every``: ``<run_id>.npz``, the last checkpoint of each run in flight
    (removed when the run is recorded). A run continued from one has ``resumed_from_step`` in
    runs.csv (a column that appears when the first such run is recorded).

A run is committed by its row in runs.csv, written after its steps rows, each file flushed
(and fsync'ed on request) as the run finishes. On reopening, a torn last line (a write cut
short by a kill) is cut off, steps/agents rows of runs without an ``ok`` row are dropped, and
failed rows of the current spec are dropped so those runs are retried: no duplicates, nothing
partial. Every record is one physical line (text cells never hold a newline).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.atomic import write_atomically
from simulator.collect import code_revision, jsonable, param_columns, versions
from simulator.config import ParameterError
from simulator.folder_lock import lock_folder, unlock_folder
from simulator.sweep.spec import Run, SweepSpec

__all__ = ["SweepFolderError", "SweepStore", "read_manifest", "read_runs"]

TABLES = ("runs", "steps", "agents")


class SweepFolderError(ParameterError):
    """The output folder holds another sweep (or another driver is writing to it)."""


MANIFEST_KEYS = ("spec", "spec_hash", "code_revision")


def read_manifest(out: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest.json of sweep folder ``out`` (None if there is none).

    Raises SweepFolderError naming the file and line when it is not valid JSON or lacks what
    a manifest holds (a damaged journal: move it away to start the sweep over).
    """
    path = Path(out) / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SweepFolderError(
            f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}); the sweep journal is "
            "damaged: repair it or move the folder away to start over"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepFolderError(f"{path}: cannot be read ({exc})") from None
    missing = [k for k in MANIFEST_KEYS if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise SweepFolderError(
            f"{path}, line 1: not a sweep manifest (no {', '.join(missing)}); the sweep journal "
            "is damaged: repair it or move the folder away to start over"
        )
    if not isinstance(manifest.get("history", []), list):
        raise SweepFolderError(f"{path}: 'history' must be a list; the journal is damaged")
    swept = manifest.get("swept", [])
    if not isinstance(swept, list) or not all(isinstance(k, str) for k in swept):
        raise SweepFolderError(f"{path}: 'swept' must be a list of names; the journal is damaged")
    if not isinstance(manifest["spec"], dict):
        raise SweepFolderError(f"{path}: 'spec' must be a table; the journal is damaged")
    return manifest


def _open_append(path: Path) -> Any:
    """``path`` opened to append, refusing to follow a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.fdopen(os.open(path, flags, 0o644), "a", newline="")
    except OSError as exc:
        raise SweepFolderError(
            f"{path}: cannot append ({exc}; a symlink is never followed)"
        ) from None


def _clean(value: Any) -> Any:
    return value.replace("\r", " ").replace("\n", " | ") if isinstance(value, str) else value


class _Table:
    """One append-only CSV file whose header may widen (new columns go at the end)."""

    def __init__(self, path: Path, fsync: bool):
        self.path, self.fsync, self.handle = path, fsync, None
        self.columns: list[str] = []
        if path.exists() and path.stat().st_size:
            with path.open(newline="") as fh:
                self.columns = next(csv.reader(fh), [])

    def repair(self) -> int:
        """Cut a torn last line (no final newline); return the number of bytes dropped."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with self.path.open("r+b") as fh:
            fh.truncate(keep)
        if keep == 0:
            self.columns = []
        return len(data) - keep

    def keep_rows(self, keep: Any) -> int:
        """Drop data lines for which ``keep(line)`` is false; return how many were dropped."""
        if not self.columns:
            return 0
        with self.path.open(newline="") as fh:
            next(fh)
            mask = [bool(keep(line)) for line in fh]  # keep is called once per line
        dropped = mask.count(False)
        if dropped:
            self.close()
            with self.path.open(newline="") as src:
                header = next(src)
                kept = [line for line, k in zip(src, mask) if k]
            write_atomically(self.path, lambda dst: dst.writelines([header, *kept]))
        return dropped

    def append(self, frame: pd.DataFrame) -> None:
        """Append ``frame``'s rows (columns matched by name; unknown ones widen the header)."""
        new = [c for c in frame.columns if c not in self.columns]
        if new and self.columns:
            self.close()
            pad = "," * len(new)
            with self.path.open(newline="") as src:
                next(src)
                rows = [line[:-1] + pad + "\n" for line in src]
            header = _csv_line([*self.columns, *new])
            write_atomically(self.path, lambda dst: dst.writelines([header, *rows]))
        self.columns += new
        if self.handle is None:
            self.handle = _open_append(self.path)
            if self.handle.tell() == 0:
                self.handle.write(_csv_line(self.columns))
        frame = frame.reindex(columns=self.columns)
        for col in frame.columns:
            if frame[col].dtype.kind not in "biufcM":
                frame[col] = frame[col].map(_clean)
        frame.to_csv(self.handle, header=False, index=False, lineterminator="\n")

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()
            if self.fsync:
                os.fsync(self.handle.fileno())

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


class SweepStore:
    """The output folder of one sweep. Use :meth:`open`, :meth:`record`, :meth:`close`.

    Parameters
    ----------
    out : path
        The folder (created if needed).
    fsync : bool
        Also ``os.fsync`` each file after each run (survives a power cut, not only a kill).
    """

    def __init__(self, out: str | os.PathLike, fsync: bool = False):
        self.out = Path(out)
        self.fsync = fsync
        self.tables: dict[str, _Table] = {}
        self._lock: int | None = None
        self.repaired: dict[str, int] = {}

    # ------------------------------------------------------------------ opening
    def open(self, spec: SweepSpec, force: bool = False, command: list[str] | None = None) -> set:
        """Check and prepare the folder; return the ids of runs already finished (status ok).

        Raises SweepFolderError if the folder holds a sweep with another spec hash or code
        revision (unless ``force``), or if another driver is writing to it.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        for name in ("manifest.json", "errors.log", *(f"{t}.csv" for t in TABLES)):
            if (self.out / name).is_symlink():
                self.close()
                raise SweepFolderError(
                    f"{self.out / name} is a symlink: a sweep never writes through one; "
                    "remove it (or choose another --out)"
                )
        manifest = self._check_manifest(spec, force)
        wanted = {run.run_id for run in spec.runs()}
        try:
            self.tables = {name: _Table(self.out / f"{name}.csv", self.fsync) for name in TABLES}
            for name, table in self.tables.items():
                dropped = table.repair()
                if dropped:
                    self.repaired[name] = dropped
            done = self._compact(wanted)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SweepFolderError(
                f"{self.out}: a journal file (runs.csv, steps.csv, agents.csv) cannot be read "
                f"({exc}); repair it or move the folder away to start over"
            ) from None
        manifest["history"].append(
            {
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "spec_hash": spec.hash,
                "code_revision": manifest["code_revision"],
                "already_done": len(done & wanted),
                "command": command if command is not None else sys.argv,
            }
        )
        path = self.out / "manifest.json"
        write_atomically(path, lambda fh: fh.write(json.dumps(manifest, indent=2) + "\n"))
        return done

    def _take_lock(self) -> None:
        busy = f"another sweep is writing to {self.out}"
        self._lock = lock_folder(self.out, SweepFolderError, busy)

    def _check_manifest(self, spec: SweepSpec, force: bool) -> dict[str, Any]:
        rev = code_revision()
        old = read_manifest(self.out)
        if old is not None and not force:
            if old.get("spec_hash") != spec.hash:
                raise SweepFolderError(
                    f"{self.out} holds another sweep (spec hash {old.get('spec_hash', '?')[:12]}, "
                    f"this spec {spec.hash[:12]}): choose another --out, or --force to add "
                    "this spec's runs to it"
                )
            if old.get("code_revision") != rev:
                raise SweepFolderError(
                    f"{self.out} was written by code revision {old.get('code_revision')}, this "
                    f"is {rev}: choose another --out, or --force to resume with this code"
                )
        return {
            "name": spec.name,
            "description": spec.description,
            "spec": spec.to_dict(),
            "spec_text": spec.text,
            "spec_hash": spec.hash,
            "swept": spec.swept,
            "runs": len(spec.runs()),
            "versions": versions(),
            "code_revision": rev,
            "history": old.get("history", []) if old else [],
        }

    def _compact(self, wanted: set[str]) -> set[str]:
        """Drop failed rows of wanted runs and orphan steps/agents rows; return ids done."""
        runs = self.tables["runs"]
        if not runs.columns:
            for name in ("steps", "agents"):
                self.tables[name].keep_rows(lambda line: False)
            return set()
        if runs.columns[:1] != ["run_id"] or "status" not in runs.columns:
            raise SweepFolderError(
                f"{runs.path}, line 1: the header must start with run_id and hold status "
                f"(got {','.join(runs.columns)[:80]!r}); the sweep journal is damaged"
            )
        status = runs.columns.index("status")
        done: set[str] = set()

        def keep_run(line: str) -> bool:
            fields = next(csv.reader([line]))
            rid = fields[0]
            ok = len(fields) > status and fields[status] == "ok"
            if rid in done or not (ok or rid not in wanted):
                return False
            if ok:
                done.add(rid)
            return True

        runs.keep_rows(keep_run)
        for name in ("steps", "agents"):
            self.tables[name].keep_rows(lambda line: line.split(",", 1)[0] in done)
        return done

    # ------------------------------------------------------------------ writing
    def record(self, run: Run, result: dict[str, Any], swept: list[str]) -> None:
        """Append one finished run: steps and agents rows first, then its runs row, flushed.

        Every swept parameter has its column in every row, before ``seed``: a run that does
        not set one (another ``[[combinations]]`` entry does) gets the value its model used
        (``result["used"]``), or a missing value if it failed before its model was built."""
        used = param_columns(result.get("used") or {})
        params = param_columns(run.params)
        params.update({k: used.get(k) for k in swept if k not in run.params})
        measures = result.get("steps")
        if measures is not None and len(measures):
            frame = measures.copy()
            head = {"run_id": run.run_id, **params, "seed": run.seed}
            for i, (name, value) in enumerate(head.items()):
                frame.insert(i, name, value)
            self.tables["steps"].append(frame)
            self.tables["steps"].flush()
        agents = result.get("agents")
        if agents is not None and len(agents):
            frame = agents.copy()
            head = {"run_id": run.run_id, **{k: params[k] for k in swept}, "seed": run.seed}
            for i, (name, value) in enumerate(head.items()):
                frame.insert(i, name, value)
            self.tables["agents"].append(frame)
            self.tables["agents"].flush()
        if result["status"] != "ok":
            with _open_append(self.out / "errors.log") as fh:
                fh.write(
                    f"=== run {run.run_id} seed={run.seed} {json.dumps(jsonable(run.params))}\n"
                )
                fh.write(result.get("traceback") or result.get("error") or "")
                fh.write("\n")
        row = {
            "run_id": run.run_id,
            "model": run.model,
            **params,
            "seed": run.seed,
            "status": result["status"],
            "seconds": round(float(result.get("seconds", 0.0)), 3),
            "error": result.get("error") or "",
        }
        if result.get("resumed_from"):
            row["resumed_from_step"] = int(result["resumed_from"])
        for name, value in (result.get("final") or {}).items():
            row[name if name not in row else f"final_{name}"] = value
        self.tables["runs"].append(pd.DataFrame([row]))
        self.tables["runs"].flush()

    def close(self) -> None:
        """Close the files and release the folder."""
        for table in self.tables.values():
            table.close()
        unlock_folder(self._lock)
        self._lock = None

    # ------------------------------------------------------------------ reading
    def runs_frame(self, spec: SweepSpec | None = None) -> pd.DataFrame:
        """runs.csv as a DataFrame (only the runs of ``spec``, in its order, when given)."""
        return read_runs(self.out, spec)

    def export_parquet(self) -> list[Path]:
        """Write runs/steps/agents .parquet next to the CSV journal (zstd); return the paths."""
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        written = []
        for name in TABLES:
            src = self.out / f"{name}.csv"
            if not src.exists() or not src.stat().st_size:
                continue
            table = pacsv.read_csv(src)
            dst = self.out / f"{name}.parquet"
            write_atomically(
                dst, lambda fh, t=table: pq.write_table(t, fh, compression="zstd"), binary=True
            )
            written.append(dst)
        return written


def read_runs(out: str | os.PathLike, spec: SweepSpec | None = None) -> pd.DataFrame:
    """The runs table of a sweep folder (restricted to and ordered as ``spec``'s runs if given)."""
    path = Path(out) / "runs.csv"
    if not path.exists() or not path.stat().st_size:
        return pd.DataFrame(columns=["run_id", "seed", "status"])
    try:
        df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"error": "str"})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise SweepFolderError(f"{path}: {text}; the sweep journal is damaged") from None
    manifest = read_manifest(out)
    swept = manifest.get("swept", []) if manifest else []
    missing = [c for c in ("run_id", "status", "error", *swept) if c not in df.columns]
    if missing:
        raise SweepFolderError(
            f"{path}, line 1: no column {', '.join(missing)}; the sweep journal is damaged"
        )
    df["error"] = df["error"].fillna("")
    if spec is not None:
        order = {run.run_id: i for i, run in enumerate(spec.runs())}
        df = df[df["run_id"].isin(order)]
        df = df.sort_values("run_id", key=lambda s: s.map(order), kind="stable")
        df = df.reset_index(drop=True)
    return df
