"""`make bench` (second part): build every mart on a large database, in full and incrementally.

    python scripts/bench/marts.py --creators 1000000 --analytics-events 10000000 [--seed 42]

1. Demo data (creators, ≈3× offers), Phase 1 migration, the events since go-live topped up with
   profile views to exactly --analytics-events analytics rows, and a backfill (so the audit trail
   holds the trust-tier changes). Not timed as part of the marts.
2. Full build of all marts and their upstream models (`csinfra marts --full-refresh --skip-tests`).
3. 1% new analytics events (copies of a deterministic 1% sample, new ids, created in the day after
   the newest event), then the incremental build (`csinfra marts --skip-tests`).
4. A full rebuild on the same data; the incremental models and every mart must be identical to the
   incremental build's (row-level md5 per table), which the report states.
Every build uses the same --as-of, so that "now" does not differ between them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from run import drop, recreate

from creatorstays_infra import settings
from creatorstays_infra.ops import demo
from creatorstays_infra.ops.marts import MART_MODELS
from creatorstays_infra.ops.migrations import Options, Runner, load_migrations

INCREMENTAL_MODELS = (
    "int_funnel_milestones_recorded",
    "int_creator_profile_views_daily",
    "int_creator_trust_tier_changes",
)
AS_OF = "2026-11-27 00:00:00"

NEW_EVENTS = """
with bounds as (
    select max("createdAt") as newest, min("createdAt") as oldest from analytics_events
)
insert into analytics_events ("id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
select 'cn' || substr(md5('bench-new:' || e."id"), 1, 23), e."actorType", e."actorId", e."eventType", e."eventData",
       e."sessionId",
       (b.newest + interval '1 second'
        + (extract(epoch from e."createdAt" - b.oldest) / nullif(extract(epoch from b.newest - b.oldest), 0))
          * interval '1 day')::timestamp(3)
from analytics_events as e, bounds as b
where (hashtext(e."id") & 2147483647) % 100 = 0
"""


def cli(target, *args: str) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["DATABASE_URL"] = psycopg.conninfo.make_conninfo("", **target.effective())
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "creatorstays_infra", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"csinfra {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    try:
        return seconds, json.loads(proc.stdout)
    except json.JSONDecodeError:
        return seconds, {"output": proc.stdout[-500:]}


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


def counts(target) -> dict[str, int]:
    with target.connect(autocommit=True) as conn:
        return {
            t: conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier("public", t))
            ).fetchone()[0]
            for t in ("creator_profiles", "offers", "collaborations", "analytics_events", "audit_logs")
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--creators", type=int, default=1_000_000)
    ap.add_argument("--analytics-events", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = ap.parse_args()

    name = f"csinfra_bench_marts_{args.creators}"
    target = recreate(name)
    steps: dict[str, float] = {}
    try:
        print(f"== marts: {args.creators:,} creators, {args.analytics_events:,} analytics events", flush=True)
        t = time.monotonic()
        with target.connect() as conn:
            demo.generate(conn, "public", creators=args.creators, seed=args.seed)
            Runner(conn, Options(app_schema="public")).up(load_migrations()[0])
        steps["demo data + migration"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        with target.connect() as conn:
            demo.generate_events(conn, "public", seed=args.seed, analytics_events=args.analytics_events)
        steps["demo events"] = round(time.monotonic() - t, 1)
        steps["backfill"] = round(cli(target, "backfill", "--json")[0], 1)
        with target.connect(autocommit=True) as conn:
            conn.execute("vacuum (analyze)")
        before = counts(target)
        print(f"  data: {before} ({steps})", flush=True)

        full_s, _ = cli(target, "marts", "--full-refresh", "--skip-tests", "--as-of", AS_OF, "--json")
        full_models = model_timings()
        print(f"  full build: {full_s:.1f} s", flush=True)

        with target.connect() as conn:
            new_events = conn.execute(NEW_EVENTS).rowcount
            conn.commit()
        with target.connect(autocommit=True) as conn:
            conn.execute("analyze analytics_events")
        inc_s, _ = cli(target, "marts", "--skip-tests", "--as-of", AS_OF, "--json")
        inc_models = model_timings()
        inc_digests = table_digests(target)
        print(f"  +{new_events:,} events, incremental build: {inc_s:.1f} s", flush=True)

        refull_s, _ = cli(target, "marts", "--full-refresh", "--skip-tests", "--as-of", AS_OF, "--json")
        refull_digests = table_digests(target)
        print(f"  full rebuild on the same data: {refull_s:.1f} s", flush=True)
        tests_s, tests_out = cli(target, "marts", "--as-of", AS_OF, "--json")
        print(f"  incremental build + every data test: {tests_s:.1f} s", flush=True)
    finally:
        if not args.keep:
            drop(name)

    differing = sorted(t for t in inc_digests if inc_digests[t] != refull_digests[t])
    report = {
        "creators": args.creators,
        "rows": before,
        "new_events": new_events,
        "setup_seconds": steps,
        "full_build_s": round(full_s, 1),
        "incremental_build_s": round(inc_s, 1),
        "incremental_vs_full": round(inc_s / full_s, 2),
        "full_rebuild_after_new_events_s": round(refull_s, 1),
        "build_with_tests_s": round(tests_s, 1),
        "tests": tests_out.get("dbt"),
        "incremental_equals_full_refresh": not differing,
        "differing_tables": differing,
        "full_models_s": full_models,
        "incremental_models_s": inc_models,
    }
    args.out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"marts-{stamp}.json").write_text(json.dumps(report, indent=2))
    lines = [
        (
            f"\n**Marts on {args.creators:,} creators, {before['offers']:,} offers, {before['analytics_events']:,} analytics "
            f"events, {before['audit_logs']:,} audit rows**\n"
        ),
        "| build | wall s |",
        "|---|---:|",
        f"| full (all marts and upstream models, --full-refresh) | {full_s:.1f} |",
        f"| incremental after {new_events:,} new events (1%) | {inc_s:.1f} |",
        f"| full rebuild on the same data | {refull_s:.1f} |",
        f"| incremental + all data tests (`csinfra marts`) | {tests_s:.1f} |",
        "",
        (
            f"incremental / full = {report['incremental_vs_full']}; incremental models and marts identical to a full "
            f"refresh: {'yes' if not differing else 'NO: ' + ', '.join(differing)}"
        ),
        "",
        "| model | full s | incremental s |",
        "|---|---:|---:|",
    ]
    for model in sorted(full_models, key=lambda m: -full_models[m]):
        lines.append(f"| {model} | {full_models[model]} | {inc_models.get(model, '')} |")
    text = "\n".join(lines)
    (args.out / f"marts-{stamp}.md").write_text(text)
    print(text)
    if differing:
        raise SystemExit(f"incremental build differs from a full refresh in: {', '.join(differing)}")


if __name__ == "__main__":
    main()
