"""`csinfra demo-data`: the application's pre-Phase-1 tables, filled deterministically.

The tables are created from `scripts/app_schema/pre_phase1.sql`, the application's real schema
(every column, key, index and foreign key, and the ORM's ledger with the migrations applied before
Phase 1), so demo databases and test databases look exactly like production. For a fast bulk
load, the keys, indexes and foreign keys that file creates are read back from the catalog,
dropped, and recreated from those very definitions after the load: the result is identical to
running the file as it is (a test compares the two with pg_dump).

Everything is set-based SQL (scripts/demo/*.sql). Demo data marks the database as its own
(`csinfra_meta.demo_data`); the destructive options (`--reset`, `--events-only`) work only on
the embedded server or on a database so marked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from .. import settings
from ..errors import CsinfraError
from .catalog import APP_TABLES, column_exists, table_exists
from .database import project_root

DEMO_DIR = project_root() / "scripts" / "demo"
APP_SCHEMA_FILE = project_root() / "scripts" / "app_schema" / "pre_phase1.sql"
DEMO_BASE_TIME = datetime(2026, 11, 1)
# When Phase 1 went live in the demo story: audit and analytics rows exist only from then on.
PHASE1_LIVE_AT = datetime(2026, 2, 3)
EVENT_TABLES = ("audit_logs", "analytics_events")
PROFILE_VIEWS_PER_CREATOR = 5
# What pre_phase1.sql creates besides APP_TABLES, and what Phase 1 adds: all dropped by --reset.
OTHER_APP_TABLES = ("_prisma_migrations", "audit_logs", "analytics_events")
APP_TYPES = ("Vertical", "TrustTier", "ReadinessState")
APP_FUNCTIONS = ("audit_logs_append_only", "offers_guard_terms_and_history")
MARKER_TABLE = "demo_data"


@dataclass(frozen=True)
class DemoSummary:
    created_tables: bool
    rows: dict[str, int]
    seconds: float
    events_written: bool = False


def _script(name: str) -> str:
    return (DEMO_DIR / name).read_text()


def app_schema_sql() -> str:
    """The application's pre-Phase-1 schema, exactly as production has it."""
    return APP_SCHEMA_FILE.read_text()


# -- whose database is this? -----------------------------------------------------------------------
def _marker(conn: psycopg.Connection, app_schema: str) -> bool:
    meta = settings.meta_schema()
    if not table_exists(conn, meta, MARKER_TABLE):
        return False
    return bool(
        conn.execute(
            sql.SQL("select exists (select from {} where app_schema = %s)").format(
                sql.Identifier(meta, MARKER_TABLE)
            ),
            (app_schema,),
        ).fetchone()[0]
    )


def _write_marker(conn: psycopg.Connection, app_schema: str, seed: int, creators: int) -> None:
    meta = settings.meta_schema()
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(meta)))
    conn.execute(
        sql.SQL(
            "create table if not exists {} (app_schema text primary key, created_at timestamptz not null default now(), "
            "seed bigint not null, creators bigint not null)"
        ).format(sql.Identifier(meta, MARKER_TABLE))
    )
    conn.execute(
        sql.SQL(
            "insert into {} (app_schema, seed, creators) values (%s, %s, %s) "
            "on conflict (app_schema) do update set created_at = now(), seed = excluded.seed, creators = excluded.creators"
        ).format(sql.Identifier(meta, MARKER_TABLE)),
        (app_schema, seed, creators),
    )


def require_ours(
    conn: psycopg.Connection, app_schema: str, *, embedded: bool, confirm_database: str | None, what: str
) -> None:
    """Refuse `what` unless this is the embedded server, a database demo data filled, or the operator
    named the database explicitly (`--confirm-database NAME`)."""
    database = conn.execute("select current_database()").fetchone()[0]
    if embedded or _marker(conn, app_schema):
        return
    if confirm_database is not None:
        if confirm_database == database:
            return
        raise CsinfraError(
            f"--confirm-database {confirm_database!r} does not name this database ({database!r}); nothing changed"
        )
    raise CsinfraError(
        f"refusing to {what} in database {database!r} (schema {app_schema}): it is not the embedded server and "
        f"csinfra demo-data did not create its application tables (no {settings.meta_schema()}.{MARKER_TABLE} row); "
        f"if this really is a scratch database, pass --confirm-database {database}"
    )


def _other_app_schemas(conn: psycopg.Connection, app_schema: str) -> list[str]:
    """Application schemas other than `app_schema` that csinfra's own schemas hold ledgers or archives for."""
    meta = settings.meta_schema()
    found: set[str] = set()
    for table in ("schema_migrations", "rollback_archives", MARKER_TABLE):
        if table_exists(conn, meta, table):
            found |= {
                r[0]
                for r in conn.execute(
                    sql.SQL("select distinct app_schema from {} where app_schema <> %s").format(
                        sql.Identifier(meta, table)
                    ),
                    (app_schema,),
                )
            }
    return sorted(found)


def reset(conn: psycopg.Connection, app_schema: str) -> None:
    """Drop everything demo data and Phase 1 created in `app_schema`, and the project's own schemas (refused
    when they also serve other application schemas). Runs inside the caller's transaction; the caller has
    checked `require_ours`."""
    others = _other_app_schemas(conn, app_schema)
    if others:
        raise CsinfraError(
            f"--reset would drop {settings.meta_schema()} and {settings.archive_schema()}, which also hold the ledgers or "
            f"rollback archives of schema(s) {', '.join(others)}; nothing changed"
        )
    for table in (*OTHER_APP_TABLES, *reversed(APP_TABLES)):
        conn.execute(sql.SQL("drop table if exists {} cascade").format(sql.Identifier(app_schema, table)))
    for function in APP_FUNCTIONS:
        conn.execute(
            sql.SQL("drop function if exists {}() cascade").format(sql.Identifier(app_schema, function))
        )
    for type_ in APP_TYPES:
        conn.execute(sql.SQL("drop type if exists {} cascade").format(sql.Identifier(app_schema, type_)))
    for schema in (settings.dbt_schema(), settings.meta_schema(), settings.archive_schema()):
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


# -- the load --------------------------------------------------------------------------------------------
def generate(
    conn: psycopg.Connection,
    app_schema: str,
    creators: int,
    seed: int = 42,
    reset_first: bool = False,
    analytics_events: int | None = None,
    *,
    embedded: bool = False,
    confirm_database: str | None = None,
) -> DemoSummary:
    """Create (when absent) and fill the application tables. Runs in one transaction.

    Where Phase 1 is already applied (its audit_logs and analytics_events tables exist), they are
    filled too, as `generate_events` does. `reset_first` drops the tables first, only on the embedded
    server (`embedded`) or a database demo data created (or named by `confirm_database`)."""
    if creators < 1:
        raise CsinfraError("--creators must be at least 1")
    if analytics_events is not None and analytics_events < 0:
        raise CsinfraError("--analytics-events must not be negative")
    started = time.monotonic()
    hosts = max(1, creators // 10)
    with conn.transaction():
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(app_schema)))
        conn.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(app_schema)))
        if reset_first:
            require_ours(
                conn,
                app_schema,
                embedded=embedded,
                confirm_database=confirm_database,
                what="drop the application tables (--reset)",
            )
            reset(conn, app_schema)
        present = [t for t in APP_TABLES if table_exists(conn, app_schema, t)]
        if present and len(present) != len(APP_TABLES):
            missing = sorted(set(APP_TABLES) - set(present))
            raise CsinfraError(
                f"schema {app_schema} has some application tables but not {', '.join(missing)}; "
                "demo-data fills either all of them or none"
            )
        created = not present
        if created:
            conn.execute(app_schema_sql())
            recreate = _defer_keys_and_indexes(conn, app_schema)
        else:
            recreate = []
            for table in APP_TABLES:
                if conn.execute(
                    sql.SQL("select exists (select from {})").format(sql.Identifier(app_schema, table))
                ).fetchone()[0]:
                    raise CsinfraError(
                        f"table {app_schema}.{table} already has rows; demo-data fills empty tables "
                        "(--reset drops and recreates the demo tables)"
                    )
        conn.execute("set local synchronous_commit to off")
        _prepare_session(conn, seed, creators, hosts)
        conn.execute(_script("demo_data.sql"))
        for statement in recreate:
            conn.execute(statement)
        if column_exists(conn, app_schema, "offers", "statusHistory"):
            conn.execute(_script("demo_status_history.sql"))
        if created:  # only tables demo data created itself are marked as its own
            _write_marker(conn, app_schema, seed, creators)
        events = all(table_exists(conn, app_schema, t) for t in EVENT_TABLES) and column_exists(
            conn, app_schema, "offers", "statusHistory"
        )
        if events:
            _require_empty(conn, app_schema, EVENT_TABLES)
            _write_events(conn, analytics_events)
        tables = APP_TABLES + (EVENT_TABLES if events else ())
        rows = _counts(conn, app_schema, tables)
    _analyze(conn, app_schema, tables)
    return DemoSummary(
        created_tables=created, rows=rows, seconds=time.monotonic() - started, events_written=events
    )


def _defer_keys_and_indexes(conn: psycopg.Connection, app_schema: str) -> list[sql.Composed]:
    """Drop the keys, indexes and foreign keys of the (empty) application tables and return the
    statements that recreate them exactly, from the catalog's own definitions: keys first, then
    indexes, then foreign keys (which need the keys)."""
    tables = list(APP_TABLES)
    constraints = conn.execute(
        """
        select cl.relname, con.conname, con.contype, pg_get_constraintdef(con.oid)
        from pg_constraint con
        join pg_class cl on cl.oid = con.conrelid
        join pg_namespace n on n.oid = cl.relnamespace
        where n.nspname = %s and cl.relname = any(%s) and con.contype in ('p', 'u', 'f')
        order by con.contype = 'f', cl.relname, con.conname
        """,
        (app_schema, tables),
    ).fetchall()
    indexes = conn.execute(
        """
        select i.relname, pg_get_indexdef(i.oid)
        from pg_index x
        join pg_class i on i.oid = x.indexrelid
        join pg_class t on t.oid = x.indrelid
        join pg_namespace n on n.oid = t.relnamespace
        where n.nspname = %s and t.relname = any(%s)
          and not exists (select from pg_constraint c where c.conindid = x.indexrelid and c.conrelid = x.indrelid)
        order by i.relname
        """,
        (app_schema, tables),
    ).fetchall()
    keys = [c for c in constraints if c[2] != "f"]
    foreign = [c for c in constraints if c[2] == "f"]
    for table, name, _, _ in foreign + keys:
        conn.execute(
            sql.SQL("alter table {} drop constraint {}").format(
                sql.Identifier(app_schema, table), sql.Identifier(name)
            )
        )
    for name, _ in indexes:
        conn.execute(sql.SQL("drop index {}").format(sql.Identifier(app_schema, name)))

    def add(table: str, name: str, definition: str) -> sql.Composed:
        # `definition` is the catalog's own text (pg_get_constraintdef), not input
        return sql.SQL("alter table {} add constraint {} ").format(
            sql.Identifier(app_schema, table), sql.Identifier(name)
        ) + sql.SQL(definition)

    return (
        [add(t, n, d) for t, n, _, d in keys]
        + [sql.Composed([sql.SQL(d)]) for _, d in indexes]
        + [add(t, n, d) for t, n, _, d in foreign]
    )


def generate_events(
    conn: psycopg.Connection,
    app_schema: str,
    seed: int = 42,
    analytics_events: int | None = None,
    *,
    confirm_database: str | None = None,
) -> DemoSummary:
    """Fill Phase 1's audit_logs and analytics_events with the rows the application would have written
    since Phase 1 went live, consistent with the offers and collaborations already in `app_schema`
    (late, duplicate and missing events included). Offers get the status history the application
    would have written, where they have none. One transaction; the event tables must be empty.

    `analytics_events` sets the total number of analytics rows: profile_viewed events fill up what the
    funnel events leave (default: 5 profile views per creator).

    Refused on a database whose application rows demo data did not create (no marker), unless
    `confirm_database` names it: demo events must never mix with real ones."""
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
            raise CsinfraError(
                f"Phase 1 is not applied to schema {app_schema}: run `csinfra migrate up` first"
            )
        require_ours(
            conn,
            app_schema,
            embedded=False,
            confirm_database=confirm_database,
            what="write demo events beside application rows it did not create (--events-only)",
        )
        _require_empty(conn, app_schema, EVENT_TABLES)
        conn.execute("set local synchronous_commit to off")
        creators = conn.execute('select count(*) from "creator_profiles"').fetchone()[0]
        hosts = conn.execute('select count(*) from "host_profiles"').fetchone()[0]
        if creators == 0 or hosts == 0:
            raise CsinfraError(
                f"schema {app_schema} has no creators or no hosts: run `csinfra demo-data` first"
            )
        _prepare_session(conn, seed, creators, hosts)
        conn.execute(_script("demo_status_history.sql"))
        _write_events(conn, analytics_events)
        rows = _counts(conn, app_schema, EVENT_TABLES)
    _analyze(conn, app_schema, EVENT_TABLES + ("offers",))
    return DemoSummary(
        created_tables=False, rows=rows, seconds=time.monotonic() - started, events_written=True
    )


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
        if conn.execute(
            sql.SQL("select exists (select from {})").format(sql.Identifier(app_schema, table))
        ).fetchone()[0]:
            raise CsinfraError(
                f"table {app_schema}.{table} already has rows; demo events fill empty event tables"
            )


def _counts(conn: psycopg.Connection, app_schema: str, tables: tuple[str, ...]) -> dict[str, int]:
    return {
        t: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(app_schema, t))).fetchone()[
            0
        ]
        for t in tables
    }


def _analyze(conn: psycopg.Connection, app_schema: str, tables: tuple[str, ...]) -> None:
    with conn.transaction():
        for table in tables:
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier(app_schema, table)))
