"""`csinfra demo-data`: the application's pre-Phase-1 tables, filled deterministically.

Everything is set-based SQL (scripts/demo/*.sql); on tables we create ourselves, keys,
indexes and foreign keys are added after the load, as any bulk loader does.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from .database import project_root
from .errors import CsinfraError
from .schema import APP_TABLES, column_exists, table_exists

DEMO_DIR = project_root() / "scripts" / "demo"
DEMO_BASE_TIME = datetime(2026, 11, 1)
# When Phase 1 went live in the demo story: audit and analytics rows exist only from then on.
PHASE1_LIVE_AT = datetime(2026, 2, 3)
INIT_MIGRATION = "20250101000000_init"
EVENT_TABLES = ("audit_logs", "analytics_events")
PROFILE_VIEWS_PER_CREATOR = 5


@dataclass(frozen=True)
class DemoSummary:
    created_tables: bool
    rows: dict[str, int]
    seconds: float
    events_written: bool = False


def _script(name: str) -> str:
    return (DEMO_DIR / name).read_text()


def generate(
    conn: psycopg.Connection,
    app_schema: str,
    creators: int,
    seed: int = 42,
    reset: bool = False,
    analytics_events: int | None = None,
) -> DemoSummary:
    """Create (when absent) and fill the application tables. Runs in one transaction.

    Where Phase 1 is already applied (its audit_logs and analytics_events tables exist), they are
    filled too, as `generate_events` does."""
    if creators < 1:
        raise CsinfraError("--creators must be at least 1")
    if analytics_events is not None and analytics_events < 0:
        raise CsinfraError("--analytics-events must not be negative")
    started = time.monotonic()
    hosts = max(1, creators // 10)
    with conn.transaction():
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(app_schema)))
        conn.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(app_schema)))
        if reset:
            for table in reversed(APP_TABLES):
                conn.execute(sql.SQL("drop table if exists {} cascade").format(sql.Identifier(app_schema, table)))
        present = [t for t in APP_TABLES if table_exists(conn, app_schema, t)]
        if present and len(present) != len(APP_TABLES):
            missing = sorted(set(APP_TABLES) - set(present))
            raise CsinfraError(
                f"schema {app_schema} has some application tables but not {', '.join(missing)}; "
                "demo-data fills either all of them or none"
            )
        created = not present
        if created:
            conn.execute(_script("app_tables.sql"))
        else:
            for table in APP_TABLES:
                if conn.execute(sql.SQL("select exists (select from {})").format(sql.Identifier(app_schema, table))).fetchone()[0]:
                    raise CsinfraError(
                        f"table {app_schema}.{table} already has rows; demo-data fills empty tables "
                        "(--reset drops and recreates the demo tables)"
                    )
        conn.execute("set local synchronous_commit to off")
        _prepare_session(conn, seed, creators, hosts)
        conn.execute(_script("demo_data.sql"))
        if created:
            conn.execute(_script("app_constraints.sql"))
        if column_exists(conn, app_schema, "offers", "statusHistory"):
            conn.execute(_script("demo_status_history.sql"))
        _record_init_migration(conn)
        events = all(table_exists(conn, app_schema, t) for t in EVENT_TABLES) and column_exists(
            conn, app_schema, "offers", "statusHistory"
        )
        if events:
            _require_empty(conn, app_schema, EVENT_TABLES)
            _write_events(conn, analytics_events)
        tables = APP_TABLES + (EVENT_TABLES if events else ())
        rows = _counts(conn, app_schema, tables)
    _analyze(conn, app_schema, tables)
    return DemoSummary(created_tables=created, rows=rows, seconds=time.monotonic() - started, events_written=events)


def generate_events(
    conn: psycopg.Connection,
    app_schema: str,
    seed: int = 42,
    analytics_events: int | None = None,
) -> DemoSummary:
    """Fill Phase 1's audit_logs and analytics_events with the rows the application would have written
    since Phase 1 went live, consistent with the offers and collaborations already in `app_schema`
    (late, duplicate and missing events included). Offers get the status history the application
    would have written, where they have none. One transaction; the event tables must be empty.

    `analytics_events` sets the total number of analytics rows: profile_viewed events fill up what the
    funnel events leave (default: 5 profile views per creator)."""
    if analytics_events is not None and analytics_events < 0:
        raise CsinfraError("--analytics-events must not be negative")
    started = time.monotonic()
    with conn.transaction():
        conn.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(app_schema)))
        for table in APP_TABLES:
            if not table_exists(conn, app_schema, table):
                raise CsinfraError(f"schema {app_schema} has no {table} table: run `csinfra demo-data` first")
        if not all(table_exists(conn, app_schema, t) for t in EVENT_TABLES) or not column_exists(
            conn, app_schema, "offers", "statusHistory"
        ):
            raise CsinfraError(f"Phase 1 is not applied to schema {app_schema}: run `csinfra migrate up` first")
        _require_empty(conn, app_schema, EVENT_TABLES)
        conn.execute("set local synchronous_commit to off")
        creators = conn.execute('select count(*) from "creator_profiles"').fetchone()[0]
        hosts = conn.execute('select count(*) from "host_profiles"').fetchone()[0]
        if creators == 0 or hosts == 0:
            raise CsinfraError(f"schema {app_schema} has no creators or no hosts: run `csinfra demo-data` first")
        _prepare_session(conn, seed, creators, hosts)
        conn.execute(_script("demo_status_history.sql"))
        _write_events(conn, analytics_events)
        rows = _counts(conn, app_schema, EVENT_TABLES)
    _analyze(conn, app_schema, EVENT_TABLES + ("offers",))
    return DemoSummary(created_tables=False, rows=rows, seconds=time.monotonic() - started, events_written=True)


def _prepare_session(conn: psycopg.Connection, seed: int, creators: int, hosts: int) -> None:
    """The parameters every demo script reads (a temporary table) and their helper functions."""
    conn.execute(
        "create temporary table demo_params on commit drop as "
        "select %s::bigint as seed, %s::bigint as n, %s::bigint as hosts, %s::timestamp(3) as base",
        (seed, creators, hosts, DEMO_BASE_TIME),
    )
    conn.execute(_script("demo_functions.sql"))


def _write_events(conn: psycopg.Connection, analytics_events: int | None) -> None:
    """Runs the event scripts; expects demo_params and the search_path set."""
    conn.execute(
        "create temporary table demo_event_params on commit drop as "
        "select %s::timestamp(3) as live_at, 0::bigint as profile_views",
        (PHASE1_LIVE_AT,),
    )
    conn.execute(_script("demo_events.sql"))
    if analytics_events is None:
        views = PROFILE_VIEWS_PER_CREATOR * conn.execute("select n from demo_params").fetchone()[0]
    else:
        funnel = conn.execute('select count(*) from "analytics_events"').fetchone()[0]
        if analytics_events < funnel:
            raise CsinfraError(
                f"--analytics-events {analytics_events:,} is below the {funnel:,} funnel events this data implies"
            )
        views = analytics_events - funnel
    conn.execute("update demo_event_params set profile_views = %s", (views,))
    conn.execute(_script("demo_profile_views.sql"))


def _require_empty(conn: psycopg.Connection, app_schema: str, tables: tuple[str, ...]) -> None:
    for table in tables:
        if conn.execute(sql.SQL("select exists (select from {})").format(sql.Identifier(app_schema, table))).fetchone()[0]:
            raise CsinfraError(f"table {app_schema}.{table} already has rows; demo events fill empty event tables")


def _counts(conn: psycopg.Connection, app_schema: str, tables: tuple[str, ...]) -> dict[str, int]:
    return {
        t: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(app_schema, t))).fetchone()[0]
        for t in tables
    }


def _analyze(conn: psycopg.Connection, app_schema: str, tables: tuple[str, ...]) -> None:
    with conn.transaction():
        for table in tables:
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier(app_schema, table)))


def _record_init_migration(conn: psycopg.Connection) -> None:
    """The ORM's ledger, with the migration that created the tables (as `prisma migrate deploy` would)."""
    conn.execute(_script("prisma_ledger.sql"))
    checksum = hashlib.sha256((_script("app_tables.sql") + _script("app_constraints.sql")).encode()).hexdigest()
    conn.execute(
        """
        insert into "_prisma_migrations"
            (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
        select gen_random_uuid()::text, %s, now(), %s, now(), 1
        where not exists (select from "_prisma_migrations" where migration_name = %s)
        """,
        (checksum, INIT_MIGRATION, INIT_MIGRATION),
    )
