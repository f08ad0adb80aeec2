"""`csinfra lake export`: the application's tables the marts read, as Parquet files under a lake directory, for
building the marts off the primary (on Apache Spark, say).

- **What leaves the database**: exactly the columns the dbt sources declare (models/staging/app/_app__sources.yml,
  the columns the models read). Access tokens, e-mail addresses and IP addresses are not among them, so they never
  leave.
- **One consistent snapshot per run**: one REPEATABLE READ, READ ONLY transaction; plain SELECTs, so no lock
  beyond ACCESS SHARE: it can run against a replica.
- **Mutable tables** (creators, offers, collaborations, users) are snapshots, rewritten whole each run.
- **Append-only event tables** (audit_logs, analytics_events) are partitioned by day (`created_date=YYYY-MM-DD`)
  and incremental: a run rewrites the days from the newest `createdAt` the last run saw, minus the lookback the
  marts use (events that arrive late are still picked up), up to today. Each day is rewritten whole, so running
  again is harmless.
- **Bounded memory**: rows stream through a server-side cursor into Parquet in batches of `batch_rows`.
- **Resumable, idempotent**: new files are written aside (hidden `.tmp-<run>` directories, which Spark ignores) and
  moved in only when every table is done; `_manifest.json` is written last and is the commit point. A killed run
  leaves the previous export in place; the next run removes what the killed one left and, for a table whose
  files do not match the manifest, exports it whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from psycopg import sql

from .. import settings
from ..errors import CsinfraError
from .database import project_root

SOURCES_FILE = Path("models") / "staging" / "app" / "_app__sources.yml"
EVENT_TABLES = {"audit_logs": "createdAt", "analytics_events": "createdAt"}
PARTITION = "created_date"
MANIFEST = "_manifest.json"
MANIFEST_VERSION = 1


class LakeError(CsinfraError):
    pass


@dataclass
class TableExport:
    table: str
    mode: str  # snapshot | incremental | full
    rows: int = 0
    bytes: int = 0  # the table's files in the lake now
    bytes_written: int = 0  # by this run
    files: list[str] = field(default_factory=list)  # relative to the lake, every file the table has now
    days: list[str] = field(default_factory=list)  # event tables: the days this run rewrote
    watermark: str | None = None  # event tables: the newest createdAt exported, ISO
    seconds: float = 0.0


@dataclass
class ExportResult:
    run_id: str
    lake: Path
    started_at: str
    finished_at: str
    seconds: float
    tables: dict[str, TableExport]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    @property
    def bytes(self) -> int:
        """Bytes this run wrote."""
        return sum(t.bytes_written for t in self.tables.values())

    def as_json(self) -> dict:
        return {
            "runId": self.run_id,
            "lake": str(self.lake),
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "seconds": round(self.seconds, 3),
            "rows": self.rows,
            "bytes": self.bytes,
            "rowsPerSecond": round(self.rows / self.seconds) if self.seconds else None,
            "megabytesPerSecond": round(self.bytes / 1e6 / self.seconds, 2) if self.seconds else None,
            "tables": {
                name: {k: v for k, v in asdict(t).items() if k != "table"} for name, t in self.tables.items()
            },
        }


def source_columns(root: Path | None = None) -> dict[str, list[str]]:
    """table -> the columns the dbt sources declare for it (the only ones the models read), in their order."""
    path = (root or project_root()) / SOURCES_FILE
    doc = yaml.safe_load(path.read_text())
    tables: dict[str, list[str]] = {}
    for source in doc.get("sources", []):
        for table in source.get("tables", []):
            tables[table["name"]] = [c["name"] for c in table.get("columns", [])]
    if not tables:
        raise LakeError(f"{path} declares no source table")
    return tables


def lake_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--lake, else CSINFRA_LAKE_DIR, else <project>/lake."""
    chosen = explicit or os.environ.get("CSINFRA_LAKE_DIR")
    return Path(chosen).resolve() if chosen else project_root() / "lake"


# PostgreSQL type (format_type) -> (Arrow type, the SELECT expression's cast)
def _arrow_type(pg_type: str) -> tuple[pa.DataType, str | None]:
    base = re.sub(
        r"\(\d+(,\s*\d+)?\)", "", pg_type
    ).strip()  # timestamp(3) without time zone -> timestamp without …
    if pg_type.endswith("[]"):
        return pa.list_(pa.string()), "text[]"
    return {
        "text": (pa.string(), None),
        "character varying": (pa.string(), None),
        "integer": (pa.int32(), None),
        "smallint": (pa.int16(), None),
        "bigint": (pa.int64(), None),
        "boolean": (pa.bool_(), None),
        "double precision": (pa.float64(), None),
        "real": (pa.float32(), None),
        "numeric": (pa.float64(), "double precision"),
        "timestamp without time zone": (pa.timestamp("ms"), None),
        "timestamp with time zone": (pa.timestamp("us", tz="UTC"), None),
        "date": (pa.date32(), None),
        "jsonb": (pa.string(), "text"),
        "json": (pa.string(), "text"),
    }.get(base, (pa.string(), "text"))  # enums and anything else: their text


def _column_types(
    conn: psycopg.Connection, app_schema: str, table: str, columns: list[str]
) -> dict[str, str]:
    rows = conn.execute(
        """select a.attname, format_type(a.atttypid, a.atttypmod)
           from pg_attribute a
           join pg_class c on c.oid = a.attrelid
           join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped""",
        (app_schema, table),
    ).fetchall()
    found = dict(rows)
    if not found:
        raise LakeError(f"table {app_schema}.{table} does not exist")
    missing = [c for c in columns if c not in found]
    if missing:
        raise LakeError(f"{app_schema}.{table} lacks the column(s) the models read: {', '.join(missing)}")
    return {c: found[c] for c in columns}


def _select(app_schema: str, table: str, types: dict[str, str]) -> tuple[sql.Composed, pa.Schema]:
    fields, exprs = [], []
    for column, pg_type in types.items():
        arrow_type, cast = _arrow_type(pg_type)
        fields.append(pa.field(column, arrow_type))
        expr = sql.Identifier(column)
        exprs.append(sql.SQL("{}::{} as {}").format(expr, sql.SQL(cast), expr) if cast else expr)
    query = sql.SQL("select {} from {}").format(sql.SQL(", ").join(exprs), sql.Identifier(app_schema, table))
    return query, pa.schema(fields)


class _Writer:
    """Parquet files under one directory, rolled over every `file_rows` rows (bounded file sizes)."""

    def __init__(self, directory: Path, schema: pa.Schema, run_id: str, file_rows: int):
        self.directory, self.schema, self.run_id, self.file_rows = directory, schema, run_id, file_rows
        self.files: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0
        self.rows = 0

    def write(self, columns: list[list]) -> None:
        batch = pa.RecordBatch.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, self.schema, strict=True)],
            schema=self.schema,
        )
        if self._writer is None or self._rows_in_file >= self.file_rows:
            self.close()
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"part-{self.run_id}-{len(self.files):05d}.parquet"
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
            self.files.append(path)
            self._rows_in_file = 0
        self._writer.write_batch(batch)
        self._rows_in_file += batch.num_rows
        self.rows += batch.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _batches(cursor: psycopg.Cursor, batch_rows: int, width: int) -> Iterator[list[list]]:
    while True:
        rows = cursor.fetchmany(batch_rows)
        if not rows:
            return
        yield [list(col) for col in zip(*rows, strict=True)]


@contextlib.contextmanager
def _exclusive(lake: Path) -> Iterator[None]:
    lake.mkdir(parents=True, exist_ok=True)
    with open(lake / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LakeError(f"another export is writing {lake}") from None
        yield


def read_manifest(lake: Path) -> dict:
    path = lake / MANIFEST
    if not path.exists():
        return {"version": MANIFEST_VERSION, "tables": {}, "runs": []}
    doc = json.loads(path.read_text())
    if doc.get("version") != MANIFEST_VERSION:
        raise LakeError(
            f"{path}: manifest version {doc.get('version')} (expected {MANIFEST_VERSION}); export with --full"
        )
    return doc


def _intact(lake: Path, entry: dict) -> bool:
    return all((lake / f).is_file() for f in entry.get("files", []))


def _clean_leftovers(lake: Path, manifest: dict, tables: list[str]) -> None:
    """Remove what a killed run left: hidden temp directories, and files the manifest does not list."""
    for table in tables:
        root = lake / table
        if not root.exists():
            continue
        for tmp in root.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        listed = set(manifest["tables"].get(table, {}).get("files", []))
        for path in root.rglob("*.parquet"):
            if str(path.relative_to(lake)) not in listed:
                path.unlink()
        for day in sorted(root.glob(f"{PARTITION}=*"), reverse=True):
            if day.is_dir() and not any(day.iterdir()):
                day.rmdir()


def export(
    conn: psycopg.Connection,
    app_schema: str,
    lake: Path,
    *,
    full: bool = False,
    lookback: timedelta | None = None,
    batch_rows: int = 50_000,
    file_rows: int = 1_000_000,
    on_progress: Callable[[str, int, float], None] | None = None,
    tables: list[str] | None = None,
    pause_after_table: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export the source tables to Parquet under `lake` (see the module's docstring). `conn` must not be in a
    transaction; the export opens its own (REPEATABLE READ, READ ONLY) and ends it. `on_progress(table, rows,
    seconds)` is called after every batch."""
    if lookback is None:
        lookback = timedelta(days=3)
    columns = source_columns()
    names = tables or list(columns)
    unknown = [t for t in names if t not in columns]
    if unknown:
        raise LakeError(f"not a source table: {', '.join(unknown)} (known: {', '.join(columns)})")
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    started, wall = time.monotonic(), datetime.now(UTC)
    with _exclusive(lake):
        manifest = read_manifest(lake)
        _clean_leftovers(lake, manifest, names)
        results: dict[str, TableExport] = {}
        staged: dict[str, tuple[_Writer | dict[str, _Writer], TableExport]] = {}
        run_settings = _RunSettings(lake, run_id, full, lookback, batch_rows, file_rows, on_progress)
        conn.autocommit = False
        try:
            conn.execute("set transaction isolation level repeatable read, read only")
            conn.execute("select set_config('statement_timeout', '0', true)")
            snapshot_at = conn.execute("select now() at time zone 'UTC'").fetchone()[0]
            for table in names:
                t0 = time.monotonic()
                types = _column_types(conn, app_schema, table, columns[table])
                query, schema = _select(app_schema, table, types)
                previous = manifest["tables"].get(table, {})
                tmp = lake / table / f".tmp-{run_id}"
                if table in EVENT_TABLES:
                    staged[table] = _export_events(
                        conn, table, query, schema, tmp, previous, t0, run_settings
                    )
                else:
                    writer = _Writer(tmp, schema, run_id, file_rows)
                    with conn.cursor(name=f"csinfra_lake_{table}") as cur:
                        cur.itersize = batch_rows
                        cur.execute(query)
                        for cols in _batches(cur, batch_rows, len(schema)):
                            writer.write(cols)
                            if on_progress:
                                on_progress(table, writer.rows, time.monotonic() - t0)
                    writer.close()
                    if writer.rows == 0:  # an empty table still gets a file, so its schema is known
                        tmp.mkdir(parents=True, exist_ok=True)
                        path = tmp / f"part-{run_id}-00000.parquet"
                        pq.write_table(schema.empty_table(), path, compression="zstd")
                        writer.files.append(path)
                    staged[table] = (writer, TableExport(table, "snapshot", rows=writer.rows))
                staged[table][1].seconds = time.monotonic() - t0
                if pause_after_table:
                    pause_after_table(table)
            conn.rollback()  # read only: nothing to commit
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            for table in names:
                for tmp in (lake / table).glob(f".tmp-{run_id}"):
                    shutil.rmtree(tmp, ignore_errors=True)
            raise
        # commit: move every staged file in, drop what it replaces, then write the manifest
        for table, (writers, result) in staged.items():
            results[table] = _commit_table(lake, table, run_id, writers, result, manifest)
        finished = datetime.now(UTC)
        manifest["tables"].update(
            {
                name: {
                    "files": r.files,
                    "rows": _rows_of(lake, r.files),
                    "mode": r.mode,
                    "exportedAt": finished.isoformat(),
                    "snapshotAt": snapshot_at.isoformat() + "Z",
                    **({"watermark": r.watermark} if r.watermark else {}),
                }
                for name, r in results.items()
            }
        )
        run = ExportResult(
            run_id, lake, wall.isoformat(), finished.isoformat(), time.monotonic() - started, results
        )
        manifest["runs"] = (manifest.get("runs", []) + [run.as_json()])[-20:]
        tmp_manifest = lake / f".{MANIFEST}.{run_id}"
        tmp_manifest.write_text(json.dumps(manifest, indent=1, default=str))
        os.replace(tmp_manifest, lake / MANIFEST)
        return run


def _rows_of(lake: Path, files: list[str]) -> int:
    return sum(pq.ParquetFile(lake / f).metadata.num_rows for f in files)


@dataclass(frozen=True)
class _RunSettings:
    lake: Path
    run_id: str
    full: bool
    lookback: timedelta
    batch_rows: int
    file_rows: int
    on_progress: Callable[[str, int, float], None] | None


def _export_events(conn, table, query, schema, tmp, previous, t0, run: _RunSettings):
    lake, run_id, full, lookback = run.lake, run.run_id, run.full, run.lookback
    batch_rows, file_rows, on_progress = run.batch_rows, run.file_rows, run.on_progress
    created = EVENT_TABLES[table]
    since: date | None = None
    mode = "full"
    if not full and previous.get("watermark") and _intact(lake, previous):
        watermark = datetime.fromisoformat(previous["watermark"])
        since = (watermark - lookback).date()
        mode = "incremental"
    where = sql.SQL("")
    params: tuple = ()
    if since is not None:
        where = sql.SQL(" where {} >= %s").format(sql.Identifier(created))
        params = (datetime(since.year, since.month, since.day),)
    ordered = query + where + sql.SQL(" order by {}").format(sql.Identifier(created))
    index = schema.get_field_index(created)
    writers: dict[str, _Writer] = {}
    newest: datetime | None = None
    rows = 0
    with conn.cursor(name=f"csinfra_lake_{table}") as cur:
        cur.itersize = batch_rows
        cur.execute(ordered, params)
        for cols in _batches(cur, batch_rows, len(schema)):
            days = [ts.date().isoformat() for ts in cols[index]]
            start = 0
            # rows come in createdAt order: split the batch where the day changes
            for i in range(1, len(days) + 1):
                if i == len(days) or days[i] != days[start]:
                    day = days[start]
                    if day not in writers:
                        for w in writers.values():  # earlier days are complete
                            w.close()
                        writers[day] = _Writer(tmp / f"{PARTITION}={day}", schema, run_id, file_rows)
                    writers[day].write([col[start:i] for col in cols])
                    start = i
            rows += len(days)
            newest = cols[index][-1]
            if on_progress:
                on_progress(table, rows, time.monotonic() - t0)
    for w in writers.values():
        w.close()
    result = TableExport(table, mode, rows=rows, days=sorted(writers))
    result.watermark = newest or (
        datetime.fromisoformat(previous["watermark"]) if previous.get("watermark") else None
    )
    result.watermark = result.watermark.isoformat() if result.watermark else None
    # the days this run is responsible for: from `since` on (every day when full); days it found no row in lose
    # whatever an earlier run wrote there
    result.replaced_from = since  # type: ignore[attr-defined]
    return writers, result


def _commit_table(
    lake: Path, table: str, run_id: str, writers, result: TableExport, manifest: dict
) -> TableExport:
    root = lake / table
    tmp = root / f".tmp-{run_id}"
    previous_files = manifest["tables"].get(table, {}).get("files", [])
    if table in EVENT_TABLES:
        since = getattr(result, "replaced_from", None)
        kept = []
        for f in previous_files:
            day = Path(f).parent.name.removeprefix(f"{PARTITION}=")
            if since is not None and day < since.isoformat():
                kept.append(f)  # a day before this run's window: untouched
            else:
                (lake / f).unlink(missing_ok=True)
        moved = []
        for day, writer in writers.items():
            dest = root / f"{PARTITION}={day}"
            dest.mkdir(parents=True, exist_ok=True)
            for path in writer.files:
                target = dest / path.name
                os.replace(path, target)
                moved.append(str(target.relative_to(lake)))
        result.files = sorted(kept + moved)
        for day_dir in root.glob(f"{PARTITION}=*"):
            if day_dir.is_dir() and not any(day_dir.iterdir()):
                day_dir.rmdir()
    else:
        for f in previous_files:
            (lake / f).unlink(missing_ok=True)
        moved = []
        for path in writers.files:
            target = root / path.name
            os.replace(path, target)
            moved.append(str(target.relative_to(lake)))
        result.files = sorted(moved)
    shutil.rmtree(tmp, ignore_errors=True)
    result.bytes = sum((lake / f).stat().st_size for f in result.files)
    result.bytes_written = sum((lake / f).stat().st_size for f in moved)
    return result


def default_lookback() -> timedelta:
    """The marts' events_lookback (dbt_project.yml), as a timedelta."""
    project = yaml.safe_load((project_root() / "dbt_project.yml").read_text())
    text = str(((project.get("vars") or {}).get("events_lookback")) or "3 days")
    return parse_interval(text)


_UNITS = {"sec": 1, "second": 1, "min": 60, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def parse_interval(text: str) -> timedelta:
    """'3 days', '12 hours', '1 week 2 days' (the interval settings accept) as a timedelta."""
    value = settings.interval(text, "lookback")
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", value.lower()):
        seconds = _UNITS.get(unit.rstrip("s")) or _UNITS.get(unit)
        if seconds is None:
            raise LakeError(f"lookback: unsupported unit {unit!r} (seconds, minutes, hours, days or weeks)")
        total += float(number) * seconds
    return timedelta(seconds=total)
