"""`csinfra`: the command line. Exit codes: 0 success, 1 failure (drift, schema mismatch included), 2 usage error."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from psycopg import sql
from rich.console import Console
from rich.table import Table

from .. import settings
from ..errors import ConfigurationError, CsinfraError
from . import database, embedded

app = typer.Typer(
    help="Phase 1 infrastructure: embedded database, demo data, migration, backfill, verification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The embedded PostgreSQL server kept under .csinfra/.", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class State:
    database_url: str | None = None
    app_schema: str = "public"


state = State()


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"csinfra: error: {message}", markup=False)
    return typer.Exit(code)


def _checked(check):
    """A typer callback: the value through `check(value, option name)`; a refusal is a usage error (exit 2)."""

    def callback(param: typer.CallbackParam, value):
        if value is None:
            return None
        try:
            return check(value, param.opts[0])
        except ConfigurationError as exc:
            raise fail(str(exc), 2) from None

    return callback


# a duration (`5s`, `500ms`) before it reaches SQL; a finite number (click's ranges let NaN through: every
# comparison with NaN is false)
_duration_option = _checked(settings.duration)
_finite_option = _checked(settings.number)


def target() -> database.Target:
    return database.resolve(state.database_url)


def connect(autocommit: bool = False):
    return target().connect(autocommit=autocommit)


@app.callback()
def main_options(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            help="PostgreSQL URL; default: PG* variables, else the embedded server.",
        ),
    ] = None,
    app_schema: Annotated[
        str,
        typer.Option("--app-schema", envvar="CSINFRA_APP_SCHEMA", help="Schema of the application's tables."),
    ] = "public",
) -> None:
    state.database_url = database_url
    state.app_schema = settings.check_schema_name(app_schema, "--app-schema")
    os.environ["CSINFRA_APP_SCHEMA"] = state.app_schema


# -- db -----------------------------------------------------------------------------------------
@db_app.command("start")
def db_start() -> None:
    """Start the embedded server (initialising it on first use) and print its URL."""
    info = database.embedded_server().start()
    out.print(info.url, markup=False)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    stopped = database.embedded_server().stop()
    out.print("stopped" if stopped else "not running")


@db_app.command("reset")
def db_reset(
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: drop and recreate the embedded database.")
    ] = False,
) -> None:
    """Drop and recreate the embedded server's database (never touches DATABASE_URL/PG* databases)."""
    if not yes:
        raise fail("db reset drops every table in the embedded database; pass --yes to confirm", 2)
    t = target()
    if t.source != "embedded":
        raise fail(f"db reset only resets the embedded server, but {t.source} selects {t.describe()}", 2)
    admin = t.with_dbname("postgres")
    with admin.connect(autocommit=True) as conn:
        name = sql.Identifier(embedded.DEFAULT_DBNAME)
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(name))
        conn.execute(sql.SQL("create database {}").format(name))
    out.print(f"reset {t.describe()}", markup=False)


ShowPassword = Annotated[
    bool,
    typer.Option(
        "--show-password",
        help="Include the password (hidden by default; the embedded server's is in a 0600 passfile).",
    ),
]


@db_app.command("url")
def db_url(show_password: ShowPassword = False) -> None:
    """Print the URL of the database every command would use (starting the embedded server if needed).

    The password is left out: the embedded server's URL names its password file instead, which libpq reads."""
    out.print(target().url(show_password=show_password), markup=False)


@db_app.command("env")
def db_env(show_password: ShowPassword = False) -> None:
    """Print `export PG…=…` lines; `eval "$(csinfra db env)"` lets plain dbt, psql and pg_dump reach the database.

    For the embedded server the password stays in its password file (PGPASSFILE). A password from
    DATABASE_URL or PGPASSWORD is printed only with --show-password."""
    t = target()
    for key, value in sorted(t.libpq_env().items()):
        if key == "PGPASSWORD" and not show_password:
            print("# PGPASSWORD hidden: pass --show-password, or keep it in a password file (PGPASSFILE)")
            continue
        print(f"export {key}={shlex.quote(value)}")
    print(f'export PATH={shlex.quote(str(database.embedded.bin_dir()))}:"$PATH"')


# -- demo data ------------------------------------------------------------------------------------
@app.command("demo-data")
def demo_data(
    creators: Annotated[
        int,
        typer.Option(
            "--creators", min=1, max=100_000_000, help="How many creators (offers ≈ 3×, hosts = creators/10)."
        ),
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 42,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Drop the application tables (and Phase 1, and csinfra's schemas) first. Only on the embedded server "
            "or a database demo-data created; anything else needs --confirm-database.",
        ),
    ] = False,
    confirm_database: Annotated[
        str | None,
        typer.Option(
            "--confirm-database",
            metavar="NAME",
            help="Allow --reset / --events-only on a database demo-data did not create, by naming it.",
        ),
    ] = None,
    events_only: Annotated[
        bool,
        typer.Option(
            "--events-only",
            help="Only fill Phase 1's (empty) audit_logs and analytics_events from the offers and collaborations already there.",
        ),
    ] = False,
    analytics_events: Annotated[
        int | None,
        typer.Option(
            "--analytics-events",
            min=0,
            help="Total analytics events to write: profile views fill up what the funnel events leave (default: 5 views per creator).",
        ),
    ] = None,
) -> None:
    """Create the pre-Phase-1 application tables when absent and fill them deterministically.

    Where Phase 1 is applied, audit_logs and analytics_events are filled too (with late, duplicate and
    missing events, as real streams have); `--events-only` does just that on an existing demo database."""
    from . import demo

    t = target()
    with t.connect() as conn:
        if events_only:
            summary = demo.generate_events(
                conn,
                state.app_schema,
                seed=seed,
                analytics_events=analytics_events,
                confirm_database=confirm_database,
            )
        else:
            summary = demo.generate(
                conn,
                state.app_schema,
                creators=creators,
                seed=seed,
                reset_first=reset,
                analytics_events=analytics_events,
                embedded=t.source == "embedded",
                confirm_database=confirm_database,
            )
    rows = ", ".join(f"{n:,} {t}" for t, n in summary.rows.items())
    out.print(f"demo data in schema {state.app_schema}: {rows} ({summary.seconds:.1f} s)", markup=False)


# -- marts and report -------------------------------------------------------------------------------
@app.command("marts")
def marts_cmd(
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild the incremental event models from all events.")
    ] = False,
    skip_tests: Annotated[
        bool, typer.Option("--skip-tests", help="`dbt run` instead of `dbt build` (no data tests).")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The UTC moment the marts describe (dbt var marts_as_of; default now)."),
    ] = None,
    lookback: Annotated[
        str | None,
        typer.Option(
            "--lookback", help="Incremental re-read window (dbt var events_lookback, default '3 days')."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="postgres (the database, default) or spark (local Spark, from the lake of `csinfra lake export`).",
        ),
    ] = "postgres",
    lake: Annotated[
        Path | None,
        typer.Option("--lake", help="With --engine spark: the lake (default CSINFRA_LAKE_DIR, else ./lake)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Build the analysts' marts (funnels, activation, blockers, trust tiers, search ranking) and test them.

    Runs the staging, intermediate and mart models with their tests; never the write-back. With --engine spark,
    builds the same marts on Spark from the lake, with the same data tests (the write-back stays on PostgreSQL)."""
    from . import marts

    if engine not in ("postgres", "spark"):
        raise typer.BadParameter("expected postgres or spark", param_hint="--engine")
    if engine == "spark":
        from . import lake as lake_mod

        result = marts.build_marts_on_spark(
            target(),
            state.app_schema,
            lake_mod.lake_dir(lake),
            as_of=as_of,
            full_refresh=full_refresh,
            run_tests=not skip_tests,
            lookback=lookback,
        )
    else:
        result = marts.build_marts(
            target(),
            state.app_schema,
            full_refresh=full_refresh,
            run_tests=not skip_tests,
            as_of=as_of,
            lookback=lookback,
        )
    summary = {
        "ok": result.returncode == 0,
        "seconds": round(result.seconds, 2),
        "schema": marts.marts_schema(),
        "engine": engine,
        "fullRefresh": full_refresh,
        "tests": not skip_tests,
        "dbt": result.summary,
        "dataTests": result.tests,
        "log": str(result.log_path),
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    elif result.returncode == 0:
        counts = ", ".join(f"{k}={v}" for k, v in result.summary.items())
        out.print(
            f"marts built {'on Spark, ' if engine == 'spark' else ''}in schema {marts.marts_schema()} ({result.seconds:.1f} s; {counts})",
            markup=False,
        )
    if result.returncode != 0:
        raise fail(
            f"dbt failed building the marts ({result.summary or 'see log'}); log: {result.log_path}", 1
        )


lake_app = typer.Typer(
    help="The lake export: the tables the marts read, as Parquet, for building the marts off the primary.",
    no_args_is_help=True,
)
app.add_typer(lake_app, name="lake")


@lake_app.command("export")
def lake_export_cmd(
    lake: Annotated[
        Path | None,
        typer.Option("--lake", help="The lake directory (default CSINFRA_LAKE_DIR, else ./lake)."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rewrite every event day, not only the days since the last export.")
    ] = False,
    lookback: Annotated[
        str | None,
        typer.Option(
            "--lookback",
            help="How far before the newest event already exported to re-read (default: the marts' events_lookback).",
        ),
    ] = None,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1000, max=1_000_000, help="Rows fetched and written per batch.")
    ] = 50_000,
    table: Annotated[
        list[str] | None, typer.Option("--table", help="Only this source table (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's summary as JSON.")] = False,
) -> None:
    """Export the application's tables the marts read to Parquet (one consistent snapshot, ACCESS SHARE only).

    Mutable tables are rewritten whole; audit_logs and analytics_events are partitioned by day and incremental.
    Only the columns the dbt sources declare leave the database: no token, e-mail or IP address."""
    from . import lake as lake_mod

    directory = lake_mod.lake_dir(lake)
    window = lake_mod.parse_interval(lookback) if lookback else lake_mod.default_lookback()
    last = {"t": 0.0}

    def progress(name: str, rows: int, seconds: float) -> None:
        if as_json or time.monotonic() - last["t"] < 2:
            return
        last["t"] = time.monotonic()
        rate = rows / seconds if seconds else 0
        err.print(f"  {name}: {rows:,} rows ({rate:,.0f} rows/s)", markup=False)

    with target().connect() as conn:
        result = lake_mod.export(
            conn,
            state.app_schema,
            directory,
            full=full,
            lookback=window,
            batch_rows=batch_rows,
            tables=table or None,
            on_progress=progress,
        )
    summary = result.as_json()
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    out.print(
        f"lake {directory}: {result.rows:,} rows, {result.bytes / 1e6:.1f} MB in {result.seconds:.1f} s "
        f"({summary['rowsPerSecond'] or 0:,} rows/s, {summary['megabytesPerSecond'] or 0} MB/s); run {result.run_id}",
        markup=False,
    )
    for name, t in result.tables.items():
        days = f", {len(t.days)} day(s) rewritten" if t.days else ""
        out.print(
            f"  {name}: {t.mode}, {t.rows:,} rows{days}, {len(t.files)} file(s) in the lake", markup=False
        )


@app.command("report")
def report_cmd(
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the HTML file.")] = Path(
        "report.html"
    ),
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="postgres (the marts in the database, default) or spark (the marts `csinfra marts --engine spark` built).",
        ),
    ] = "postgres",
    warehouse: Annotated[
        Path | None,
        typer.Option(
            "--warehouse",
            help="With --engine spark: Spark's warehouse directory (default CSINFRA_SPARK_DIR/warehouse, else .csinfra/spark/warehouse).",
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML report (charts, blocker table, trust tiers) from the marts."""
    from . import marts, report

    if engine not in ("postgres", "spark"):
        raise typer.BadParameter("expected postgres or spark", param_hint="--engine")
    if engine == "spark":
        directory = (warehouse or marts.spark_dir() / "warehouse").resolve()
        data = report.write(report.load_from_warehouse(directory, marts.marts_schema()), out_path)
    else:
        if warehouse is not None:
            raise typer.BadParameter("only with --engine spark", param_hint="--warehouse")
        with connect() as conn:
            data = report.write_report(conn, marts.marts_schema(), out_path)
    out.print(
        f"report: {out_path.resolve()} ({data.funnel['offers_sent']:,} offers sent, "
        f"{data.activation['creators_signed_up']:,} creators; marts on {data.source})",
        markup=False,
    )


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:  # a setting (option, environment, var) was refused: a usage error
        err.print(f"csinfra: error: {exc}", markup=False)
        sys.exit(2)
    except CsinfraError as exc:
        err.print(f"csinfra: error: {exc}", markup=False)
        sys.exit(1)
    except psycopg.Error as exc:  # a database error no command explained: still one line, never a traceback
        diag = getattr(exc, "diag", None)
        message = (diag.message_primary if diag is not None else None) or str(exc).strip().splitlines()[0]
        err.print(
            f"csinfra: error: the database refused: {message} ({type(exc).__name__}; its transaction was rolled back)",
            markup=False,
        )
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("csinfra: interrupted", markup=False)
        sys.exit(130)


# -- migrate --------------------------------------------------------------------------------------
migrate_app = typer.Typer(
    help="Apply, inspect and roll back the Phase 1 schema change.", no_args_is_help=True
)
app.add_typer(migrate_app, name="migrate")

LockTimeoutOpt = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        callback=_duration_option,
        help="lock_timeout for every statement (a duration: 3s, 500ms).",
    ),
]
StatementTimeoutOpt = Annotated[
    str,
    typer.Option(
        "--statement-timeout",
        callback=_duration_option,
        help="statement_timeout for every statement (a duration: 5min).",
    ),
]
RetriesOpt = Annotated[
    int, typer.Option("--retries", min=0, max=100, help="Retries after a lock timeout (exponential backoff).")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the SQL that would run; change nothing.")]
LockWaitOpt = Annotated[
    float,
    typer.Option(
        "--lock-wait",
        min=0,
        max=86400,
        callback=_finite_option,
        help="Seconds to wait for another runner's migration lock.",
    ),
]
PrismaFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--prisma-migration-file",
        envvar="CSINFRA_PRISMA_MIGRATION_FILE",
        metavar="PATH",
        help="The application repository's own prisma/migrations/<name>/migration.sql, when it is not ours byte for "
        "byte: checked to create the same schema; its checksum goes into _prisma_migrations.",
    ),
]


def _options(**kwargs):
    from .migrations import Options

    return Options(app_schema=state.app_schema, **kwargs)


def _run_step(direction: str, options) -> None:
    from . import migrations

    steps = migrations.load_migrations()
    if direction == "down":
        steps = list(reversed(steps))
    with connect() as conn:
        # A dry run prints each statement as the runner builds it (the statements a real run executes).
        runner = migrations.Runner(
            conn,
            options,
            log=lambda msg: err.print(f"csinfra: {msg}", markup=False),
            transcript=(lambda text: print(text, end="", flush=True)) if options.dry_run else None,
        )
        if options.dry_run:
            print(
                f"-- csinfra migrate {direction} (dry run: nothing was executed; $1, $2, … are values a "
                "statement is given when it runs)"
            )
        runner.acquire()
        try:
            for m in steps:
                result = runner.up(m) if direction == "up" else runner.down(m)
                if result.action == "dry run":
                    continue
                line = f"{m.name}: {result.action}"
                if result.duration_ms or result.attempts:
                    line += f" in {result.duration_ms} ms ({result.attempts} attempt{'s' if result.attempts != 1 else ''})"
                if result.prisma:
                    line += f"; _prisma_migrations: {result.prisma}"
                out.print(line, markup=False)
                for note in result.notes:
                    out.print(f"  {note}", markup=False)
                if result.archive_id:
                    out.print(
                        f"archived {_archived(result.archived_rows)} as {result.archive_id}; restore with "
                        f"`csinfra migrate up && csinfra migrate restore-archive {result.archive_id}` "
                        "(before the next backfill)",
                        markup=False,
                    )
                elif direction == "down" and result.action == "rolled back":
                    out.print(
                        f"--discard-data: {_archived(result.archived_rows)} were dropped without an archive",
                        markup=False,
                    )
        finally:
            runner.release()


def _archived(counts: dict[str, int]) -> str:
    parts = [f"{n:,} {t}" for t, n in counts.items() if t != "offers"]
    if "offers" in counts:
        parts.append(f"{counts['offers']:,} offers' statusHistory/originalTermsSnapshot values")
    return ", ".join(parts)


@migrate_app.command("up")
def migrate_up(
    dry_run: DryRunOpt = False,
    lock_timeout: LockTimeoutOpt = "3s",
    statement_timeout: StatementTimeoutOpt = "5min",
    retries: RetriesOpt = 5,
    lock_wait: LockWaitOpt = 60.0,
    prisma_migration_file: PrismaFileOpt = None,
) -> None:
    """Apply the Phase 1 migration (one transaction; a no-op when already applied).

    Where the ORM applied it already, adopt it (add only csinfra's extras); a failed ORM attempt is
    marked rolled back first, as `prisma migrate resolve --rolled-back` does."""
    _run_step(
        "up",
        _options(
            dry_run=dry_run,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            retries=retries,
            lock_wait_seconds=lock_wait,
            prisma_migration_file=prisma_migration_file,
        ),
    )
    if not dry_run:
        _regrant()


def _regrant() -> None:
    """After `migrate up`: the tables it (re)created got the schema's default privileges (an application's
    `grant all`, say), so the grants of CSINFRA_APP_ROLE / CSINFRA_ANALYST_ROLE, when set, are applied again."""
    from . import grants

    app_role, analyst_role = (
        os.environ.get("CSINFRA_APP_ROLE") or None,
        os.environ.get("CSINFRA_ANALYST_ROLE") or None,
    )
    if not app_role and not analyst_role:
        return
    with connect() as conn:
        stmts, notes = grants.plan(conn, state.app_schema, settings.dbt_schema(), app_role, analyst_role)
        if any("does not exist" in n for n in notes):
            err.print(
                "csinfra: note: "
                + "; ".join(n for n in notes if "does not exist" in n)
                + "; grants not applied",
                markup=False,
            )
            return
        grants.apply(conn, stmts)
        conn.commit()
    out.print(
        f"grants: {len(stmts)} statements applied for "
        + " and ".join(
            f"{kind} {role}"
            for kind, role in (("the application role", app_role), ("the analyst role", analyst_role))
            if role
        ),
        markup=False,
    )


@migrate_app.command("down")
def migrate_down(
    dry_run: DryRunOpt = False,
    discard_data: Annotated[
        bool,
        typer.Option(
            "--discard-data",
            help="Drop audit_logs/analytics_events rows, statusHistory and snapshots WITHOUT archiving them.",
        ),
    ] = False,
    lock_timeout: LockTimeoutOpt = "3s",
    statement_timeout: StatementTimeoutOpt = "5min",
    retries: RetriesOpt = 5,
    lock_wait: LockWaitOpt = 60.0,
) -> None:
    """Roll Phase 1 back. Every value that cannot be derived again is archived first: the rows of audit_logs and
    analytics_events, offers' statusHistory and the terms snapshots the application wrote."""
    _run_step(
        "down",
        _options(
            dry_run=dry_run,
            discard_data=discard_data,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            retries=retries,
            lock_wait_seconds=lock_wait,
        ),
    )


@migrate_app.command("status")
def migrate_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the SQL status would run; run nothing.")
    ] = False,
) -> None:
    """What is applied (csinfra ledger and _prisma_migrations) and whether the schema matches. Exit 1 on a mismatch."""
    from . import migrations, schema_snapshot

    if dry_run:
        print(
            f"-- csinfra migrate status (dry run: nothing was executed). Status only reads:\n"
            f"-- 1. the ledgers: select … from csinfra_meta.schema_migrations / {state.app_schema}._prisma_migrations;\n"
            f"-- 2. in a transaction that is always rolled back, each migration.sql and extras.sql applied to a throw-away\n"
            f"--    schema csinfra_probe_<random> to learn the objects it creates;\n"
            f"-- 3. this catalog query, for the probe schema and for {state.app_schema}:"
        )
        print(schema_snapshot.CATALOG_QUERY.strip())
        return

    with connect() as conn:
        statuses = migrations.status(conn, _options())
    if as_json:
        print(
            json.dumps(
                {"appSchema": state.app_schema, "migrations": [s.as_dict() for s in statuses]}, indent=2
            )
        )
    else:
        table = Table(title=f"Migrations in schema {state.app_schema}")
        for col in ("migration", "state", "csinfra ledger", "_prisma_migrations", "schema"):
            table.add_column(col)
        for s in statuses:
            ledger = (
                "not applied"
                if not s.applied
                else f"applied {s.ledger['appliedAt'][:19]} by {s.ledger['appliedBy']}"
            )
            if s.checksum_ok is False:
                ledger += " [checksum changed]"
            table.add_row(
                s.name,
                s.state,
                ledger,
                s.prisma_state,
                "ok" if s.schema_ok else f"{len(s.problems)} problem(s)",
            )
        out.print(table)
        for s in statuses:
            for p in s.problems:
                out.print(f"  {s.name}: {p}", markup=False)
    if any(not s.schema_ok for s in statuses):
        raise typer.Exit(1)


@migrate_app.command("archives")
def migrate_archives() -> None:
    """List the rollback archives (rows and values kept by `migrate down`)."""
    from . import migrations

    with connect() as conn:
        archives = migrations.list_archives(conn, _options().meta_schema)
    if not archives:
        out.print("no rollback archives")
        return
    table = Table(title="Rollback archives")
    for col in ("archive id", "schema", "migration", "created", "rows", "restored"):
        table.add_column(col)
    for a in archives:
        rows = _archived({t: v["rows"] for t, v in a.tables.items()})
        table.add_row(
            a.archive_id,
            a.app_schema,
            a.name,
            a.created_at.isoformat()[:19],
            rows,
            a.restored_at.isoformat()[:19] if a.restored_at else "",
        )
    out.print(table)


@migrate_app.command("restore-archive")
def migrate_restore_archive(
    archive_id: Annotated[str, typer.Argument(help="An id from `csinfra migrate archives`.")],
    lock_timeout: LockTimeoutOpt = "3s",
    statement_timeout: StatementTimeoutOpt = "30min",
    keep_reconstructed: Annotated[
        bool,
        typer.Option(
            "--keep-reconstructed",
            help="Restore even when a backfill has since given some archived offers a reconstructed snapshot "
            "(write-once): those offers keep it, their originals stay in the archive table.",
        ),
    ] = False,
    lock_wait: LockWaitOpt = 60.0,
) -> None:
    """Put a rollback archive back after `migrate up` (and before the next backfill): audit_logs and analytics_events
    rows (ids already present are kept), offers' statusHistory and terms snapshots (values already present win)."""
    from . import migrations

    options = _options(
        lock_timeout=lock_timeout, statement_timeout=statement_timeout, lock_wait_seconds=lock_wait
    )
    with connect() as conn:
        # one runner at a time: a rollback must not drop the tables under a restore
        runner = migrations.Runner(conn, options, log=lambda msg: err.print(f"csinfra: {msg}", markup=False))
        runner.acquire()
        try:
            r = migrations.restore_archive(conn, options, archive_id, keep_reconstructed=keep_reconstructed)
        finally:
            runner.release()
    out.print(
        "restored "
        + ", ".join(f"{n:,} {t}" for t, n in r.rows.items())
        + f", {r.values['statusHistory']:,} offers' statusHistory, {r.values['originalTermsSnapshot']:,} offers' "
        "originalTermsSnapshot",
        markup=False,
    )
    if any(r.kept.values()) or r.missing_offers:
        out.print(
            f"kept the values already present: {r.kept['statusHistory']:,} statusHistory, "
            f"{r.kept['originalTermsSnapshot']:,} originalTermsSnapshot; {r.missing_offers:,} archived offers no longer "
            "exist",
            markup=False,
        )


# -- grant --------------------------------------------------------------------------------------------
@app.command("grant")
def grant_cmd(
    app_role: Annotated[
        str | None,
        typer.Option(
            "--app-role", envvar="CSINFRA_APP_ROLE", help="The application's role (runs the online library)."
        ),
    ] = None,
    analyst_role: Annotated[
        str | None,
        typer.Option(
            "--analyst-role", envvar="CSINFRA_ANALYST_ROLE", help="The analysts' role (reads the marts only)."
        ),
    ] = None,
    apply_: Annotated[
        bool, typer.Option("--apply", help="Run the statements (one transaction) instead of printing them.")
    ] = False,
) -> None:
    """Print (or --apply) the GRANTs of a least-privilege deployment; run as the migration owner.

    The application role may INSERT and SELECT audit and analytics rows, never UPDATE or DELETE them, and
    call the online rule function; the analyst role reads the marts and nothing else. dbt keeps the
    csinfra-side grants on every rebuild when CSINFRA_APP_ROLE / CSINFRA_ANALYST_ROLE are set."""
    from . import grants

    if not app_role and not analyst_role:
        raise fail(
            "name at least one role: --app-role and/or --analyst-role (or CSINFRA_APP_ROLE / CSINFRA_ANALYST_ROLE)",
            2,
        )
    with connect() as conn:
        stmts, notes = grants.plan(conn, state.app_schema, settings.dbt_schema(), app_role, analyst_role)
        for note in notes:
            err.print(f"csinfra: note: {note}", markup=False)
        if any("does not exist" in n for n in notes) and apply_:
            raise fail("a role named does not exist; nothing granted", 1)
        if apply_:
            grants.apply(conn, stmts)
            conn.commit()
            out.print(f"applied {len(stmts)} statements", markup=False)
        else:
            for stmt in stmts:
                print(stmt.as_string(conn) + ";")


# -- backfill and verify ------------------------------------------------------------------------------
@app.command("backfill")
def backfill_cmd(
    only: Annotated[str | None, typer.Option("--only", help="creators or offers (default: both).")] = None,
    write_back_only: Annotated[
        bool,
        typer.Option(
            "--write-back-only",
            help="Only the write-back models and what they read, not the event models and marts.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Derive and report what would change (rows, transitions, blockers added/removed); write nothing.",
        ),
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            max=10_000_000,
            help="A fixed number of rows per batch (dbt var writeback_batch_size); default: sized by time.",
        ),
    ] = None,
    batch_target_ms: Annotated[
        float | None,
        typer.Option(
            "--batch-target-ms",
            min=1,
            max=3_600_000,
            callback=_finite_option,
            help="How long each batch should take (dbt var writeback_batch_target_ms, default 100).",
        ),
    ] = None,
    batch_max_ms: Annotated[
        float | None,
        typer.Option(
            "--batch-max-ms",
            min=1,
            max=86_400_000,
            callback=_finite_option,
            help="The safety net: the longest a batch may hold its row locks; one that would is cancelled and retried at "
            "half the size (dbt var writeback_batch_max_ms, default 4 x the target).",
        ),
    ] = None,
    lock_timeout: Annotated[
        str | None,
        typer.Option(
            "--lock-timeout",
            callback=_duration_option,
            help="lock_timeout of each batch's table locks (dbt var writeback_lock_timeout, default 100ms).",
        ),
    ] = None,
    pause: Annotated[
        float | None,
        typer.Option(
            "--pause",
            min=0,
            max=3600,
            callback=_finite_option,
            help="Seconds to sleep between batches (dbt var writeback_pause_seconds, default 0).",
        ),
    ] = None,
    max_lock_timeouts: Annotated[
        int | None,
        typer.Option(
            "--max-lock-timeouts",
            min=1,
            max=1_000_000,
            help="Lock timeouts in a row before the run stops, naming the holder (dbt var writeback_max_lock_timeouts, default 20).",
        ),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            min=0,
            max=86400,
            callback=_finite_option,
            metavar="SECONDS",
            help="Wait this long for a backfill already writing a table, instead of stopping at once (dbt var writeback_wait_seconds).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run the backfill: `dbt run` of the project (the write-back, then the marts), with progress of the write-back.

    Afterwards a plain `dbt test` passes. With --only or --write-back-only just the write-back runs
    (check it with `csinfra verify`); --dry-run reports what it would write, and writes nothing."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from . import backfill

    if only is not None and only not in backfill.WRITEBACK_MODELS:
        raise fail(f"--only must be one of {', '.join(backfill.WRITEBACK_MODELS)}", 2)
    dbt_vars = {
        name: value
        for name, value in (
            ("writeback_batch_size", batch_size),
            ("writeback_batch_target_ms", batch_target_ms),
            ("writeback_batch_max_ms", batch_max_ms),
            ("writeback_lock_timeout", lock_timeout),
            ("writeback_pause_seconds", pause),
            ("writeback_wait_seconds", wait),
            ("writeback_max_lock_timeouts", max_lock_timeouts),
        )
        if value is not None
    }
    tasks: dict[str, int] = {}
    progress = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:>12,.0f}/{task.total:<12,.0f} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    )

    def show(rows):
        for r in rows:
            if r.model not in tasks:
                tasks[r.model] = progress.add_task(r.model, total=None, rate="deriving…")
            rate = (
                f"{r.done_rows / r.seconds:,.0f} rows/s"
                if r.candidates
                else ("no changes" if r.candidates == 0 else "deriving…")
            )
            progress.update(
                tasks[r.model],
                total=r.candidates or (0 if r.candidates == 0 else None),
                completed=r.done_rows,
                rate=rate,
            )

    with progress:
        result = backfill.run_backfill(
            target(),
            state.app_schema,
            only=only,
            dbt_vars=dbt_vars,
            on_progress=show,
            write_back_only=write_back_only,
            dry_run=dry_run,
        )
    if dry_run:
        _print_preview(result, as_json)
    else:
        _print_backfill(result, as_json)
    if result.returncode != 0:
        log = result.log_path.read_text() if result.log_path and result.log_path.exists() else ""
        cause = _dbt_error(log)
        if cause is None:
            for line in log.splitlines()[-25:]:
                err.print(line, markup=False)
        raise fail(
            f"dbt build failed{f': {cause}' if cause else f' (exit {result.returncode})'}; full log: {result.log_path}"
            + ("" if dry_run else "; rerun to resume")
        )


def _print_backfill(result, as_json: bool) -> None:
    summary = {
        "ok": result.returncode == 0,
        "seconds": round(result.seconds, 2),
        "resumedAfterInterruptedRuns": result.interrupted_before,
        "models": {
            r.model: {
                "rowsScanned": r.scanned,
                "changedRowsFound": r.candidates,
                "written": r.written,
                "skippedStillLocked": r.skipped,
                "rewrittenAfterConcurrentChange": r.retried,
                "auditRows": r.audit_rows,
                "batches": r.batches,
                "lastBatchSize": r.batch_size,
                "lockTimeouts": r.lock_timeouts,
                "batchesOverTime": r.over_time,
                "backoffs": r.backoffs,
                "deriveMs": r.derive_ms,
                "seconds": round(r.seconds, 2),
                "status": r.status,
            }
            for r in result.models
        },
        "dbt": result.dbt,
        "log": str(result.log_path),
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    if result.interrupted_before:
        out.print(
            f"resuming after {len(result.interrupted_before)} interrupted run(s): "
            + "; ".join(result.interrupted_before),
            markup=False,
        )
    table = Table(title=f"Backfill of schema {state.app_schema} ({result.seconds:.1f} s)")
    for col in (
        "model",
        "rows scanned",
        "changed rows found",
        "written",
        "rewritten fresh",
        "left locked",
        "audit rows",
        "batches",
        "last batch size",
        "rows/s",
    ):
        table.add_column(col, justify="right" if col != "model" else "left")
    for r in result.models:
        table.add_row(
            r.model,
            f"{r.scanned or 0:,}",
            f"{r.candidates or 0:,}",
            f"{r.written:,}",
            f"{r.retried:,}",
            f"{r.skipped:,}",
            f"{r.audit_rows:,}",
            f"{r.batches:,}",
            f"{r.batch_size or 0:,}",
            f"{r.done_rows / r.seconds:,.0f}",
        )
    out.print(table)
    if any(r.skipped for r in result.models):
        out.print(
            "rows the application kept locked through every retry are left as they were; the next run writes them",
            markup=False,
        )
    if result.dbt:
        out.print(
            "dbt build (catalogs, models): " + ", ".join(f"{n} {s}" for s, n in sorted(result.dbt.items())),
            markup=False,
        )


def _print_preview(result, as_json: bool) -> None:
    """The dry run's report: per model, what the write-back would change."""
    models = {
        r.model: {"rowsScanned": r.scanned, "rowsThatWouldChange": r.candidates, **(r.preview or {})}
        for r in result.models
    }
    if as_json:
        print(
            json.dumps(
                {
                    "ok": result.returncode == 0,
                    "dryRun": True,
                    "seconds": round(result.seconds, 2),
                    "models": models,
                },
                indent=2,
            )
        )
        return
    for model, p in models.items():
        out.print(
            f"{model}: {p.get('rowsThatWouldChange') or 0:,} of {p.get('rowsScanned') or 0:,} rows would change "
            "(dry run: nothing written)",
            markup=False,
        )
        for column, c in (p.get("columns") or {}).items():
            if c["changed"]:
                out.print(
                    f"  {column}: {c['changed']:,} changed ({c['set']:,} set, {c['cleared']:,} cleared)",
                    markup=False,
                )
        for column, transitions in (p.get("transitions") or {}).items():
            for transition, n in sorted(transitions.items(), key=lambda kv: -kv[1]):
                out.print(f"  {column} {transition}: {n:,}", markup=False)
        for column, e in (p.get("elements") or {}).items():
            for verb in ("added", "removed"):
                for element, n in sorted(e[verb].items(), key=lambda kv: -kv[1]):
                    out.print(f"  {column} {verb} {element}: {n:,}", markup=False)


def _dbt_error(log: str) -> str | None:
    """The one line that says why dbt stopped, when one of our own checks stopped it: a missing table or
    column, another backfill writing the same table, a batch that kept timing out."""
    for line in log.splitlines():
        if "the application's schema lacks what the models read" in line:
            return line.strip().split("  ")[-1].strip()
        if "[csinfra] " in line:
            return line.split("[csinfra] ", 1)[1].strip()
    return None


@app.command("verify")
def verify_cmd(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print only the JSON: counts per trust tier and readiness state, drift, invariants.",
        ),
    ] = False,
) -> None:
    """Counts by trust tier and readiness, drift (stored rows that disagree with the rules) and invariants. Exit 1 on drift."""
    from . import backfill

    with connect(autocommit=True) as conn:
        report = backfill.verify(conn, state.app_schema)
    bad = report["drift"]["total"] + sum(report["invariantViolations"].values())
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        out.print_json(json.dumps(report))
        out.print(
            "verification passed: no drift"
            if not bad
            else f"verification FAILED: {report['drift']['total']} drifted rows, "
            f"{sum(report['invariantViolations'].values())} invariant violations",
            markup=False,
        )
    if bad:
        raise typer.Exit(1)
