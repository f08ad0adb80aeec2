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
INIT_MIGRATION = "20250101000000_init"


@dataclass(frozen=True)
class DemoSummary:
    created_tables: bool
    rows: dict[str, int]
    seconds: float


def _script(name: str) -> str:
    return (DEMO_DIR / name).read_text()


def generate(
    conn: psycopg.Connection,
    app_schema: str,
    creators: int,
    seed: int = 42,
    reset: bool = False,
) -> DemoSummary:
    """Create (when absent) and fill the application tables. Runs in one transaction."""
    if creators < 1:
        raise CsinfraError("--creators must be at least 1")
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
        conn.execute(
            "create temporary table demo_params on commit drop as "
            "select %s::bigint as seed, %s::bigint as n, %s::bigint as hosts, %s::timestamp(3) as base",
            (seed, creators, hosts, DEMO_BASE_TIME),
        )
        conn.execute(_script("demo_data.sql"))
        if created:
            conn.execute(_script("app_constraints.sql"))
        if column_exists(conn, app_schema, "offers", "statusHistory"):
            conn.execute(_script("demo_status_history.sql"))
        _record_init_migration(conn)
        rows = {
            t: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(app_schema, t))).fetchone()[0]
            for t in APP_TABLES
        }
    with conn.transaction():
        for table in APP_TABLES:
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier(app_schema, table)))
    return DemoSummary(created_tables=created, rows=rows, seconds=time.monotonic() - started)


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
