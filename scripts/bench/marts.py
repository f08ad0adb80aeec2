"""`make bench-marts`: every mart on a large database, on PostgreSQL and on Spark, in full and incrementally.

    python scripts/bench/marts.py --creators 1000000 --analytics-events 10000000 [--seed 42]
                                  [--engines postgres,spark] [--reuse] [--setup-only]

1. Setup, once per size (a template database, kept; `--reuse` takes it as it is): demo data (creators,
   ≈3× offers), the Phase 1 migration, the events since go-live topped up with profile views to exactly
   --analytics-events analytics rows, the backfill (so the audit trail holds the trust-tier changes), and
   the ids the application-like load picks from. Each run clones the template.
2. PostgreSQL, full build of every mart and everything upstream (`csinfra marts --full-refresh --skip-tests`).
3. 1% new analytics events (copies of a deterministic 1% sample, new ids, created in the day after the newest
   event), then the PostgreSQL incremental build (`csinfra marts --skip-tests`).
4. The lake export in full (`csinfra lake export --full`) while an application-like write load runs
   (pgbench, scripts/bench/app_load.pgbench: each transaction updates a creator profile and an offer, as a
   profile save and an offer edit do). Reported: rows/s, MB/s, the load's latency beside the export against
   the same load alone just before, and every lock wait of the load on another session.
5. Spark (local mode), full build from the lake (`csinfra marts --engine spark`).
6. Another 1% of new events; the incremental lake export; the Spark incremental build.
7. The PostgreSQL incremental build of the same data (1% more events, and the load's writes of step 4).
8. PostgreSQL full rebuild on the same data: the incremental models and every mart must be identical to step
   7's (row-level md5 per table), and the Spark marts must hold as many rows as these.
9. PostgreSQL incremental build with every data test (`csinfra marts`).
Every build uses the same --as-of. Each step runs in its own process; a sampler records the peak memory
(RSS) of that process and its children (dbt, the JVM) and the peak private memory (USS) of the PostgreSQL
server's processes, summed, while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
import pyarrow.dataset as ds
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from latency import read_latencies, start_load
from run import admin, drop, recreate
from sampling import IntervalSampler

from creatorstays_infra import settings
from creatorstays_infra.ops import database, demo
from creatorstays_infra.ops.marts import MART_MODELS
from creatorstays_infra.ops.migrations import Options, Runner, load_migrations

INCREMENTAL_MODELS = (
    "int_funnel_milestones_recorded",
    "int_creator_profile_views_daily",
    "int_creator_trust_tier_changes",
    "int_creator_trust_tier_periods",
    "int_creator_search_components",
)
AS_OF = "2026-11-27 00:00:00"

NEW_EVENTS = """
with bounds as (
    select max("createdAt") as newest, min("createdAt") as oldest from analytics_events
)
insert into analytics_events ("id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
select 'cn' || substr(md5(%(salt)s || e."id"), 1, 23), e."actorType", e."actorId", e."eventType", e."eventData",
       e."sessionId",
       (b.newest + interval '1 second'
        + (extract(epoch from e."createdAt" - b.oldest) / nullif(extract(epoch from b.newest - b.oldest), 0))
          * interval '1 day')::timestamp(3)
from analytics_events as e, bounds as b
where (hashtext(e."id") & 2147483647) %% 100 = 0
"""

APP_IDS = """
create schema if not exists csinfra_bench;
create table csinfra_bench.app_ids as
select row_number() over (order by c.id) as n, c.id as creator_id, o.offer_id
from creator_profiles as c
cross join lateral (
    select o.id as offer_id from offers as o where o."creatorProfileId" = c.id order by o.id limit 1
) as o;
alter table csinfra_bench.app_ids add primary key (n);
"""


class PeakMemory(threading.Thread):
    """Samples, every 0.5 s, the RSS of a process and its children, and the USS of the PostgreSQL server's
    processes (the postmaster's children); keeps the peak of each sum."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop_event = threading.Event()
        self.peak_rss = 0
        self.peak_server_uss = 0
        self.server = [p for p in psutil.process_iter(["name", "ppid"]) if p.info["name"] == "postgres"]
        self.postmasters = [p for p in self.server if p.info["ppid"] not in {q.pid for q in self.server}]

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                root = psutil.Process(self.pid)
                tree = [root, *root.children(recursive=True)]
                self.peak_rss = max(self.peak_rss, sum(_safe(lambda p=p: p.memory_info().rss) for p in tree))
            except psutil.NoSuchProcess:
                pass
            uss = 0
            for postmaster in self.postmasters:
                try:
                    for proc in postmaster.children():
                        uss += _safe(lambda p=proc: p.memory_full_info().uss)
                except psutil.NoSuchProcess:
                    pass
            self.peak_server_uss = max(self.peak_server_uss, uss)
            self.stop_event.wait(0.5)


def _safe(read) -> int:
    try:
        return read()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


class LockWaits(IntervalSampler):
    """The load's sessions (pgbench) waiting on a lock any other session holds, wait by wait."""

    QUERY = """select w.pid, w.query_start from pg_stat_activity as w
               where w.application_name = 'pgbench' and w.wait_event_type = 'Lock'"""

    def __init__(self, target: database.Target):
        super().__init__(target, 0.005)
        self.waits_ms: list[float] = []

    def sample(self, conn) -> dict:
        return {(pid, str(start)): None for pid, start in conn.execute(self.QUERY)}

    def interval_closed(self, key, seconds: float, detail) -> None:
        self.waits_ms.append(seconds * 1000)


def step(target, name: str, args: list[str], results: dict, env: dict | None = None) -> dict:
    """`csinfra <args>` in a process of its own, timed, its peak memory sampled; its JSON summary returned."""
    run_env = {k: v for k, v in os.environ.items() if k not in database.SELECTING_PG_VARS}
    run_env["DATABASE_URL"] = psycopg.conninfo.make_conninfo("", **target.effective())
    run_env.update(env or {})
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "creatorstays_infra", *args],
        env=run_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    memory = PeakMemory(proc.pid)
    memory.start()
    out, err = proc.communicate()
    seconds = time.monotonic() - t0
    memory.stop_event.set()
    memory.join()
    if proc.returncode != 0:
        raise SystemExit(f"{name}: csinfra {' '.join(args)} failed:\n{out[-2000:]}\n{err[-3000:]}")
    try:
        summary = json.loads(out)
    except json.JSONDecodeError:
        summary = {}
    results[name] = {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(memory.peak_rss / 2**20),
        "peak_server_uss_mb": round(memory.peak_server_uss / 2**20),
    }
    print(f"  {name}: {json.dumps(results[name])}", flush=True)
    return summary


def model_timings() -> dict[str, float]:
    results = json.loads((ROOT / "target" / "run_results.json").read_text())
    return {r["unique_id"].split(".")[-1]: round(r["execution_time"], 2) for r in results["results"]}


def table_digests(target) -> dict[str, str]:
    schema = settings.dbt_schema()
    digests = {}
    with target.connect(autocommit=True) as conn:
        for table in (*INCREMENTAL_MODELS, *MART_MODELS):
            q = sql.SQL(
                "select md5(coalesce(string_agg(md5(t::text), '' order by md5(t::text)), '')) from {} as t"
            ).format(sql.Identifier(schema, table))
            digests[table] = conn.execute(q).fetchone()[0]
    return digests


def mart_counts(target) -> dict[str, int]:
    schema = settings.dbt_schema()
    with target.connect(autocommit=True) as conn:
        return {
            m: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, m))).fetchone()[
                0
            ]
            for m in MART_MODELS
        }


def spark_counts(warehouse: Path) -> dict[str, int]:
    schema = settings.dbt_schema()
    return {m: ds.dataset(warehouse / f"{schema}.db" / m, format="parquet").count_rows() for m in MART_MODELS}


def counts(target) -> dict[str, int]:
    with target.connect(autocommit=True) as conn:
        return {
            t: conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier("public", t))
            ).fetchone()[0]
            for t in ("creator_profiles", "offers", "collaborations", "analytics_events", "audit_logs")
        }


def exists(name: str) -> bool:
    with admin().connect(autocommit=True) as conn:
        return bool(conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone())


def setup(args, template: str) -> dict:
    if args.reuse and exists(template):
        print(f"  reusing {template}", flush=True)
        return {}
    steps: dict[str, float] = {}
    target = recreate(template)
    t = time.monotonic()
    with target.connect() as conn:
        demo.generate(conn, "public", creators=args.creators, seed=args.seed)
        Runner(conn, Options(app_schema="public")).up(load_migrations()[0])
    steps["demo data + migration"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    with target.connect() as conn:
        demo.generate_events(conn, "public", seed=args.seed, analytics_events=args.analytics_events)
    steps["demo events"] = round(time.monotonic() - t, 1)
    scratch: dict = {}
    step(target, "backfill", ["backfill", "--json"], scratch)
    steps["backfill"] = scratch["backfill"]["seconds"]
    with target.connect() as conn:
        conn.execute(APP_IDS)
        conn.commit()
    with target.connect(autocommit=True) as conn:
        conn.execute("vacuum (analyze)")
    return steps


def add_events(target, salt: str) -> int:
    """1% new analytics events (see NEW_EVENTS); `salt` makes their ids new each time."""
    with target.connect() as conn:
        added = conn.execute(NEW_EVENTS, {"salt": salt}).rowcount
        conn.commit()
    with target.connect(autocommit=True) as conn:
        conn.execute("analyze analytics_events")
    return added


def export_under_load(target, args, lake: Path, results: dict) -> dict:
    """The full export beside the application-like load, and the same load alone just before."""
    ncreators = target_scalar(target, "select count(*) from csinfra_bench.app_ids")
    load_out = args.out / "pgbench"
    alone = start_load(target, ncreators, args.clients, args.rate, args.idle_seconds, load_out / "alone")
    alone.wait()
    baseline = read_latencies(load_out / "alone")
    waits = LockWaits(target)
    load = start_load(target, ncreators, args.clients, args.rate, 7200, load_out / "export")
    waits.start()
    time.sleep(2)
    try:
        summary = step(
            target, "lake export (full)", ["lake", "export", "--lake", str(lake), "--full", "--json"], results
        )
    finally:
        load.terminate()
        load.wait()
        waits.stop_event.set()
        waits.join()
    beside = read_latencies(load_out / "export")
    results["lake export (full)"]["load"] = {
        "alone": latency_summary(baseline),
        "beside the export": latency_summary(beside),
        "lock_waits": len(waits.waits_ms),
        "longest_lock_wait_ms": round(max(waits.waits_ms, default=0.0), 1),
    }
    return summary


def latency_summary(lat: list[float]) -> dict:
    lat = sorted(lat)
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [0.0] * 99
    return {
        "transactions": len(lat),
        "p50_ms": round(q[49], 1),
        "p99_ms": round(q[98], 1),
        "max_ms": round(max(lat, default=0.0), 1),
    }


def target_scalar(target, query: str):
    with target.connect(autocommit=True) as conn:
        return conn.execute(query).fetchone()[0]


def export_figures(summary: dict, seconds: float) -> dict:
    """Rows and bytes the export wrote (its own summary), per second of the step's wall time."""
    rows, size = summary.get("rows", 0), summary.get("bytes", 0)
    return {
        "rows": rows,
        "bytes": size,
        "rows_per_s": round(rows / seconds) if seconds else None,
        "mb_per_s": round(size / 2**20 / seconds, 1) if seconds else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--creators", type=int, default=1_000_000)
    ap.add_argument("--analytics-events", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--engines", default="postgres,spark", help="postgres, or postgres,spark")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results")
    ap.add_argument("--reuse", action="store_true", help="take the size's template database as it is")
    ap.add_argument("--setup-only", action="store_true", help="build the template database and stop")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    ap.add_argument("--clients", type=int, default=4, help="the load's connections")
    ap.add_argument("--rate", type=int, default=200, help="the load's transactions per second, in all")
    ap.add_argument("--idle-seconds", type=int, default=20, help="how long the load runs alone first")
    ap.add_argument("--spark-driver-memory", default="6g")
    args = ap.parse_args()
    engines = set(args.engines.split(","))
    args.out.mkdir(exist_ok=True)

    template = f"csinfra_bench_marts_tpl_{args.creators}_{args.analytics_events}"
    print(f"== marts: {args.creators:,} creators, {args.analytics_events:,} analytics events", flush=True)
    setup_steps = setup(args, template)
    if args.setup_only:
        print(f"  template {template} ready: {setup_steps}")
        return
    name = f"csinfra_bench_marts_{args.creators}"
    target = recreate(name, template=template)
    work = args.out / "marts-work"
    shutil.rmtree(work, ignore_errors=True)
    lake, spark = work / "lake", work / "spark"
    spark_env = {"CSINFRA_SPARK_DIR": str(spark), "CSINFRA_SPARK_DRIVER_MEMORY": args.spark_driver_memory}
    results: dict = {}
    marts = ["marts", "--skip-tests", "--as-of", AS_OF, "--json"]
    spark_marts = [
        "marts",
        "--engine",
        "spark",
        "--lake",
        str(lake),
        "--skip-tests",
        "--as-of",
        AS_OF,
        "--json",
    ]
    try:
        before = counts(target)
        print(f"  data: {before}", flush=True)
        step(target, "postgres full", [*marts, "--full-refresh"], results)
        full_models = model_timings()
        new_events = add_events(target, "bench-new:")
        step(target, "postgres incremental", marts, results)
        inc_models = model_timings()
        if "spark" in engines:
            exported = export_under_load(target, args, lake, results)
            results["lake export (full)"].update(
                export_figures(exported, results["lake export (full)"]["seconds"])
            )
            step(target, "spark full", [*spark_marts, "--full-refresh"], results, spark_env)
            add_events(target, "bench-new-2:")
            exported = step(
                target,
                "lake export (incremental)",
                ["lake", "export", "--lake", str(lake), "--json"],
                results,
            )
            results["lake export (incremental)"].update(
                export_figures(exported, results["lake export (incremental)"]["seconds"])
            )
            step(target, "spark incremental", spark_marts, results, spark_env)
            # the PostgreSQL side of the same data: 1% more events and the load's writes since its last build
            step(target, "postgres incremental (after the load's writes too)", marts, results)
        inc_digests = table_digests(target)
        step(target, "postgres full rebuild", [*marts, "--full-refresh"], results)
        refull_digests = table_digests(target)
        pg_rows = mart_counts(target)
        spark_rows = spark_counts(spark / "warehouse") if "spark" in engines else {}
        step(target, "postgres incremental + every data test", ["marts", "--as-of", AS_OF, "--json"], results)
    finally:
        if not args.keep:
            drop(name)

    differing = sorted(t for t in inc_digests if inc_digests[t] != refull_digests[t])
    spark_differing = sorted(m for m in spark_rows if spark_rows[m] != pg_rows[m])
    full_s, inc_s = results["postgres full"]["seconds"], results["postgres incremental"]["seconds"]
    report = {
        "creators": args.creators,
        "rows": before,
        "new_events": new_events,
        "setup_seconds": setup_steps,
        "steps": results,
        "incremental_vs_full": round(inc_s / full_s, 3),
        "incremental_equals_full_refresh": not differing,
        "differing_tables": differing,
        "mart_rows": pg_rows,
        "spark_mart_rows_equal": not spark_differing if spark_rows else None,
        "full_models_s": full_models,
        "incremental_models_s": inc_models,
    }
    if "spark" in engines:
        report["spark_incremental_vs_full"] = round(
            results["spark incremental"]["seconds"] / results["spark full"]["seconds"], 3
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"marts-{stamp}.json").write_text(json.dumps(report, indent=2))
    lines = [
        (
            f"\n**Marts on {args.creators:,} creators, {before['offers']:,} offers, {before['analytics_events']:,} "
            f"analytics events, {before['audit_logs']:,} audit rows; +{new_events:,} new events (1%)**\n"
        ),
        "| step | wall s | peak RSS MB (process tree) | peak PostgreSQL USS MB |",
        "|---|---:|---:|---:|",
    ]
    for name_, r in results.items():
        lines.append(f"| {name_} | {r['seconds']} | {r['peak_rss_mb']} | {r['peak_server_uss_mb']} |")
    lines += [
        "",
        (
            f"PostgreSQL incremental / full = {report['incremental_vs_full']}; incremental models and marts identical "
            f"to a full refresh: {'yes' if not differing else 'NO: ' + ', '.join(differing)}"
        ),
    ]
    if "spark" in engines:
        e = results["lake export (full)"]
        lines += [
            (
                f"Spark incremental / full = {report['spark_incremental_vs_full']}; Spark marts' row counts equal "
                f"PostgreSQL's: {'yes' if not spark_differing else 'NO: ' + ', '.join(spark_differing)}"
            ),
            (
                f"Lake export (full): {e.get('rows', 0):,} rows, {e.get('bytes', 0) / 2**20:.0f} MB, "
                f"{e.get('rows_per_s')} rows/s, {e.get('mb_per_s')} MB/s; the load beside it: {json.dumps(e['load'])}"
            ),
        ]
    lines += ["", "| model | full s | incremental s |", "|---|---:|---:|"]
    for model in sorted(full_models, key=lambda m: -full_models[m]):
        lines.append(f"| {model} | {full_models[model]} | {inc_models.get(model, '')} |")
    text = "\n".join(lines)
    (args.out / f"marts-{stamp}.md").write_text(text)
    print(text)
    if differing:
        raise SystemExit(f"incremental build differs from a full refresh in: {', '.join(differing)}")
    if spark_differing:
        raise SystemExit(f"Spark marts' row counts differ from PostgreSQL's in: {', '.join(spark_differing)}")


if __name__ == "__main__":
    main()
