"""`csinfra backfill` (dbt's write-back models with progress) and `csinfra verify` (docs/rules.md §6)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from .. import settings
from ..errors import CsinfraError
from ..rules import load_rules
from .catalog import table_exists
from .database import Target
from .dbt import LOAD_AND_RUN, run_dbt
from .dbt import run_results as dbt_run_results

WRITEBACK_MODELS = {"creators": "wb_creator_profiles", "offers": "wb_offers"}
# JSON of writeback_* settings that override the dbt vars of the same names (macros/materializations/writeback.sql)
WRITEBACK_SETTINGS_ENV = "CSINFRA_WRITEBACK_SETTINGS"


@dataclass
class ModelProgress:
    model: str
    status: str
    candidates: int | None
    written: int
    skipped: int
    retried: int
    audit_rows: int
    batches: int
    derive_ms: int | None
    started_at: datetime
    finished_at: datetime | None
    scanned: int | None = None
    batch_size: int | None = None
    lock_timeouts: int = 0
    backoffs: int = 0
    over_time: int = 0
    preview: dict | None = None

    @property
    def done_rows(self) -> int:
        return self.written + self.skipped

    @property
    def seconds(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return max((end - self.started_at).total_seconds(), 1e-6)


@dataclass
class BackfillResult:
    returncode: int
    models: list[ModelProgress] = field(default_factory=list)
    seconds: float = 0.0
    log_path: Path | None = None
    interrupted_before: list[str] = field(default_factory=list)
    dbt: dict[str, int] = field(default_factory=dict)


def run_results(since: float = 0.0) -> dict[str, int]:
    """Counts by status of the last dbt invocation (target/run_results.json), or {} when dbt wrote none."""
    counts: dict[str, int] = {}
    for r in dbt_run_results(since):
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    return counts


def _log_rows(conn: psycopg.Connection, since: datetime) -> list[ModelProgress]:
    schema = settings.dbt_schema()
    if not table_exists(conn, schema, "writeback_log"):
        return []
    rows = conn.execute(
        sql.SQL(
            "select model, status, candidates, written, skipped, retried, audit_rows, batches, derive_ms, "
            "started_at, finished_at, scanned, batch_size, lock_timeouts, backoffs, over_time, preview "
            "from {} where started_at >= %s order by started_at"
        ).format(sql.Identifier(schema, "writeback_log")),
        (since,),
    ).fetchall()
    # one row per model: this run's, the first to start after it did (a run waiting for ours to finish
    # starts its own row later)
    mine: dict[str, ModelProgress] = {}
    for r in rows:
        mine.setdefault(r[0], ModelProgress(*r))
    return list(mine.values())


def interrupted_runs(conn: psycopg.Connection) -> list[str]:
    """Earlier write-back runs that never finished (killed); a new run resumes their work."""
    schema = settings.dbt_schema()
    if not table_exists(conn, schema, "writeback_log"):
        return []
    try:
        with conn.transaction():
            rows = conn.execute(
                sql.SQL(
                    "select model || ' (' || invocation_id || ', ' || written || ' rows written)' from {} as l "
                    "where finished_at is null and not exists (select from pg_stat_activity a where a.pid = l.pid) "
                    "order by started_at"
                ).format(sql.Identifier(schema, "writeback_log"))
            ).fetchall()
    except psycopg.errors.UndefinedColumn:  # a log from before runs recorded their pid
        rows = conn.execute(
            sql.SQL(
                "select model || ' (' || invocation_id || ', ' || written || ' rows written)' from {} "
                "where finished_at is null order by started_at"
            ).format(sql.Identifier(schema, "writeback_log"))
        ).fetchall()
    return [r[0] for r in rows]


def require_phase1(conn: psycopg.Connection, app_schema: str) -> None:
    from .catalog import column_exists

    if not table_exists(conn, app_schema, "creator_profiles") or not table_exists(conn, app_schema, "offers"):
        raise CsinfraError(
            f"schema {app_schema} has no creator_profiles/offers tables (is --app-schema right?)"
        )
    if not column_exists(conn, app_schema, "creator_profiles", "trustTier") or not table_exists(
        conn, app_schema, "audit_logs"
    ):
        raise CsinfraError(f"Phase 1 is not applied to schema {app_schema}: run `csinfra migrate up` first")


def run_backfill(
    target: Target,
    app_schema: str,
    only: str | None = None,
    dbt_vars: dict | None = None,
    on_progress: Callable[[list[ModelProgress]], None] | None = None,
    poll_seconds: float = 0.5,
    write_back_only: bool = False,
    dry_run: bool = False,
) -> BackfillResult:
    """`dbt run` of the whole project, as the deployment guide runs it (the views, the write-back, then the
    event models and marts, so a plain `dbt test` afterwards finds everything it tests), polling progress
    from the write-back's run log. `only` or `write_back_only` run just the write-back models and what
    they read (then `csinfra verify` or `dbt test --select +wb_creator_profiles +wb_offers` checks them).
    `dry_run` derives what would change and writes nothing (the write-back models only); each model's
    report is in its progress row's `preview`. `dbt_vars` are the write-back's dbt vars (writeback_*)."""
    with target.connect(autocommit=True) as conn:
        require_phase1(conn, app_schema)
        earlier = interrupted_runs(conn)
        since = conn.execute("select now()").fetchone()[0]
    models = [WRITEBACK_MODELS[only]] if only else list(WRITEBACK_MODELS.values())
    selector = {("wb_creator_profiles",): "backfill_creators", ("wb_offers",): "backfill_offers"}.get(
        tuple(models), "backfill"
    )
    selection = ["--selector", selector] if only or write_back_only or dry_run else []
    settings_ = dict(dbt_vars or {})
    if dry_run:
        settings_["writeback_dry_run"] = True
    # a log of its own: another backfill may be running from the same directory (and waiting for this one)
    log_path = settings.dbt_target_dir() / f"csinfra_backfill.{os.getpid()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    wall_start = time.time()
    # the write-back's settings reach its materialization through the environment, read when it runs: as
    # --vars they would make dbt parse the whole project again whenever they differ from the last run's
    env = {WRITEBACK_SETTINGS_ENV: json.dumps(settings_)} if settings_ else {WRITEBACK_SETTINGS_ENV: ""}
    # `dbt build` of the seeds and models only: the catalogs (seeds/) load first, so the rules compile from the
    # current catalog; no test runs here (`csinfra verify` / `dbt test --selector verify` run them)
    command = ["build", *LOAD_AND_RUN, *selection]
    proc = run_dbt(target, app_schema, command, None, log_path, manifest=False, env=env)
    progress: list[ModelProgress] = []
    with target.connect(autocommit=True) as conn:
        while True:
            try:
                proc.wait(timeout=poll_seconds)
            except subprocess.TimeoutExpired:
                pass
            finished = proc.poll() is not None
            try:
                progress = _log_rows(conn, since)
            except psycopg.Error:  # the log table may be mid-creation; keep the last reading
                pass
            if on_progress:
                on_progress(progress)
            if finished:
                break
    result = BackfillResult(
        returncode=proc.returncode,
        models=progress,
        seconds=time.monotonic() - started,
        log_path=log_path,
        interrupted_before=earlier,
        dbt=run_results(wall_start),
    )
    if proc.returncode == 0:  # kept only when something went wrong
        log_path.replace(log_path.with_name("csinfra_backfill.log"))
        result.log_path = log_path.with_name("csinfra_backfill.log")
    return result


# -- verify ---------------------------------------------------------------------------------------------


def verify(conn: psycopg.Connection, app_schema: str) -> dict:
    """The JSON of docs/rules.md §6, plus drift (stored rows that disagree with the rules) and invariants."""
    require_phase1(conn, app_schema)
    dbt_schema = settings.dbt_schema()
    for view in ("int_creators_derived", "int_offers_validated"):
        if (
            conn.execute(
                "select to_regclass(%s)", (sql.Identifier(dbt_schema, view).as_string(conn),)
            ).fetchone()[0]
            is None
        ):
            raise CsinfraError(
                f"{dbt_schema}.{view} does not exist: run the backfill (`csinfra backfill` or `dbt run`) first"
            )
    app = sql.Identifier(app_schema)
    tiers = dict(
        conn.execute(
            sql.SQL('select "trustTier"::text, count(*) from {}.creator_profiles group by 1').format(app)
        ).fetchall()
    )
    states = dict(
        conn.execute(
            sql.SQL('select "readinessState"::text, count(*) from {}.creator_profiles group by 1').format(app)
        ).fetchall()
    )
    total = conn.execute(sql.SQL("select count(*) from {}.creator_profiles").format(app)).fetchone()[0]
    total_offers = conn.execute(sql.SQL("select count(*) from {}.offers").format(app)).fetchone()[0]
    d = sql.Identifier(dbt_schema)
    creator_drift = conn.execute(
        sql.SQL("select count(*) from {}.int_creators_derived where is_drifted").format(d)
    ).fetchone()[0]
    offer_drift = conn.execute(
        sql.SQL("select count(*) from {}.int_offers_validated where is_drifted").format(d)
    ).fetchone()[0]
    rules = load_rules()
    oauth_blocker = rules.creator.oauth_blocker  # seeds/creator_blockers.csv
    invariants = conn.execute(
        sql.SQL(
            """
            select
                count(*) filter (where "readinessState" = 'READY' and "readinessBlockers" <> '[]'::jsonb),
                count(*) filter (where "readinessState" = 'PENDING_OAUTH'
                                 and "readinessBlockers" - %s <> '[]'::jsonb),
                count(*) filter (where "trustTier" = 'PROVEN' and "firstCollabCompletedAt" is null),
                count(*) filter (where "profileCompleteness" < 0 or "profileCompleteness" > 1
                                 or "profileCompleteness" = 'NaN'::float8)
            from {}.creator_profiles
            """
        ).format(app),
        (oauth_blocker,),
    ).fetchone()
    offer_invariants = conn.execute(
        sql.SQL(
            """select count(*) filter (where "isValid" <> ("validationErrors" = '[]'::jsonb)) from {}.offers"""
        ).format(app)
    ).fetchone()
    return {
        "totalCreators": total,
        "stats": {
            "trustTier": {t: tiers.get(t, 0) for t in rules.creator.trust_tiers},
            "readinessState": {s: states.get(s, 0) for s in rules.creator.readiness_states},
        },
        "totalOffers": total_offers,
        "drift": {"creators": creator_drift, "offers": offer_drift, "total": creator_drift + offer_drift},
        "invariantViolations": {
            "readyWithBlockers": invariants[0],
            "pendingOauthWithProfileBlockers": invariants[1],
            "provenWithoutCompletedCollab": invariants[2],
            "completenessOutOfRange": invariants[3],
            "isValidDisagreesWithErrors": offer_invariants[0],
        },
    }
