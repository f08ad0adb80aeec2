"""Applying and rolling back migrations on a live database.

Model (after Sqitch/Flyway, with squawk's safety rules):

* each migration is a folder under scripts/migrations/ with `migration.sql` (up, shipped byte for
  byte to the application repository as a Prisma migration) and `down.sql`;
* a step (up or down) is ONE transaction: the file, the ledger rows and, for a rollback, the
  archive of the dropped tables' rows commit together or not at all;
* every statement runs under `lock_timeout` and `statement_timeout` (SET LOCAL); a lock timeout
  rolls the step back and retries it with exponential backoff, then fails cleanly;
* a session-level advisory lock keeps two runners apart (the second waits, then sees the work done);
* the project's ledger (csinfra_meta.schema_migrations + migration_log) records name, checksum,
  when, by whom and how long; an applied file whose checksum changed stops every step;
* where the ORM's `_prisma_migrations` exists, `up` records the migration the way
  `prisma migrate deploy` would and `down` removes that record.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from . import catalog, settings
from .database import project_root
from .errors import LockTimeout, MigrationError
from .schema import schema_exists, table_exists

MIGRATIONS_DIR = project_root() / "scripts" / "migrations"
PRISMA_TABLE = "_prisma_migrations"
# Tables whose rows a rollback archives before dropping them.
ARCHIVED_TABLES = ("audit_logs", "analytics_events")
ADVISORY_NAMESPACE = "csinfra.migrate"


@dataclass(frozen=True)
class Migration:
    name: str
    up_sql: str
    down_sql: str

    @property
    def checksum(self) -> str:
        """sha256 hex of migration.sql, exactly what Prisma stores in `_prisma_migrations.checksum`."""
        return hashlib.sha256(self.up_sql.encode("utf-8")).hexdigest()

    @property
    def altered_tables(self) -> dict[str, list[str]]:
        """Existing application tables the up file alters (parsed from its ALTER TABLE lines)."""
        tables: dict[str, list[str]] = {}
        for line in self.up_sql.splitlines():
            if line.startswith('ALTER TABLE "'):
                tables.setdefault(line.split('"')[1], ["id"])
        return tables


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
        up, down = folder / "migration.sql", folder / "down.sql"
        if not up.exists() or not down.exists():
            raise MigrationError(f"migration folder {folder} needs both migration.sql and down.sql")
        migrations.append(
            Migration(name=folder.name, up_sql=up.read_bytes().decode("utf-8"), down_sql=down.read_bytes().decode("utf-8"))
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
    meta_schema: str = field(default_factory=settings.meta_schema)
    archive_schema: str = field(default_factory=settings.archive_schema)


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


def ensure_ledger(conn: psycopg.Connection, meta_schema: str) -> None:
    conn.execute(sql.SQL(LEDGER_DDL).format(meta=sql.Identifier(meta_schema)))


@dataclass(frozen=True)
class LedgerRow:
    name: str
    checksum: str
    applied_at: datetime
    applied_by: str
    duration_ms: int
    prisma_migration_id: str | None


def ledger_rows(conn: psycopg.Connection, meta_schema: str, app_schema: str) -> dict[str, LedgerRow]:
    if not table_exists(conn, meta_schema, "schema_migrations"):
        return {}
    rows = conn.execute(
        sql.SQL(
            "select name, checksum, applied_at, applied_by, duration_ms, prisma_migration_id "
            "from {} where app_schema = %s"
        ).format(sql.Identifier(meta_schema, "schema_migrations")),
        (app_schema,),
    ).fetchall()
    return {r[0]: LedgerRow(*r) for r in rows}


@dataclass(frozen=True)
class PrismaRow:
    id: str
    checksum: str
    finished_at: datetime | None
    rolled_back_at: datetime | None


def prisma_rows(conn: psycopg.Connection, app_schema: str, name: str) -> list[PrismaRow] | None:
    """Rows of the ORM's ledger for `name`; None when the ORM's ledger table does not exist."""
    if not table_exists(conn, app_schema, PRISMA_TABLE):
        return None
    rows = conn.execute(
        sql.SQL(
            "select id, checksum, finished_at, rolled_back_at from {} where migration_name = %s order by started_at"
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


# -- runner -------------------------------------------------------------------------------------
class Runner:
    def __init__(self, conn: psycopg.Connection, options: Options, log: Log = _noop):
        if conn.autocommit:
            raise MigrationError("the migration runner needs a connection without autocommit")
        self.conn = conn
        self.o = options
        self.log = log

    # advisory lock ---------------------------------------------------------------------------
    def _lock_key(self) -> tuple[int, int]:
        row = self.conn.execute("select hashtext(%s), hashtext(%s)", (ADVISORY_NAMESPACE, self.o.app_schema)).fetchone()
        self.conn.rollback()
        return int(row[0]), int(row[1])

    def acquire(self) -> None:
        k1, k2 = self._lock_key()
        deadline = time.monotonic() + self.o.lock_wait_seconds
        announced = False
        while True:
            got = self.conn.execute("select pg_try_advisory_lock(%s, %s)", (k1, k2)).fetchone()[0]
            self.conn.commit()
            if got:
                return
            holder = self.conn.execute(
                "select pid from pg_locks where locktype = 'advisory' and objsubid = 2 "
                "and classid = %s::bigint::oid and objid = %s::bigint::oid and granted",
                (k1 & 0xFFFFFFFF, k2 & 0xFFFFFFFF),
            ).fetchone()
            self.conn.commit()
            if not announced:
                self.log(f"another migration runner holds the lock (pid {holder[0] if holder else '?'}); waiting")
                announced = True
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"another migration runner (pid {holder[0] if holder else '?'}) held the migration lock "
                    f"for more than {self.o.lock_wait_seconds:g}s; nothing changed"
                )
            time.sleep(0.2)

    def release(self) -> None:
        k1, k2 = self._lock_key()
        self.conn.execute("select pg_advisory_unlock(%s, %s)", (k1, k2))
        self.conn.commit()

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
        if row is not None and row.checksum != m.checksum:
            raise MigrationError(
                f"{m.name} was applied with checksum {row.checksum[:12]}… but "
                f"scripts/migrations/{m.name}/migration.sql now has {m.checksum[:12]}…; "
                "an applied migration must not change (write a new migration instead)"
            )

    def expected(self, m: Migration) -> dict[str, str]:
        return catalog.expected_objects(self.conn, m.up_sql, m.altered_tables)

    def schema_problems(self, m: Migration, applied: bool) -> list[str]:
        """What in the application schema disagrees with `applied` (as the ledger claims)."""
        expected = self.expected(m)
        actual = catalog.catalog_objects(self.conn, self.o.app_schema)
        self.conn.rollback()
        if applied:
            return [d.describe(self.o.app_schema) for d in catalog.compare(expected, actual)]
        return [f"{d.kind} {self.o.app_schema}.{d.name} exists but the ledger says {m.name} is not applied"
                for d in catalog.present(expected, actual)]

    # up ---------------------------------------------------------------------------------------
    def up(self, m: Migration) -> StepResult:
        self._check_app_schema(m)
        ours = ledger_rows(self.conn, self.o.meta_schema, self.o.app_schema).get(m.name)
        self._check_checksum(m, ours)
        prisma = prisma_rows(self.conn, self.o.app_schema, m.name)
        self.conn.rollback()
        if ours is not None:
            return StepResult(m.name, "already applied")

        expected = self.expected(m)
        actual = catalog.catalog_objects(self.conn, self.o.app_schema)
        self.conn.rollback()
        existing = catalog.present(expected, actual)
        prisma_done = [r for r in (prisma or []) if r.finished_at and not r.rolled_back_at]
        if existing:
            mismatched = catalog.compare(expected, actual)
            if not mismatched and prisma_done and prisma_done[-1].checksum == m.checksum:
                return self._adopt(m, prisma_done[-1])
            first = existing[0]
            if first.actual != first.expected:
                raise MigrationError(
                    f"{first.kind} {self.o.app_schema}.{first.name} already exists as {first.actual!r}; "
                    f"{m.name} creates it as {first.expected!r}; nothing changed"
                )
            raise MigrationError(
                f"{first.kind} {self.o.app_schema}.{first.name} already exists but the ledger does not record "
                f"{m.name} ({len(existing)} of its {len(expected)} objects are present); nothing changed"
            )
        if prisma_done:
            raise MigrationError(
                f"{PRISMA_TABLE} records {m.name} as applied but its objects are absent; "
                "resolve the ORM's ledger first; nothing changed"
            )

        def body(cur_conn: psycopg.Connection, started: datetime, t0: float) -> StepResult:
            cur_conn.execute(m.up_sql)
            ensure_ledger(cur_conn, self.o.meta_schema)
            prisma_id = self._prisma_record(cur_conn, m, started) if prisma is not None else None
            duration = int((time.monotonic() - t0) * 1000)
            by = executed_by(cur_conn)
            cur_conn.execute(
                sql.SQL(
                    "insert into {} (app_schema, name, checksum, applied_by, duration_ms, prisma_migration_id) "
                    "values (%s, %s, %s, %s, %s, %s)"
                ).format(sql.Identifier(self.o.meta_schema, "schema_migrations")),
                (self.o.app_schema, m.name, m.checksum, by, duration, prisma_id),
            )
            self._log_row(cur_conn, m, "up", started, duration, by, {"prisma_migration_id": prisma_id})
            return StepResult(m.name, "applied", duration_ms=duration,
                              prisma="recorded" if prisma_id else "no _prisma_migrations table")

        if self.o.dry_run:
            return StepResult(m.name, "dry run", sql=self._dry_run_script(m, "up", prisma is not None))
        return self._transaction(body, tables=list(m.altered_tables))

    def _adopt(self, m: Migration, prisma: PrismaRow) -> StepResult:
        """The ORM applied this migration already: record it in our ledger without running it."""
        if self.o.dry_run:
            return StepResult(m.name, "dry run", sql=f"-- {m.name} was applied by the ORM; only the csinfra ledger would be written\n")

        def body(c: psycopg.Connection, started: datetime, t0: float) -> StepResult:
            ensure_ledger(c, self.o.meta_schema)
            by = executed_by(c)
            c.execute(
                sql.SQL(
                    "insert into {} (app_schema, name, checksum, applied_by, duration_ms, prisma_migration_id) "
                    "values (%s, %s, %s, %s, 0, %s)"
                ).format(sql.Identifier(self.o.meta_schema, "schema_migrations")),
                (self.o.app_schema, m.name, m.checksum, by, prisma.id),
            )
            self._log_row(c, m, "adopt", started, 0, by, {"prisma_migration_id": prisma.id})
            return StepResult(m.name, "adopted", prisma="already recorded by the ORM")

        return self._transaction(body, tables=[])

    def _prisma_record(self, c: psycopg.Connection, m: Migration, started: datetime) -> str:
        """Record the migration as `prisma migrate deploy` does: one finished row, one applied step."""
        row = c.execute(
            sql.SQL(
                "insert into {} (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count) "
                "values (gen_random_uuid()::text, %s, clock_timestamp(), %s, null, null, %s, 1) returning id"
            ).format(sql.Identifier(self.o.app_schema, PRISMA_TABLE)),
            (m.checksum, m.name, started),
        ).fetchone()
        return row[0]

    def _log_row(self, c, m: Migration, action: str, started: datetime, duration: int, by: str, details: dict) -> None:
        c.execute(
            sql.SQL(
                "insert into {} (app_schema, name, action, checksum, started_at, duration_ms, executed_by, details) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s)"
            ).format(sql.Identifier(self.o.meta_schema, "migration_log")),
            (self.o.app_schema, m.name, action, m.checksum, started, duration, by, json.dumps(details)),
        )

    # down -------------------------------------------------------------------------------------
    def down(self, m: Migration) -> StepResult:
        self._check_app_schema(m)
        ours = ledger_rows(self.conn, self.o.meta_schema, self.o.app_schema).get(m.name)
        self._check_checksum(m, ours)
        prisma = prisma_rows(self.conn, self.o.app_schema, m.name)
        self.conn.rollback()
        prisma_done = [r for r in (prisma or []) if r.finished_at and not r.rolled_back_at]
        if ours is None and not prisma_done:
            return StepResult(m.name, "not applied")
        problems = self.schema_problems(m, applied=True)
        if problems:
            raise MigrationError(
                f"cannot roll back {m.name}: the schema does not match it ({problems[0]}"
                f"{f' and {len(problems) - 1} more' if len(problems) > 1 else ''}); nothing changed"
            )
        archive_id = "r" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "_" + hashlib.sha256(
            f"{time.time_ns()}{random.random()}".encode()).hexdigest()[:6]

        def body(c: psycopg.Connection, started: datetime, t0: float) -> StepResult:
            archived: dict[str, int] = {}
            # Writers wait (readers do not) from here on, so no row lands after the copy.
            c.execute(
                sql.SQL("lock table {} in exclusive mode").format(
                    sql.SQL(", ").join(sql.Identifier(self.o.app_schema, t) for t in ARCHIVED_TABLES)
                )
            )
            counts = {
                t: c.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(self.o.app_schema, t))).fetchone()[0]
                for t in ARCHIVED_TABLES
            }
            if not self.o.discard_data:
                archived = self._archive(c, m, archive_id, started)
            c.execute(m.down_sql)
            if prisma is not None:
                c.execute(
                    sql.SQL("delete from {} where migration_name = %s").format(sql.Identifier(self.o.app_schema, PRISMA_TABLE)),
                    (m.name,),
                )
            ensure_ledger(c, self.o.meta_schema)
            c.execute(
                sql.SQL("delete from {} where app_schema = %s and name = %s").format(
                    sql.Identifier(self.o.meta_schema, "schema_migrations")),
                (self.o.app_schema, m.name),
            )
            duration = int((time.monotonic() - t0) * 1000)
            details = {"archive_id": archive_id if archived else None, "archived_rows": archived,
                       "discarded_rows": counts if self.o.discard_data else {}}
            self._log_row(c, m, "down", started, duration, executed_by(c), details)
            return StepResult(m.name, "rolled back", duration_ms=duration,
                              archive_id=archive_id if not self.o.discard_data else None,
                              archived_rows=archived if not self.o.discard_data else counts,
                              prisma="record removed" if prisma is not None else "no _prisma_migrations table")

        if self.o.dry_run:
            return StepResult(m.name, "dry run", sql=self._dry_run_script(m, "down", prisma is not None, archive_id))
        return self._transaction(body, tables=[*m.altered_tables, *ARCHIVED_TABLES])

    def _archive(self, c: psycopg.Connection, m: Migration, archive_id: str, started: datetime) -> dict[str, int]:
        c.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(self.o.archive_schema)))
        ensure_ledger(c, self.o.meta_schema)
        tables: dict[str, dict] = {}
        for t in ARCHIVED_TABLES:
            archive_table = f"{archive_id}__{t}"
            rows = c.execute(
                sql.SQL("create table {} as table {}").format(
                    sql.Identifier(self.o.archive_schema, archive_table), sql.Identifier(self.o.app_schema, t)
                )
            ).rowcount
            tables[t] = {"archive_table": f"{self.o.archive_schema}.{archive_table}", "rows": rows}
        c.execute(
            sql.SQL("insert into {} (archive_id, app_schema, name, tables) values (%s, %s, %s, %s)").format(
                sql.Identifier(self.o.meta_schema, "rollback_archives")),
            (archive_id, self.o.app_schema, m.name, json.dumps(tables)),
        )
        return {t: v["rows"] for t, v in tables.items()}

    # the one transaction, with timeouts and retries -------------------------------------------
    def _transaction(self, body, tables: list[str]) -> StepResult:
        attempt = 0
        while True:
            attempt += 1
            started = datetime.now(UTC)
            t0 = time.monotonic()
            try:
                with self.conn.transaction():
                    self._set_local(self.conn)
                    result = body(self.conn, started, t0)
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
                self.log(f"lock timeout (attempt {attempt}/{self.o.retries + 1}){holders}; retrying in {delay:.1f}s")
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

    def _set_local(self, c: psycopg.Connection) -> None:
        c.execute("select set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                  (self.o.lock_timeout, self.o.statement_timeout))
        c.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(self.o.app_schema)))

    def _lock_holders(self, tables: list[str]) -> str:
        try:
            rows = self.conn.execute(
                """
                select l.pid, l.mode, c.relname, a.state, extract(epoch from now() - a.xact_start)::int
                from pg_locks l
                join pg_class c on c.oid = l.relation
                join pg_namespace n on n.oid = c.relnamespace
                left join pg_stat_activity a on a.pid = l.pid
                where n.nspname = %s and c.relname = any(%s) and l.granted and l.pid <> pg_backend_pid()
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
        parts = [f"pid {pid} holds {mode} on {rel} ({state}, transaction open {age}s)" for pid, mode, rel, state, age in rows]
        return "; " + "; ".join(parts)

    # dry run ---------------------------------------------------------------------------------
    def _dry_run_script(self, m: Migration, direction: str, prisma: bool, archive_id: str | None = None) -> str:
        q = lambda s: sql.Literal(s).as_string(self.conn)
        app = sql.Identifier(self.o.app_schema).as_string(self.conn)
        meta = sql.Identifier(self.o.meta_schema).as_string(self.conn)
        lines = [
            f"-- csinfra migrate {direction} {m.name} (dry run: nothing was executed)",
            "BEGIN;",
            f"SET LOCAL lock_timeout = {q(self.o.lock_timeout)};",
            f"SET LOCAL statement_timeout = {q(self.o.statement_timeout)};",
            f"SET LOCAL search_path TO {app};",
        ]
        if direction == "up":
            lines += [f"-- scripts/migrations/{m.name}/migration.sql (sha256 {m.checksum})", m.up_sql.rstrip()]
            lines.append(f"-- ledger: create {meta}.schema_migrations/migration_log if absent, then")
            lines.append(f"INSERT INTO {meta}.schema_migrations (app_schema, name, checksum, …) VALUES ({q(self.o.app_schema)}, {q(m.name)}, {q(m.checksum)}, …);")
            if prisma:
                lines.append(f"INSERT INTO {app}.\"{PRISMA_TABLE}\" (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES (gen_random_uuid(), {q(m.checksum)}, now(), {q(m.name)}, now(), 1);")
        else:
            tables = ", ".join(f"{app}.{sql.Identifier(t).as_string(self.conn)}" for t in ARCHIVED_TABLES)
            lines.append(f"LOCK TABLE {tables} IN EXCLUSIVE MODE;")
            if self.o.discard_data:
                lines.append("-- --discard-data: the rows of these tables are NOT archived")
            else:
                archive = sql.Identifier(self.o.archive_schema).as_string(self.conn)
                for t in ARCHIVED_TABLES:
                    lines.append(f"CREATE TABLE {archive}.\"{archive_id}__{t}\" AS TABLE {app}.\"{t}\";")
            lines += [f"-- scripts/migrations/{m.name}/down.sql", m.down_sql.rstrip()]
            if prisma:
                lines.append(f"DELETE FROM {app}.\"{PRISMA_TABLE}\" WHERE migration_name = {q(m.name)};")
            lines.append(f"DELETE FROM {meta}.schema_migrations WHERE app_schema = {q(self.o.app_schema)} AND name = {q(m.name)};")
        lines.append("COMMIT;")
        return "\n".join(lines) + "\n"


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
        sql.SQL("select archive_id, app_schema, name, created_at, tables, restored_at from {} order by created_at").format(
            sql.Identifier(meta_schema, "rollback_archives"))
    ).fetchall()
    return [Archive(*r) for r in rows]


def restore_archive(conn: psycopg.Connection, options: Options, archive_id: str) -> dict[str, int]:
    """Copy an archive's rows back into the (re-applied) Phase 1 tables; rows already present are kept."""
    archives = {a.archive_id: a for a in list_archives(conn, options.meta_schema)}
    conn.rollback()
    if archive_id not in archives:
        raise MigrationError(f"no rollback archive {archive_id!r} (see `csinfra migrate archives`)")
    archive = archives[archive_id]
    restored: dict[str, int] = {}
    with conn.transaction():
        conn.execute("select set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                     (options.lock_timeout, options.statement_timeout))
        for table, info in archive.tables.items():
            if not table_exists(conn, archive.app_schema, table):
                raise MigrationError(
                    f"{archive.app_schema}.{table} does not exist: apply the migration (`csinfra migrate up`) "
                    "before restoring its archived rows"
                )
            src_schema, src_table = info["archive_table"].split(".", 1)
            cols = [r[0] for r in conn.execute(
                "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
                (sql.Identifier(src_schema, src_table).as_string(conn),),
            ).fetchall()]
            col_list = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
            restored[table] = conn.execute(
                sql.SQL("insert into {} ({}) select {} from {} on conflict (id) do nothing").format(
                    sql.Identifier(archive.app_schema, table), col_list, col_list, sql.Identifier(src_schema, src_table)
                )
            ).rowcount
        conn.execute(
            sql.SQL("update {} set restored_at = now() where archive_id = %s").format(
                sql.Identifier(options.meta_schema, "rollback_archives")),
            (archive_id,),
        )
    return restored


# -- status -------------------------------------------------------------------------------------
@dataclass
class MigrationStatus:
    name: str
    checksum: str
    applied: bool
    ledger: dict | None
    checksum_ok: bool | None
    prisma: list[dict] | None  # None: no _prisma_migrations table
    schema_ok: bool
    problems: list[str]

    def as_dict(self) -> dict:
        return {
            "name": self.name, "checksum": self.checksum, "applied": self.applied, "ledger": self.ledger,
            "checksumOk": self.checksum_ok, "prisma": self.prisma, "schemaOk": self.schema_ok, "problems": self.problems,
        }


def status(conn: psycopg.Connection, options: Options) -> list[MigrationStatus]:
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
        problems: list[str] = []
        missing_tables = [t for t in m.altered_tables if not table_exists(conn, options.app_schema, t)]
        conn.rollback()
        if missing_tables:
            problems.append(f"application table {options.app_schema}.{missing_tables[0]} does not exist")
        else:
            problems += runner.schema_problems(m, applied=ours is not None)
        prisma_done = [r for r in (prisma or []) if r.finished_at and not r.rolled_back_at]
        if prisma is not None and (ours is not None) != bool(prisma_done):
            problems.append(
                f"{PRISMA_TABLE} {'records' if prisma_done else 'does not record'} {m.name} as applied "
                f"but the csinfra ledger {'does not' if ours is None else 'does'}"
            )
        if ours is not None and ours.checksum != m.checksum:
            problems.append(f"checksum changed: ledger {ours.checksum[:12]}…, file {m.checksum[:12]}…")
        result.append(MigrationStatus(
            name=m.name,
            checksum=m.checksum,
            applied=ours is not None,
            ledger=None if ours is None else {
                "appliedAt": ours.applied_at.isoformat(), "appliedBy": ours.applied_by,
                "durationMs": ours.duration_ms, "checksum": ours.checksum,
            },
            checksum_ok=None if ours is None else ours.checksum == m.checksum,
            prisma=None if prisma is None else [
                {"id": r.id, "checksum": r.checksum, "finishedAt": r.finished_at.isoformat() if r.finished_at else None,
                 "rolledBackAt": r.rolled_back_at.isoformat() if r.rolled_back_at else None,
                 "checksumOk": r.checksum == m.checksum}
                for r in prisma
            ],
            schema_ok=not problems,
            problems=problems,
        ))
    return result
