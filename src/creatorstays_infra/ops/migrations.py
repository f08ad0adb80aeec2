"""Applying and rolling back migrations on a live database.

Model (after Sqitch/Flyway, with squawk's safety rules):

* each migration is a folder under scripts/migrations/ with
  - `migration.sql`: exactly what the application's ORM (Prisma) generates for the change, byte for
    byte the file the application repository ships, so both tools record the same checksum;
  - `extras.sql` (optional): what the ORM does not model (CHECK constraints, triggers, functions);
  - `down.sql`: removes what both create;
* a step (up or down) is ONE transaction: the files, the ledger rows and, for a rollback, the
  archive of every value that cannot be derived again commit together or not at all;
* every statement runs under `lock_timeout` and `statement_timeout` (SET LOCAL); a lock timeout
  rolls the step back and retries it with exponential backoff, then fails cleanly;
* a session-level advisory lock keeps two runners apart (the second waits, then sees the work done);
* the project's ledger (csinfra_meta.schema_migrations + migration_log) records name, checksums,
  when, by whom and how long; an applied file whose checksum changed stops every step;
* the ORM's ledger (`_prisma_migrations`, where it exists) is kept as `prisma migrate` keeps it:
  `up` writes the row `prisma migrate deploy` would write, adopts a migration the ORM applied
  itself (adding only the extras), resolves a failed ORM attempt the way
  `prisma migrate resolve --rolled-back` does; `down` removes the rows, so the ORM sees the
  migration as pending again;
* each statement a step sends (and the advisory lock around the steps) is built once, as a
  `Statement` of composed SQL, and `Runner._run` either executes it or, with --dry-run, prints it:
  the dry run prints exactly what a real run executes (values known only while it runs are bind
  parameters $1, $2, …). The reads that decide what to do (ledgers, catalog, the probe of what the
  files create) run in both modes.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.types.json import Jsonb

from .. import settings
from ..errors import LockTimeout, MigrationError
from . import schema_snapshot
from .catalog import schema_exists, table_exists
from .database import project_root

MIGRATIONS_DIR = project_root() / "scripts" / "migrations"
PRISMA_TABLE = "_prisma_migrations"
# Tables whose rows a rollback archives before dropping them.
ARCHIVED_TABLES = ("audit_logs", "analytics_events")
# Offers' Phase 1 values that cannot be derived again: the status history (written by the
# application as statuses change) and the terms snapshots the application wrote at creation
# (a snapshot marked "reconstructed" was derived by the backfill and is derived again).
ARCHIVED_OFFER_VALUES = "offers"
ADVISORY_NAMESPACE = "csinfra.migrate"


def sha256_hex(data: bytes) -> str:
    """What Prisma stores in `_prisma_migrations.checksum`: the sha256 of the file, in hex."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Migration:
    name: str
    up_bytes: bytes
    down_sql: str
    extras_sql: str = ""

    @property
    def up_sql(self) -> str:
        return self.up_bytes.decode("utf-8")

    @property
    def checksum(self) -> str:
        """sha256 hex of migration.sql, exactly what Prisma stores in `_prisma_migrations.checksum`."""
        return sha256_hex(self.up_bytes)

    @property
    def extras_checksum(self) -> str:
        return sha256_hex(self.extras_sql.encode("utf-8"))

    @property
    def altered_tables(self) -> dict[str, list[str]]:
        """Existing application tables the files alter (parsed from their ALTER TABLE lines)."""
        tables: dict[str, list[str]] = {}
        for line in (self.up_sql + "\n" + self.extras_sql).splitlines():
            if line.startswith('ALTER TABLE "'):
                tables.setdefault(line.split('"')[1], ["id"])
        created = {
            line.split('"')[1] for line in self.up_sql.splitlines() if line.startswith('CREATE TABLE "')
        }
        return {t: c for t, c in tables.items() if t not in created}


_DOLLAR_QUOTED = re.compile(r"(\$[A-Za-z_0-9]*\$).*?\1", re.DOTALL)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(begin|commit|rollback|end|abort|savepoint|release|start\s+transaction|prepare\s+transaction)\b",
    re.IGNORECASE,
)


def transaction_control(script: str) -> str | None:
    """The first transaction-control statement of a script (BEGIN, COMMIT, …), ignoring function bodies and
    comments; None when it has none. csinfra runs migration files inside its own transaction (for a
    probe, one that is always rolled back), which such a statement would end."""
    text = _COMMENTS.sub(" ", _DOLLAR_QUOTED.sub("$$", script))
    for statement in text.split(";"):
        match = _TRANSACTION_CONTROL.match(statement)
        if match:
            return match.group(1).upper()
    return None


def migrations_dir() -> Path:
    """scripts/migrations, or CSINFRA_MIGRATIONS_DIR."""
    env = os.environ.get("CSINFRA_MIGRATIONS_DIR")
    return Path(env) if env else MIGRATIONS_DIR


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    migrations = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        up, down, extras = folder / "migration.sql", folder / "down.sql", folder / "extras.sql"
        if not up.exists() or not down.exists():
            raise MigrationError(f"migration folder {folder} needs both migration.sql and down.sql")
        for path in (up, extras, down):
            if path.exists() and (word := transaction_control(path.read_bytes().decode("utf-8"))):
                raise MigrationError(
                    f"{path} contains {word}: csinfra runs each step in one transaction of its own; "
                    "remove transaction control from the file"
                )
        migrations.append(
            Migration(
                name=folder.name,
                up_bytes=up.read_bytes(),
                down_sql=down.read_bytes().decode("utf-8"),
                extras_sql=extras.read_bytes().decode("utf-8") if extras.exists() else "",
            )
        )
    if not migrations:
        raise MigrationError(f"no migrations found under {directory}")
    return migrations


@dataclass
class Options:
    app_schema: str = "public"
    lock_timeout: str = "3s"
    statement_timeout: str = "5min"
    retries: int = 5
    backoff_seconds: float = 0.5
    lock_wait_seconds: float = 60.0
    discard_data: bool = False
    dry_run: bool = False
    # The application repository's own migration.sql for the (last) migration, when it is not ours
    # byte for byte: its checksum is what the ORM's ledger must hold (CSINFRA_PRISMA_MIGRATION_FILE).
    prisma_migration_file: Path | None = field(
        default_factory=lambda: _env_path("CSINFRA_PRISMA_MIGRATION_FILE")
    )
    meta_schema: str = field(default_factory=settings.meta_schema)
    archive_schema: str = field(default_factory=settings.archive_schema)

    def __post_init__(self) -> None:
        # Checked where they enter (a library caller builds Options directly, not through the CLI).
        settings.check_schema_name(self.app_schema, "app_schema")
        settings.check_schema_name(self.meta_schema, "meta_schema")
        settings.check_schema_name(self.archive_schema, "archive_schema")
        self.lock_timeout = settings.duration(self.lock_timeout, "lock_timeout")
        self.statement_timeout = settings.duration(self.statement_timeout, "statement_timeout")
        settings.number(self.retries, "retries", 0, 100)
        settings.number(self.backoff_seconds, "backoff_seconds", 0, 3600)
        settings.number(self.lock_wait_seconds, "lock_wait_seconds", 0, 86400)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


@dataclass
class StepResult:
    migration: str
    action: str  # applied | rolled back | adopted | already applied | not applied | dry run
    duration_ms: int = 0
    attempts: int = 0
    archive_id: str | None = None
    archived_rows: dict[str, int] = field(default_factory=dict)
    sql: str | None = None
    prisma: str | None = None
    notes: list[str] = field(default_factory=list)


Log = Callable[[str], None]


def _noop(_: str) -> None:
    pass


# -- ledger -------------------------------------------------------------------------------------
LEDGER_DDL = """
create schema if not exists {meta};
create table if not exists {meta}.schema_migrations (
    app_schema text not null,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    applied_by text not null,
    duration_ms integer not null,
    prisma_migration_id text,
    primary key (app_schema, name)
);
alter table {meta}.schema_migrations add column if not exists extras_checksum text;
alter table {meta}.schema_migrations add column if not exists prisma_checksum text;
create table if not exists {meta}.migration_log (
    id bigint generated always as identity primary key,
    app_schema text not null,
    name text not null,
    action text not null check (action in ('up', 'down', 'adopt')),
    checksum text not null,
    started_at timestamptz not null,
    finished_at timestamptz not null default clock_timestamp(),
    duration_ms integer not null,
    executed_by text not null,
    details jsonb not null default '{{}}'
);
create table if not exists {meta}.rollback_archives (
    archive_id text primary key,
    app_schema text not null,
    name text not null,
    created_at timestamptz not null default now(),
    tables jsonb not null,
    restored_at timestamptz
);
"""


def ledger_ddl(meta_schema: str) -> sql.Composed:
    return sql.SQL(LEDGER_DDL.strip()).format(meta=sql.Identifier(meta_schema))


def ensure_ledger(conn: psycopg.Connection, meta_schema: str) -> None:
    conn.execute(ledger_ddl(meta_schema))


@dataclass(frozen=True)
class LedgerRow:
    name: str
    checksum: str
    applied_at: datetime
    applied_by: str
    duration_ms: int
    prisma_migration_id: str | None
    extras_checksum: str | None
    prisma_checksum: str | None


def ledger_rows(conn: psycopg.Connection, meta_schema: str, app_schema: str) -> dict[str, LedgerRow]:
    if not table_exists(conn, meta_schema, "schema_migrations"):
        return {}
    # ledgers written by earlier versions lack the newer columns
    present = {
        r[0]
        for r in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped",
            (sql.Identifier(meta_schema, "schema_migrations").as_string(conn),),
        )
    }
    optional = [
        sql.Identifier(c) if c in present else sql.SQL("null::text")
        for c in ("extras_checksum", "prisma_checksum")
    ]
    rows = conn.execute(
        sql.SQL(
            "select name, checksum, applied_at, applied_by, duration_ms, prisma_migration_id, {} "
            "from {} where app_schema = %s"
        ).format(sql.SQL(", ").join(optional), sql.Identifier(meta_schema, "schema_migrations")),
        (app_schema,),
    ).fetchall()
    return {r[0]: LedgerRow(*r) for r in rows}


@dataclass(frozen=True)
class PrismaRow:
    """One row of the ORM's ledger, as `prisma migrate` reads it."""

    id: str
    checksum: str
    finished_at: datetime | None
    rolled_back_at: datetime | None
    started_at: datetime
    logs: str | None

    @property
    def finished(self) -> bool:
        """Applied: `migrate deploy` skips it."""
        return self.finished_at is not None and self.rolled_back_at is None

    @property
    def failed(self) -> bool:
        """A failed attempt: `migrate deploy` refuses every later migration (P3009) until it is resolved."""
        return self.finished_at is None and self.rolled_back_at is None

    def as_dict(self, expected_checksum: str) -> dict:
        return {
            "id": self.id,
            "checksum": self.checksum,
            "finishedAt": self.finished_at.isoformat() if self.finished_at else None,
            "rolledBackAt": self.rolled_back_at.isoformat() if self.rolled_back_at else None,
            "startedAt": self.started_at.isoformat(),
            "state": "applied" if self.finished else "failed" if self.failed else "rolled back",
            "checksumOk": self.checksum == expected_checksum,
        }


def prisma_rows(conn: psycopg.Connection, app_schema: str, name: str) -> list[PrismaRow] | None:
    """Rows of the ORM's ledger for `name`; None when the ORM's ledger table does not exist."""
    if not table_exists(conn, app_schema, PRISMA_TABLE):
        return None
    rows = conn.execute(
        sql.SQL(
            "select id, checksum, finished_at, rolled_back_at, started_at, logs from {} "
            "where migration_name = %s order by started_at"
        ).format(sql.Identifier(app_schema, PRISMA_TABLE)),
        (name,),
    ).fetchall()
    return [PrismaRow(*r) for r in rows]


def executed_by(conn: psycopg.Connection) -> str:
    db_user = conn.execute("select current_user").fetchone()[0]
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = "unknown"
    return f"{db_user} (os {os_user}@{socket.gethostname()})"


# -- what the schema looks like ---------------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """The objects a migration's two files create, each found by applying the file to a probe schema."""

    orm: dict[str, str]  # migration.sql: what the ORM models
    extras: dict[str, str]  # extras.sql: what csinfra adds

    @property
    def all(self) -> dict[str, str]:
        return {**self.orm, **self.extras}


@dataclass(frozen=True)
class SchemaState:
    """How far the live schema is from a migration's objects."""

    orm_present: list[schema_snapshot.ObjectDiff]
    orm_mismatched: list[schema_snapshot.ObjectDiff]
    extras_present: list[schema_snapshot.ObjectDiff]
    extras_mismatched: list[schema_snapshot.ObjectDiff]
    expected: Expected

    @property
    def orm_applied(self) -> bool:
        return not self.orm_mismatched

    @property
    def orm_absent(self) -> bool:
        return not self.orm_present

    @property
    def extras_applied(self) -> bool:
        return not self.extras_mismatched

    @property
    def extras_absent(self) -> bool:
        return not self.extras_present


def _differences(diffs: list[schema_snapshot.ObjectDiff], schema: str, limit: int = 20) -> str:
    text = "; ".join(d.describe(schema) for d in diffs[:limit])
    return text + (f"; and {len(diffs) - limit} more" if len(diffs) > limit else "")


# -- statements -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    """One statement of a step, built once as composed SQL, then executed as it is or, in a dry run,
    printed as it is (`Runner._run` decides; there is no second spelling).

    Identifiers are `sql.Identifier`, values known before the step starts are `sql.Literal`; a value
    known only while the step runs (its start time, its duration, the id an earlier statement
    returned) is a bind parameter `$1`, `$2`, … in the text, named in `params`, whose value goes to
    the server beside the text, as in any prepared statement."""

    query: sql.Composable
    about: str = ""
    params: tuple[str, ...] = ()

    def text(self, conn: psycopg.Connection) -> str:
        """The statement exactly as it is sent to the server."""
        return self.query.as_string(conn)

    def render(self, conn: psycopg.Connection) -> str:
        """What the dry run prints (and a transcript receives): `about` and the bind parameters as comments,
        then the statement's text, ended by a semicolon."""
        about = self.about
        if self.params:
            bound = ", ".join(f"${i} = {name}" for i, name in enumerate(self.params, 1))
            about = f"{about} ({bound}: bound when it runs)" if about else f"{bound}: bound when it runs"
        head = "".join(f"-- {line}\n" for line in about.splitlines())
        text = self.text(conn).rstrip()
        return head + text + ("" if text.endswith(";") else ";") + "\n"


Transcript = Callable[[str], None]


def _value(cur: psycopg.RawCursor | None):
    """The first column of the first row a statement returned; None in a dry run (nothing ran)."""
    return None if cur is None else cur.fetchone()[0]


# -- runner -------------------------------------------------------------------------------------
class Runner:
    """Runs migration steps. Every statement a step sends, and the advisory lock around them, goes through
    `_run`: executed, or printed in a dry run. `transcript`, when given, receives each one as
    `Statement.render` writes it, with the step's BEGIN and COMMIT (ROLLBACK when it fails): in a dry run
    that is the output; in a real run, a record of what was executed, the same text. Reads that decide
    what a step does (the ledgers, the catalog, the probe of what the files create) run in both modes and
    are not printed."""

    def __init__(
        self,
        conn: psycopg.Connection,
        options: Options,
        log: Log = _noop,
        transcript: Transcript | None = None,
    ):
        if conn.autocommit:
            raise MigrationError("the migration runner needs a connection without autocommit")
        self.conn = conn
        self.o = options
        self.log = log
        self.transcript = transcript
        self._expected: dict[str, Expected] = {}
        self._step_text: list[str] | None = None

    # the one path for every statement ---------------------------------------------------------
    def _emit(self, text: str) -> None:
        if self._step_text is not None:
            self._step_text.append(text)
        if self.transcript is not None:
            self.transcript(text)

    def _run(self, stmt: Statement, **values) -> psycopg.RawCursor | None:
        """Print `stmt` (dry run) or execute it, with `values` bound to its parameters. Returns the cursor, or
        None in a dry run."""
        if set(values) != set(stmt.params):
            raise TypeError(f"statement parameters {stmt.params} but values for {sorted(values)}")
        self._emit(stmt.render(self.conn))
        if self.o.dry_run:
            return None
        # A raw cursor: $1, $2, … are the server's own placeholders and a % in the text (a migration file's
        # RAISE, a literal) is never taken for one.
        return psycopg.RawCursor(self.conn).execute(
            stmt.query, [values[p] for p in stmt.params] if stmt.params else None
        )

    # advisory lock ---------------------------------------------------------------------------
    def _lock_key(self) -> tuple[int, int]:
        row = self.conn.execute(
            "select hashtext(%s), hashtext(%s)", (ADVISORY_NAMESPACE, self.o.app_schema)
        ).fetchone()
        self.conn.rollback()
        return int(row[0]), int(row[1])

    def acquire(self) -> None:
        k1, k2 = self._lock_key()
        lock = Statement(
            sql.SQL("select pg_try_advisory_lock({}, {})").format(sql.Literal(k1), sql.Literal(k2)),
            f"one runner at a time: the session-level advisory lock (hashtext of {ADVISORY_NAMESPACE!r} "
            f"and of {self.o.app_schema!r}), polled until --lock-wait",
        )
        deadline = time.monotonic() + self.o.lock_wait_seconds
        announced = False
        while True:
            cur = self._run(lock)
            if cur is None:  # dry run: printed, not taken
                return
            got = cur.fetchone()[0]
            self.conn.commit()
            if got:
                return
            holder = self.conn.execute(
                "select pid from pg_locks where locktype = 'advisory' and objsubid = 2 "
                "and database = (select oid from pg_database where datname = current_database()) "
                "and classid = %s::bigint::oid and objid = %s::bigint::oid and granted",
                (k1 & 0xFFFFFFFF, k2 & 0xFFFFFFFF),
            ).fetchone()
            self.conn.commit()
            if not announced:
                self.log(
                    f"another migration runner holds the lock (pid {holder[0] if holder else '?'}); waiting"
                )
                announced = True
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"another migration runner (pid {holder[0] if holder else '?'}) held the migration lock "
                    f"for more than {self.o.lock_wait_seconds:g}s; nothing changed"
                )
            time.sleep(0.2)

    def release(self) -> None:
        k1, k2 = self._lock_key()
        self._run(
            Statement(
                sql.SQL("select pg_advisory_unlock({}, {})").format(sql.Literal(k1), sql.Literal(k2)),
                "the migration lock, released",
            )
        )
        if not self.o.dry_run:
            self.conn.commit()

    def _executed_by(self) -> str:
        """Who runs the step, for the ledgers (a read, before the step's transaction)."""
        by = executed_by(self.conn)
        self.conn.rollback()
        return by

    # preflight --------------------------------------------------------------------------------
    def _check_app_schema(self, m: Migration) -> None:
        if not schema_exists(self.conn, self.o.app_schema):
            raise MigrationError(f"application schema {self.o.app_schema!r} does not exist")
        for table in m.altered_tables:
            if not table_exists(self.conn, self.o.app_schema, table):
                raise MigrationError(
                    f"application table {self.o.app_schema}.{table} does not exist; "
                    f"{m.name} alters it (is --app-schema right?)"
                )
        self.conn.rollback()

    def _check_checksum(self, m: Migration, row: LedgerRow | None) -> None:
        if row is None:
            return
        if row.checksum != m.checksum:
            raise MigrationError(
                f"{m.name} was applied with checksum {row.checksum[:12]}… but "
                f"scripts/migrations/{m.name}/migration.sql now has {m.checksum[:12]}…; "
                "an applied migration must not change (write a new migration instead)"
            )
        if row.extras_checksum is not None and row.extras_checksum != m.extras_checksum:
            raise MigrationError(
                f"{m.name} was applied with extras checksum {row.extras_checksum[:12]}… but "
                f"scripts/migrations/{m.name}/extras.sql now has {m.extras_checksum[:12]}…; "
                "an applied migration must not change (write a new migration instead)"
            )

    def expected(self, m: Migration) -> Expected:
        if m.name not in self._expected:
            orm, extras = schema_snapshot.expected_objects(
                self.conn, [m.up_sql, m.extras_sql], m.altered_tables
            )
            self._expected[m.name] = Expected(orm=orm, extras=extras)
        return self._expected[m.name]

    def schema_state(self, m: Migration) -> SchemaState:
        expected = self.expected(m)
        actual = schema_snapshot.catalog_objects(self.conn, self.o.app_schema)
        self.conn.rollback()
        return SchemaState(
            orm_present=schema_snapshot.present(expected.orm, actual),
            orm_mismatched=schema_snapshot.compare(expected.orm, actual),
            extras_present=schema_snapshot.present(expected.extras, actual),
            extras_mismatched=schema_snapshot.compare(expected.extras, actual),
            expected=expected,
        )

    def prisma_checksum(self, m: Migration) -> str:
        """The checksum the ORM's ledger must hold: of the application repository's own file when one is
        named (after checking it creates exactly what migration.sql creates), else of migration.sql."""
        path = self.o.prisma_migration_file
        if path is None:
            return m.checksum
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MigrationError(f"--prisma-migration-file {path}: {exc.strerror}") from None
        if data != m.up_bytes:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise MigrationError(f"--prisma-migration-file {path} is not UTF-8 text") from None
            if word := transaction_control(text):
                raise MigrationError(
                    f"--prisma-migration-file {path} contains {word}: it cannot be compared with "
                    f"{m.name}/migration.sql inside a transaction; nothing changed"
                )
            try:
                theirs, _ = schema_snapshot.expected_objects(self.conn, [text, ""], m.altered_tables)
            except psycopg.Error as exc:
                self.conn.rollback()
                raise MigrationError(
                    f"--prisma-migration-file {path} does not apply: {exc.diag.message_primary or exc}"
                ) from None
            ours = self.expected(m).orm
            diffs = schema_snapshot.compare(ours, theirs) + [
                schema_snapshot.ObjectDiff(k, None, v) for k, v in theirs.items() if k not in ours
            ]
            if diffs:
                raise MigrationError(
                    f"--prisma-migration-file {path} does not create what {m.name}/migration.sql creates: "
                    f"{_differences(diffs, 'its schema')}; nothing changed"
                )
        return sha256_hex(data)

    def schema_problems(self, m: Migration, applied: bool) -> list[str]:
        """What in the application schema disagrees with `applied` (as the ledger claims)."""
        state = self.schema_state(m)
        if applied:
            return [d.describe(self.o.app_schema) for d in state.orm_mismatched + state.extras_mismatched]
        return [
            f"{d.kind} {self.o.app_schema}.{d.name} exists but the ledger says {m.name} is not applied"
            for d in state.orm_present + state.extras_present
        ]

    # up ---------------------------------------------------------------------------------------
    def up(self, m: Migration) -> StepResult:
        self._check_app_schema(m)
        ours = ledger_rows(self.conn, self.o.meta_schema, self.o.app_schema).get(m.name)
        self._check_checksum(m, ours)
        prisma = prisma_rows(self.conn, self.o.app_schema, m.name)
        self.conn.rollback()
        finished = [r for r in (prisma or []) if r.finished]
        failed = [r for r in (prisma or []) if r.failed]
        if ours is not None:
            if prisma is None or (finished and not failed):
                return StepResult(m.name, "already applied")
            return self._repair_orm_ledger(m, ours, finished, failed)
        prisma_checksum = self.prisma_checksum(m)
        state = self.schema_state(m)

        if finished:
            # The ORM applied migration.sql itself (`prisma migrate deploy` from the application's own file).
            if not state.orm_applied:
                raise MigrationError(
                    f"{PRISMA_TABLE} records {m.name} as applied (row {finished[-1].id}), but the schema differs from "
                    f"what it creates: {_differences(state.orm_mismatched, self.o.app_schema)}; nothing changed"
                )
            return self._adopt(m, finished[-1], state, failed, prisma_checksum)
        if not state.orm_absent or not state.extras_absent:
            present = state.orm_present + state.extras_present
            first = present[0]
            if failed:
                raise MigrationError(
                    f"{PRISMA_TABLE} holds a failed attempt of {m.name} (row {failed[-1].id}) and the schema is partly "
                    f"applied ({len(present)} of its {len(state.expected.all)} objects present, e.g. {first.kind} "
                    f"{self.o.app_schema}.{first.name}): remove what the failed attempt left (`csinfra migrate status` "
                    "lists it), then run `csinfra migrate up` again; nothing changed"
                )
            if first.actual != first.expected:
                raise MigrationError(
                    f"{first.kind} {self.o.app_schema}.{first.name} already exists as {first.actual!r}; "
                    f"{m.name} creates it as {first.expected!r}; nothing changed"
                )
            raise MigrationError(
                f"{first.kind} {self.o.app_schema}.{first.name} already exists but no ledger records {m.name} "
                f"({len(present)} of its {len(state.expected.all)} objects are present: "
                f"{_differences(state.orm_mismatched + state.extras_mismatched, self.o.app_schema, 10)} "
                "are missing or differ); nothing changed"
            )

        by = self._executed_by()

        def body(started: datetime, t0: float) -> StepResult:
            notes = self._resolve_failed(m, failed)
            self._run(
                Statement(
                    sql.SQL(m.up_sql), f"scripts/migrations/{m.name}/migration.sql (sha256 {m.checksum})"
                )
            )
            if m.extras_sql:
                self._run(self._extras(m))
            prisma_id = self._prisma_record(m, started, prisma_checksum) if prisma is not None else None
            duration = int((time.monotonic() - t0) * 1000)
            self._ledger_insert(m, by, duration, prisma_id, prisma_checksum)
            self._log_row(
                m,
                "up",
                started,
                duration,
                by,
                {
                    "prisma_migration_id": prisma_id,
                    "prisma_checksum": prisma_checksum,
                    "resolved_failed_prisma_rows": [r.id for r in failed],
                },
            )
            return StepResult(
                m.name,
                "applied",
                duration_ms=duration,
                notes=notes,
                prisma="recorded" if prisma_id else "no _prisma_migrations table",
            )

        return self._transaction(
            m,
            f"csinfra migrate up {m.name}: its files and both ledgers, in one transaction",
            body,
            tables=list(m.altered_tables),
        )

    def _extras(self, m: Migration) -> Statement:
        return Statement(
            sql.SQL(m.extras_sql), f"scripts/migrations/{m.name}/extras.sql (sha256 {m.extras_checksum})"
        )

    def _repair_orm_ledger(
        self, m: Migration, ours: LedgerRow, finished: list[PrismaRow], failed: list[PrismaRow]
    ) -> StepResult:
        """Applied by csinfra, but the ORM's ledger lacks the finished row or holds a failed attempt (someone ran
        `prisma migrate deploy` against it, or deleted the row): make it what `prisma migrate deploy` expects."""
        state = self.schema_state(m)
        if not state.orm_applied:
            raise MigrationError(
                f"{m.name} is applied by the csinfra ledger but the schema differs from it: "
                f"{_differences(state.orm_mismatched, self.o.app_schema)}; {PRISMA_TABLE} left as it is; nothing changed"
            )
        checksum = ours.prisma_checksum or m.checksum
        by = self._executed_by()

        def body(started: datetime, t0: float) -> StepResult:
            notes = self._resolve_failed(m, failed)
            prisma_id = None
            if not finished:
                prisma_id = self._prisma_record(m, started, checksum)
                notes.append(
                    f"{PRISMA_TABLE} had no finished row for {m.name}: recorded (row {prisma_id}), as "
                    "`prisma migrate deploy` would have"
                )
            self._log_row(
                m,
                "up",
                started,
                int((time.monotonic() - t0) * 1000),
                by,
                {
                    "repaired_prisma_ledger": True,
                    "prisma_migration_id": prisma_id,
                    "resolved_failed_prisma_rows": [r.id for r in failed],
                },
            )
            return StepResult(m.name, "already applied", notes=notes, prisma="repaired")

        return self._transaction(m, f"{m.name} is applied; csinfra repairs {PRISMA_TABLE}", body, tables=[])

    def _ledger_insert(
        self,
        m: Migration,
        by: str,
        duration: int,
        prisma_id: str | None,
        prisma_checksum: str | None,
    ) -> None:
        self._run(
            Statement(
                ledger_ddl(self.o.meta_schema), "the csinfra ledger's tables, where they do not exist yet"
            )
        )
        self._run(
            Statement(
                sql.SQL(
                    "insert into {} (app_schema, name, checksum, extras_checksum, prisma_checksum, "
                    "applied_by, duration_ms, prisma_migration_id) values ({}, {}, {}, {}, {}, {}, $1, $2)"
                ).format(
                    sql.Identifier(self.o.meta_schema, "schema_migrations"),
                    *(
                        sql.Literal(v)
                        for v in (
                            self.o.app_schema,
                            m.name,
                            m.checksum,
                            m.extras_checksum,
                            prisma_checksum,
                            by,
                        )
                    ),
                ),
                f"the csinfra ledger: {m.name} applied",
                params=("duration_ms", "prisma_migration_id"),
            ),
            duration_ms=duration,
            prisma_migration_id=prisma_id,
        )

    def _adopt(
        self,
        m: Migration,
        prisma: PrismaRow,
        state: SchemaState,
        failed: list[PrismaRow],
        named_checksum: str,
    ) -> StepResult:
        """The ORM applied migration.sql: record it in our ledger and add only the extras."""
        if not state.extras_absent and not state.extras_applied:
            raise MigrationError(
                f"{m.name} was applied by the ORM, and some of csinfra's extras exist but differ: "
                f"{_differences(state.extras_mismatched, self.o.app_schema)}; nothing changed"
            )
        add_extras = bool(m.extras_sql) and state.extras_absent
        by = self._executed_by()

        def body(started: datetime, t0: float) -> StepResult:
            notes = self._resolve_failed(m, failed)
            if add_extras:
                self._run(self._extras(m))
            duration = int((time.monotonic() - t0) * 1000)
            self._ledger_insert(m, by, duration, prisma.id, prisma.checksum)
            self._log_row(
                m,
                "adopt",
                started,
                duration,
                by,
                {
                    "prisma_migration_id": prisma.id,
                    "prisma_checksum": prisma.checksum,
                    "extras_added": add_extras,
                    "resolved_failed_prisma_rows": [r.id for r in failed],
                },
            )
            if self.o.prisma_migration_file is not None and named_checksum != prisma.checksum:
                notes.append(
                    f"the ORM's row has checksum {prisma.checksum[:12]}…, not that of "
                    f"{self.o.prisma_migration_file} ({named_checksum[:12]}…): the ORM applied another file; "
                    "`prisma migrate dev` will report it modified unless the application repository holds that one"
                )
            if prisma.checksum != m.checksum:
                notes.append(
                    f"the ORM applied it from another file (checksum {prisma.checksum[:12]}…, migration.sql "
                    f"{m.checksum[:12]}…); the schema is the same, so the ORM's row is kept as it is"
                )
            return StepResult(
                m.name,
                "adopted",
                duration_ms=duration,
                notes=notes,
                prisma=f"applied by the ORM (row {prisma.id}); "
                + ("csinfra's extras added" if add_extras else "csinfra's extras were present"),
            )

        return self._transaction(
            m,
            f"{m.name} was applied by the ORM ({PRISMA_TABLE} row {prisma.id}); csinfra adopts it"
            + (" and adds its extras" if add_extras else "")
            + "; the ORM's row is kept as it is",
            body,
            tables=list(m.altered_tables) if add_extras else [],
        )

    def _resolve_failed(self, m: Migration, failed: list[PrismaRow]) -> list[str]:
        """Mark failed ORM attempts rolled back, as `prisma migrate resolve --rolled-back` does."""
        notes = []
        for row in failed:
            self._run(
                Statement(
                    sql.SQL(
                        "update {} set rolled_back_at = now() "
                        "where id = {} and finished_at is null and rolled_back_at is null"
                    ).format(sql.Identifier(self.o.app_schema, PRISMA_TABLE), sql.Literal(row.id)),
                    f"{PRISMA_TABLE}: the failed ORM attempt {row.id}, resolved as "
                    "`prisma migrate resolve --rolled-back` does",
                )
            )
            notes.append(
                f"{PRISMA_TABLE}: the failed ORM attempt {row.id} (started {row.started_at:%Y-%m-%d %H:%M:%S}) "
                "was marked rolled back, as `prisma migrate resolve --rolled-back` does"
            )
        return notes

    def _prisma_record(self, m: Migration, started: datetime, checksum: str) -> str | None:
        """Record the migration as `prisma migrate deploy` does: one finished row, one applied step.
        Returns the row's id (None in a dry run)."""
        return _value(
            self._run(
                Statement(
                    sql.SQL(
                        "insert into {} (id, checksum, finished_at, migration_name, logs, rolled_back_at, "
                        "started_at, applied_steps_count) "
                        "values (gen_random_uuid()::text, {}, clock_timestamp(), {}, null, null, $1, 1) "
                        "returning id"
                    ).format(
                        sql.Identifier(self.o.app_schema, PRISMA_TABLE),
                        sql.Literal(checksum),
                        sql.Literal(m.name),
                    ),
                    f"{PRISMA_TABLE}: the finished row `prisma migrate deploy` writes",
                    params=("started_at",),
                ),
                started_at=started,
            )
        )

    def _log_row(
        self, m: Migration, action: str, started: datetime, duration: int, by: str, details: dict
    ) -> None:
        self._run(
            Statement(
                sql.SQL(
                    "insert into {} (app_schema, name, action, checksum, started_at, duration_ms, "
                    "executed_by, details) values ({}, {}, {}, {}, $1, $2, {}, $3)"
                ).format(
                    sql.Identifier(self.o.meta_schema, "migration_log"),
                    sql.Literal(self.o.app_schema),
                    sql.Literal(m.name),
                    sql.Literal(action),
                    sql.Literal(m.checksum),
                    sql.Literal(by),
                ),
                f"the csinfra ledger's log: {action}; details holds {', '.join(details)}",
                params=("started_at", "duration_ms", "details"),
            ),
            started_at=started,
            duration_ms=duration,
            details=Jsonb(details),
        )

    # down -------------------------------------------------------------------------------------
    def down(self, m: Migration) -> StepResult:
        self._check_app_schema(m)
        ours = ledger_rows(self.conn, self.o.meta_schema, self.o.app_schema).get(m.name)
        self._check_checksum(m, ours)
        prisma = prisma_rows(self.conn, self.o.app_schema, m.name)
        self.conn.rollback()
        finished = [r for r in (prisma or []) if r.finished]
        if ours is None and not finished:
            return StepResult(m.name, "not applied")
        state = self.schema_state(m)
        problems = state.orm_mismatched + ([] if state.extras_absent else state.extras_mismatched)
        if problems:
            raise MigrationError(
                f"cannot roll back {m.name}: the schema does not match it ({problems[0].describe(self.o.app_schema)}"
                f"{f' and {len(problems) - 1} more' if len(problems) > 1 else ''}); nothing changed"
            )
        archive_id = (
            "r"
            + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            + "_"
            + hashlib.sha256(f"{time.time_ns()}{random.random()}".encode()).hexdigest()[:6]
        )
        locked = [*ARCHIVED_TABLES, ARCHIVED_OFFER_VALUES]
        by = self._executed_by()

        def body(started: datetime, t0: float) -> StepResult:
            archived: dict[str, int] = {}
            self._run(
                Statement(
                    sql.SQL("lock table {} in exclusive mode").format(
                        sql.SQL(", ").join(sql.Identifier(self.o.app_schema, t) for t in locked)
                    ),
                    "writers wait (readers do not) from here on, so no row or value lands after the copy",
                )
            )
            counts = self._archivable_counts() if self.o.discard_data else {}
            if not self.o.discard_data:
                archived = self._archive(m, archive_id)
            self._run(Statement(sql.SQL(m.down_sql), f"scripts/migrations/{m.name}/down.sql"))
            removed = []
            if prisma is not None:
                cur = self._run(
                    Statement(
                        sql.SQL("delete from {} as p where migration_name = {} returning to_jsonb(p)").format(
                            sql.Identifier(self.o.app_schema, PRISMA_TABLE), sql.Literal(m.name)
                        ),
                        f"{PRISMA_TABLE}: its rows removed, so the ORM sees {m.name} as pending",
                    )
                )
                removed = [] if cur is None else [r[0] for r in cur.fetchall()]
            self._run(
                Statement(
                    ledger_ddl(self.o.meta_schema), "the csinfra ledger's tables, where they do not exist yet"
                )
            )
            self._run(
                Statement(
                    sql.SQL("delete from {} where app_schema = {} and name = {}").format(
                        sql.Identifier(self.o.meta_schema, "schema_migrations"),
                        sql.Literal(self.o.app_schema),
                        sql.Literal(m.name),
                    ),
                    f"the csinfra ledger: {m.name} not applied",
                )
            )
            duration = int((time.monotonic() - t0) * 1000)
            details = {
                "archive_id": archive_id if archived else None,
                "archived_rows": archived,
                "discarded_rows": counts if self.o.discard_data else {},
                "prisma_rows_removed": removed,
            }
            self._log_row(m, "down", started, duration, by, details)
            return StepResult(
                m.name,
                "rolled back",
                duration_ms=duration,
                archive_id=archive_id if not self.o.discard_data else None,
                archived_rows=archived if not self.o.discard_data else counts,
                prisma=(
                    f"{len(removed)} row(s) removed: the ORM sees {m.name} as pending"
                    if prisma is not None
                    else "no _prisma_migrations table"
                ),
            )

        return self._transaction(
            m,
            f"csinfra migrate down {m.name}"
            + (
                ": --discard-data, nothing is archived"
                if self.o.discard_data
                else f": archive {archive_id} (a new id on every run), then down.sql"
            ),
            body,
            tables=[*m.altered_tables, *ARCHIVED_TABLES],
        )

    # archives ---------------------------------------------------------------------------------
    def _offer_values_query(self) -> sql.Composed:
        """Offers holding values that cannot be derived again: a status history, or a terms snapshot
        the application wrote (not one the backfill reconstructed)."""
        return sql.SQL(
            """select id,
                   nullif("statusHistory", '[]'::jsonb) as status_history,
                   case when "originalTermsSnapshot" -> 'reconstructed' is distinct from 'true'::jsonb
                        then "originalTermsSnapshot" end as original_terms_snapshot
               from {}
               where "statusHistory" <> '[]'::jsonb
                  or ("originalTermsSnapshot" is not null
                      and "originalTermsSnapshot" -> 'reconstructed' is distinct from 'true'::jsonb)"""
        ).format(sql.Identifier(self.o.app_schema, "offers"))

    def _archivable_counts(self) -> dict[str, int | None]:
        """--discard-data: what is dropped without an archive, counted for the log (None in a dry run)."""
        counts = {
            t: _value(
                self._run(
                    Statement(
                        sql.SQL("select count(*) from {}").format(sql.Identifier(self.o.app_schema, t)),
                        f"--discard-data: the rows of {t} are counted for the log, NOT archived",
                    )
                )
            )
            for t in ARCHIVED_TABLES
        }
        counts[ARCHIVED_OFFER_VALUES] = _value(
            self._run(
                Statement(
                    sql.SQL("select count(*) from ({}) as v").format(self._offer_values_query()),
                    "--discard-data: offers' statusHistory and terms snapshots are counted for the log, "
                    "NOT archived",
                )
            )
        )
        return counts

    def _archive(self, m: Migration, archive_id: str) -> dict[str, int | None]:
        self._run(
            Statement(
                sql.SQL("create schema if not exists {}").format(sql.Identifier(self.o.archive_schema)),
                "the archive: every value the rollback drops that cannot be derived again",
            )
        )
        self._run(
            Statement(
                ledger_ddl(self.o.meta_schema), "the csinfra ledger's tables, where they do not exist yet"
            )
        )
        tables: dict[str, dict] = {}
        for t in ARCHIVED_TABLES:
            archive_table = f"{archive_id}__{t}"
            cur = self._run(
                Statement(
                    sql.SQL("create table {} as table {}").format(
                        sql.Identifier(self.o.archive_schema, archive_table),
                        sql.Identifier(self.o.app_schema, t),
                    ),
                    f"the rows of {t}",
                )
            )
            tables[t] = {
                "archive_table": f"{self.o.archive_schema}.{archive_table}",
                "rows": None if cur is None else cur.rowcount,
                "kind": "rows",
            }
        archive_table = f"{archive_id}__{ARCHIVED_OFFER_VALUES}"
        cur = self._run(
            Statement(
                sql.SQL("create table {} as {}").format(
                    sql.Identifier(self.o.archive_schema, archive_table), self._offer_values_query()
                ),
                "offers' statusHistory and the terms snapshots the application wrote",
            )
        )
        tables[ARCHIVED_OFFER_VALUES] = {
            "archive_table": f"{self.o.archive_schema}.{archive_table}",
            "rows": None if cur is None else cur.rowcount,
            "kind": "values",
            "columns": ["statusHistory", "originalTermsSnapshot"],
        }
        self._run(
            Statement(
                sql.SQL(
                    "insert into {} (archive_id, app_schema, name, tables) values ({}, {}, {}, $1)"
                ).format(
                    sql.Identifier(self.o.meta_schema, "rollback_archives"),
                    sql.Literal(archive_id),
                    sql.Literal(self.o.app_schema),
                    sql.Literal(m.name),
                ),
                "the archive's entry (tables: each archive table and how many rows it holds)",
                params=("tables",),
            ),
            tables=Jsonb(tables),
        )
        return {t: v["rows"] for t, v in tables.items()}

    # the one transaction, with timeouts and retries -------------------------------------------
    def _transaction(self, m: Migration, title: str, body, tables: list[str]) -> StepResult:
        if self.o.dry_run:
            # The same body, with every statement printed instead of executed.
            self._step_text = []
            try:
                self._emit(f"-- {title}\nBEGIN;\n")
                self._set_local()
                body(datetime.now(UTC), time.monotonic())
                self._emit("COMMIT;\n")
                return StepResult(m.name, "dry run", sql="".join(self._step_text))
            finally:
                self._step_text = None
        attempt = 0
        while True:
            attempt += 1
            started = datetime.now(UTC)
            t0 = time.monotonic()
            try:
                try:
                    with self.conn.transaction():
                        self._emit(f"-- {title}\nBEGIN;\n")
                        self._set_local()
                        result = body(started, t0)
                except psycopg.Error:
                    self._emit("ROLLBACK;\n")
                    raise
                self._emit("COMMIT;\n")
                result.attempts = attempt
                return result
            except pgerrors.LockNotAvailable:
                holders = self._lock_holders(tables)
                if attempt > self.o.retries:
                    raise LockTimeout(
                        f"could not lock {', '.join(f'{self.o.app_schema}.{t}' for t in tables)} within "
                        f"lock_timeout={self.o.lock_timeout} in {attempt} attempts{holders}; nothing changed"
                    ) from None
                delay = self.o.backoff_seconds * (2 ** (attempt - 1)) * (0.5 + random.random())
                self.log(
                    f"lock timeout (attempt {attempt}/{self.o.retries + 1}){holders}; retrying in {delay:.1f}s"
                )
                time.sleep(delay)
            except pgerrors.QueryCanceled:
                raise MigrationError(
                    f"a statement ran longer than statement_timeout={self.o.statement_timeout}; nothing changed"
                ) from None
            except psycopg.Error as exc:
                diag = exc.diag
                detail = diag.message_primary or str(exc).splitlines()[0]
                where = f" ({diag.context.splitlines()[0]})" if diag.context else ""
                raise MigrationError(f"migration step failed: {detail}{where}; nothing changed") from None

    def _set_local(self) -> None:
        self._run(
            Statement(
                sql.SQL(
                    "select set_config('lock_timeout', {}, true), set_config('statement_timeout', {}, true)"
                ).format(sql.Literal(self.o.lock_timeout), sql.Literal(self.o.statement_timeout)),
                "every statement of the step runs under lock_timeout and statement_timeout (SET LOCAL)",
            )
        )
        self._run(
            Statement(
                sql.SQL("set local search_path to {}").format(sql.Identifier(self.o.app_schema)),
                "the files' unqualified names are the application schema's",
            )
        )

    def _lock_holders(self, tables: list[str]) -> str:
        try:
            rows = self.conn.execute(
                """
                select l.pid, l.mode, c.relname, a.state, extract(epoch from now() - a.xact_start)::int
                from pg_locks l
                join pg_class c on c.oid = l.relation
                join pg_namespace n on n.oid = c.relnamespace
                left join pg_stat_activity a on a.pid = l.pid
                where l.database = (select oid from pg_database where datname = current_database())
                  and n.nspname = %s and c.relname = any(%s) and l.granted and l.pid <> pg_backend_pid()
                order by 5 desc nulls last limit 3
                """,
                (self.o.app_schema, tables),
            ).fetchall()
            self.conn.rollback()
        except psycopg.Error:
            self.conn.rollback()
            return ""
        if not rows:
            return ""
        parts = [
            f"pid {pid} holds {mode} on {rel} ({state}, transaction open {age}s)"
            for pid, mode, rel, state, age in rows
        ]
        return "; " + "; ".join(parts)


# -- archives -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Archive:
    archive_id: str
    app_schema: str
    name: str
    created_at: datetime
    tables: dict
    restored_at: datetime | None


def list_archives(conn: psycopg.Connection, meta_schema: str) -> list[Archive]:
    if not table_exists(conn, meta_schema, "rollback_archives"):
        return []
    rows = conn.execute(
        sql.SQL(
            "select archive_id, app_schema, name, created_at, tables, restored_at from {} order by created_at"
        ).format(sql.Identifier(meta_schema, "rollback_archives"))
    ).fetchall()
    return [Archive(*r) for r in rows]


@dataclass(frozen=True)
class Restored:
    rows: dict[str, int]  # table -> rows inserted
    values: dict[str, int]  # "statusHistory"/"originalTermsSnapshot" -> offers given their archived value
    kept: dict[str, int]  # the same -> offers whose present value won
    missing_offers: int  # archived offers no longer in the table


def restore_archive(
    conn: psycopg.Connection, options: Options, archive_id: str, *, keep_reconstructed: bool = False
) -> Restored:
    """Put an archive back into the (re-applied) Phase 1 tables: the rows of audit_logs and analytics_events
    (rows already present are kept) and offers' status histories and terms snapshots (a value the offer
    holds already wins: a history the application has started again, a snapshot written since)."""
    archives = {a.archive_id: a for a in list_archives(conn, options.meta_schema)}
    conn.rollback()
    if archive_id not in archives:
        raise MigrationError(f"no rollback archive {archive_id!r} (see `csinfra migrate archives`)")
    archive = archives[archive_id]
    rows: dict[str, int] = {}
    values = {"statusHistory": 0, "originalTermsSnapshot": 0}
    kept = {"statusHistory": 0, "originalTermsSnapshot": 0}
    missing = 0
    for table, info in archive.tables.items():
        if not table_exists(conn, archive.app_schema, table) or (
            info.get("kind") == "values" and not _has_column(conn, archive.app_schema, table, "statusHistory")
        ):
            raise MigrationError(
                f"{archive.app_schema}.{table} has no Phase 1 tables/columns: apply the migration "
                "(`csinfra migrate up`) before restoring its archived values"
            )
    values_info = [(t, i) for t, i in archive.tables.items() if i.get("kind") == "values"]
    for table, info in values_info:
        src_schema, src_table = info["archive_table"].split(".", 1)
        blocked = conn.execute(
            sql.SQL(
                """select count(*) from {archive} a join {offers} o on o.id = a.id
               where a.original_terms_snapshot is not null and o."originalTermsSnapshot" -> 'reconstructed' = 'true'::jsonb"""
            ).format(
                archive=sql.Identifier(src_schema, src_table),
                offers=sql.Identifier(archive.app_schema, table),
            )
        ).fetchone()[0]
        if blocked and not keep_reconstructed:
            conn.rollback()
            raise MigrationError(
                f"{blocked:,} offers got a reconstructed terms snapshot from a backfill since the rollback, and snapshots are "
                f"write-once: their archived originals cannot go back; nothing changed (restore archives before the "
                f"backfill; --keep-reconstructed restores everything else and leaves those originals in "
                f"{info['archive_table']})"
            )
    conn.rollback()
    # One short transaction per table, offers first: each is idempotent (present rows and values win), so
    # an interrupted restore is simply run again, and no row lock is held longer than its own table's copy.
    for table, info in sorted(archive.tables.items(), key=lambda item: item[1].get("kind") != "values"):
        with conn.transaction():
            conn.execute(
                "select set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                (options.lock_timeout, options.statement_timeout),
            )
            src_schema, src_table = info["archive_table"].split(".", 1)
            source = sql.Identifier(src_schema, src_table)
            if info.get("kind") == "values":
                stats = conn.execute(
                    sql.SQL(
                        """
                        with archived as (select * from {archive}),
                        matched as (
                            select a.*, o."statusHistory" as current_history, o."originalTermsSnapshot" as current_snapshot
                            from archived a join {offers} o on o.id = a.id
                        ),
                        updated as (
                            update {offers} o
                            set "statusHistory" = case when o."statusHistory" = '[]'::jsonb and m.status_history is not null
                                                       then m.status_history else o."statusHistory" end,
                                "originalTermsSnapshot" = coalesce(o."originalTermsSnapshot", m.original_terms_snapshot)
                            from matched m
                            where o.id = m.id
                              and ((o."statusHistory" = '[]'::jsonb and m.status_history is not null)
                                   or (o."originalTermsSnapshot" is null and m.original_terms_snapshot is not null))
                            returning 1
                        )
                        select
                            (select count(*) from matched where current_history = '[]'::jsonb and status_history is not null),
                            (select count(*) from matched where current_snapshot is null and original_terms_snapshot is not null),
                            (select count(*) from matched where current_history <> '[]'::jsonb and status_history is not null
                                                             and current_history is distinct from status_history),
                            (select count(*) from matched where current_snapshot is not null and original_terms_snapshot is not null
                                                             and current_snapshot is distinct from original_terms_snapshot),
                            (select count(*) from archived) - (select count(*) from matched),
                            (select count(*) from updated)
                        """
                    ).format(archive=source, offers=sql.Identifier(archive.app_schema, table))
                ).fetchone()
                values = {"statusHistory": stats[0], "originalTermsSnapshot": stats[1]}
                kept = {"statusHistory": stats[2], "originalTermsSnapshot": stats[3]}
                missing = stats[4]
                continue
            cols = [
                r[0]
                for r in conn.execute(
                    "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
                    (source.as_string(conn),),
                ).fetchall()
            ]
            col_list = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
            rows[table] = conn.execute(
                sql.SQL("insert into {} ({}) select {} from {} on conflict (id) do nothing").format(
                    sql.Identifier(archive.app_schema, table), col_list, col_list, source
                )
            ).rowcount
    with conn.transaction():
        conn.execute(
            sql.SQL("update {} set restored_at = now() where archive_id = %s").format(
                sql.Identifier(options.meta_schema, "rollback_archives")
            ),
            (archive_id,),
        )
    return Restored(rows=rows, values=values, kept=kept, missing_offers=missing)


def _has_column(conn: psycopg.Connection, schema: str, table: str, column: str) -> bool:
    from .catalog import column_exists

    return column_exists(conn, schema, table, column)


# -- status -------------------------------------------------------------------------------------
@dataclass
class MigrationStatus:
    name: str
    checksum: str
    state: str
    applied: bool
    ledger: dict | None
    checksum_ok: bool | None
    prisma: list[dict] | None  # None: no _prisma_migrations table
    prisma_state: str
    schema_ok: bool
    problems: list[str]

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "checksum": self.checksum,
            "state": self.state,
            "applied": self.applied,
            "ledger": self.ledger,
            "checksumOk": self.checksum_ok,
            "prisma": self.prisma,
            "prismaState": self.prisma_state,
            "schemaOk": self.schema_ok,
            "problems": self.problems,
        }


def status(conn: psycopg.Connection, options: Options) -> list[MigrationStatus]:
    """Both ledgers and the live schema, for every migration. `problems` lists what needs an operator."""
    runner = Runner(conn, options)
    result = []
    if not schema_exists(conn, options.app_schema):
        raise MigrationError(f"application schema {options.app_schema!r} does not exist")
    ours_all = ledger_rows(conn, options.meta_schema, options.app_schema)
    conn.rollback()
    for m in load_migrations():
        ours = ours_all.get(m.name)
        prisma = prisma_rows(conn, options.app_schema, m.name)
        conn.rollback()
        finished = [r for r in (prisma or []) if r.finished]
        failed = [r for r in (prisma or []) if r.failed]
        problems: list[str] = []
        state = "not applied"
        missing_tables = [t for t in m.altered_tables if not table_exists(conn, options.app_schema, t)]
        conn.rollback()
        if missing_tables:
            problems.append(f"application table {options.app_schema}.{missing_tables[0]} does not exist")
            state = "application tables missing"
        else:
            s = runner.schema_state(m)
            if ours is not None:
                state = "applied"
                problems += [d.describe(options.app_schema) for d in s.orm_mismatched + s.extras_mismatched]
            elif finished and s.orm_applied:
                state = "applied by the ORM"
                if s.extras_absent and m.extras_sql:
                    problems.append(
                        f"applied by the ORM ({PRISMA_TABLE} row {finished[-1].id}) but not adopted: csinfra's "
                        f"extras are missing; `csinfra migrate up` adopts it and adds them"
                    )
                elif not s.extras_applied:
                    problems.append(
                        f"applied by the ORM; csinfra's extras differ: "
                        f"{_differences(s.extras_mismatched, options.app_schema)}"
                    )
                else:
                    problems.append(
                        "applied by the ORM, extras present, but the csinfra ledger does not record it; "
                        "`csinfra migrate up` adopts it"
                    )
            elif finished:
                state = "ORM ledger disagrees with the schema"
                problems.append(
                    f"{PRISMA_TABLE} records {m.name} as applied but the schema differs: "
                    f"{_differences(s.orm_mismatched, options.app_schema)}"
                )
            elif not s.orm_absent or not s.extras_absent:
                state = "partially applied"
                problems += [
                    f"{d.kind} {options.app_schema}.{d.name} exists but no ledger records {m.name}"
                    for d in s.orm_present + s.extras_present
                ]
        for row in failed:
            problems.append(
                f"{PRISMA_TABLE} holds a failed attempt of {m.name} (row {row.id}, started {row.started_at:%Y-%m-%d %H:%M:%S}): "
                "`prisma migrate deploy` refuses every later migration (P3009) until it is resolved; "
                "`csinfra migrate up` marks it rolled back (as `prisma migrate resolve --rolled-back` does) and applies "
                f"{m.name}"
            )
        if prisma is not None and ours is not None and not finished:
            problems.append(
                f"the csinfra ledger records {m.name} as applied but {PRISMA_TABLE} does not: "
                "`prisma migrate deploy` would run it again and fail"
            )
        if ours is not None and ours.checksum != m.checksum:
            problems.append(f"checksum changed: ledger {ours.checksum[:12]}…, file {m.checksum[:12]}…")
        # the checksum the ORM's row should carry: the one csinfra recorded (--prisma-migration-file), else migration.sql's
        expected_checksum = (
            ours.prisma_checksum if ours is not None and ours.prisma_checksum else None
        ) or m.checksum
        if prisma is None:
            prisma_state = "no _prisma_migrations table"
        elif finished:
            prisma_state = "applied" + (
                "" if finished[-1].checksum == expected_checksum else " (another file's checksum)"
            )
        elif failed:
            prisma_state = "failed attempt"
        else:
            prisma_state = "pending"
        result.append(
            MigrationStatus(
                name=m.name,
                checksum=m.checksum,
                state=state,
                applied=ours is not None,
                ledger=None
                if ours is None
                else {
                    "appliedAt": ours.applied_at.isoformat(),
                    "appliedBy": ours.applied_by,
                    "durationMs": ours.duration_ms,
                    "checksum": ours.checksum,
                    "extrasChecksum": ours.extras_checksum,
                },
                checksum_ok=None if ours is None else ours.checksum == m.checksum,
                prisma=None if prisma is None else [r.as_dict(expected_checksum) for r in prisma],
                prisma_state=prisma_state,
                schema_ok=not problems,
                problems=problems,
            )
        )
    return result
