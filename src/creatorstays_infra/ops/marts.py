"""`csinfra marts`: build (and test) the analysts' marts with dbt, without running the write-back."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from .. import settings
from ..errors import CsinfraError
from .catalog import table_exists
from .database import Target, project_root
from .dbt import LOAD_AND_RUN, run_dbt
from .dbt import run_results as dbt_run_results
from .dbt import summary as dbt_summary
from .dbt import test_summary as dbt_test_summary

# Every mart and everything it reads, never the write-back: selectors.yml `marts`.
MARTS_SELECTION = ["--selector", "marts"]
MART_MODELS = (
    "dim_creators",
    "fct_creator_activation",
    "fct_offer_funnel",
    "rpt_creator_activation_by_signup_week",
    "rpt_creator_dashboard_blockers",
    "rpt_creator_search_ranking",
    "rpt_offer_funnel_by_sent_week",
    "rpt_readiness_blockers",
    "rpt_trust_tier_distribution_daily",
)
# On Spark: the seeds, the models and their data tests; dbt's unit tests (fixtures in PostgreSQL's SQL) stay on
# PostgreSQL, where `csinfra marts` runs them.
SPARK_TESTS = ["--exclude-resource-type", "unit_test"]
AS_OF_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?$")


@dataclass(frozen=True)
class MartsResult:
    returncode: int
    seconds: float
    log_path: Path
    summary: dict[str, int]
    tests: dict = field(default_factory=dict)  # the data tests that ran: counts and the failing ones


def spark_dir() -> Path:
    """Where Spark keeps its metastore and warehouse (CSINFRA_SPARK_DIR, else .csinfra/spark)."""
    chosen = os.environ.get("CSINFRA_SPARK_DIR")
    return Path(chosen).resolve() if chosen else project_root() / ".csinfra" / "spark"


def build_marts_on_spark(
    target: Target,
    app_schema: str,
    lake: Path,
    as_of: str | None = None,
    full_refresh: bool = False,
    run_tests: bool = True,
    lookback: str | None = None,
) -> MartsResult:
    """`dbt build` of the marts on Spark (profiles.yml target `spark`, local mode) from the lake `csinfra lake
    export` wrote: the catalogs (seeds), the models of selector marts_lake and their data tests (SPARK_BUILD; dbt's
    unit tests stay on PostgreSQL). The event models are incremental (whole day partitions overwritten) unless
    `full_refresh`. The write-back is not among them: it writes the application's tables, so it stays on
    PostgreSQL."""
    if as_of is not None and not AS_OF_PATTERN.match(as_of):
        raise CsinfraError(f"--as-of must look like 2026-11-01 or '2026-11-01 12:00:00', not {as_of!r}")
    if not (lake / "_manifest.json").is_file():
        raise CsinfraError(f"{lake} holds no export (run `csinfra lake export --lake {lake}` first)")
    state = spark_dir()
    state.mkdir(parents=True, exist_ok=True)
    env = {"CSINFRA_LAKE_DIR": str(lake.resolve()), "CSINFRA_SPARK_DIR": str(state)}
    args = ["build", "--target", "spark", "--selector", "marts_lake"]
    args += SPARK_TESTS if run_tests else LOAD_AND_RUN
    if full_refresh:
        args.append("--full-refresh")
    vars_: dict = {}
    if as_of:
        vars_["marts_as_of"] = as_of
    if lookback:
        vars_["events_lookback"] = lookback
    log_path = settings.dbt_target_dir() / "csinfra_marts_spark.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started, wall_start = time.monotonic(), time.time()
    proc = run_dbt(target, app_schema, args, vars_ or None, log_path, env=env)
    rc = proc.wait()
    results = dbt_run_results(wall_start)
    return MartsResult(
        returncode=rc,
        seconds=time.monotonic() - started,
        log_path=log_path,
        summary=dbt_summary(results) if results else {},
        tests=dbt_test_summary(results),
    )


def build_marts(
    target: Target,
    app_schema: str,
    full_refresh: bool = False,
    run_tests: bool = True,
    as_of: str | None = None,
    lookback: str | None = None,
) -> MartsResult:
    """`dbt build` (or `dbt run` without tests) of the marts and their upstream models."""
    if as_of is not None and not AS_OF_PATTERN.match(as_of):
        raise CsinfraError(f"--as-of must look like 2026-11-01 or '2026-11-01 12:00:00', not {as_of!r}")
    with target.connect(autocommit=True) as conn:
        for table in ("creator_profiles", "offers", "audit_logs", "analytics_events"):
            if not table_exists(conn, app_schema, table):
                hint = (
                    "csinfra migrate up"
                    if table in ("audit_logs", "analytics_events")
                    else "csinfra demo-data"
                )
                raise CsinfraError(f"schema {app_schema} has no {table} table (run `{hint}` first?)")
        log = settings.dbt_schema()
        never_backfilled = (
            not table_exists(conn, log, "writeback_log")
            or not conn.execute(
                sql.SQL("select exists (select from {} where status = 'done' and target_table = %s)").format(
                    sql.Identifier(log, "writeback_log")
                ),
                (f"{app_schema}.creator_profiles",),
            ).fetchone()[0]
        )
        if never_backfilled:
            raise CsinfraError(
                "no backfill has run on this database: run `csinfra backfill` first "
                "(the marts read the Phase 1 fields it writes)"
            )
    vars_: dict = {}
    if as_of:
        vars_["marts_as_of"] = as_of
    if lookback:
        vars_["events_lookback"] = lookback
    # the catalogs (seeds/) load first either way; with tests, every test of what was built runs too
    args = ["build", *MARTS_SELECTION] if run_tests else ["build", *LOAD_AND_RUN, *MARTS_SELECTION]
    if full_refresh:
        args.append("--full-refresh")
    log_path = settings.dbt_target_dir() / "csinfra_marts.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started, wall_start = time.monotonic(), time.time()
    # run_results.json only: dbt would write manifest.json twice (~0.4 s of a 20 s incremental build); `dbt parse`
    # or `dbt docs generate` writes it for whoever reads it
    proc = run_dbt(target, app_schema, args, vars_ or None, log_path, manifest=False)
    rc = proc.wait()
    seconds = time.monotonic() - started
    results = dbt_run_results(wall_start)
    return MartsResult(
        returncode=rc,
        seconds=seconds,
        log_path=log_path,
        summary=dbt_summary(results) if results else {},
        tests=dbt_test_summary(results),
    )


def marts_schema() -> str:
    return settings.dbt_schema()
