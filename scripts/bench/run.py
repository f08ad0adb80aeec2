"""`make bench`: the backfill against the hand-written single UPDATE (the floor) and a row-by-row loop
(the peer), on the same demo data, in one run. Each variant starts from an identical clone of one
migrated template database; every variant's result is fingerprinted and must equal the others'.

    python scripts/bench/run.py --sizes 100000 1000000 [--seed 42] [--out bench-results]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))  # the independent oracle, for the row-by-row peer

import oracle
from creatorstays_infra.ops import database, demo
from creatorstays_infra.ops.migrations import Options, Runner, load_migrations

BENCH = ROOT / "scripts" / "bench"


@dataclass
class Measure:
    variant: str
    seconds: float
    rows_written: int | None = None
    notes: dict = field(default_factory=dict)


def admin() -> database.Target:
    return database.resolve().with_dbname("postgres")


def recreate(name: str, template: str | None = None) -> database.Target:
    with admin().connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        if template:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return admin().with_dbname(name)


def drop(name: str) -> None:
    with admin().connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def build_template(n: int, seed: int) -> str:
    name = f"csinfra_bench_tpl_{n}"
    target = recreate(name)
    t0 = time.monotonic()
    with target.connect() as conn:
        summary = demo.generate(conn, "public", creators=n, seed=seed)
        Runner(conn, Options(app_schema="public")).up(load_migrations()[0])
    with target.connect(autocommit=True) as conn:
        conn.execute("vacuum (freeze, analyze)")  # every variant starts from the same settled pages
    print(f"  template {name}: {summary.rows} in {time.monotonic() - t0:.1f} s", flush=True)
    return name


def fingerprint(target: database.Target, creators_only: bool = False, first: int | None = None) -> dict:
    """md5 of every derived field; `first` limits the creators to the first N by id (a sampled peer)."""
    with target.connect(autocommit=True) as conn:
        out = {
            "creators": conn.execute(
                """select md5(string_agg(concat_ws('|', id, "trustTier", "readinessState", "readinessBlockers"::text,
                   "profileCompleteness", "firstOfferReceivedAt", "firstOfferRespondedAt", "firstCollabCompletedAt"), ',' order by id))
               from (select * from creator_profiles order by id limit %s) as c""",
                (first,),
            ).fetchone()[0]
        }
        if not creators_only:
            out["offers"] = conn.execute(
                """select md5(string_agg(concat_ws('|', id, "totalValueCents", "isValid", "validationErrors"::text,
                       "originalTermsSnapshot" is not null), ',' order by id)) from offers"""
            ).fetchone()[0]
    return out


def row_versions(target: database.Target) -> str:
    with target.connect(autocommit=True) as conn:
        return conn.execute(
            "select md5((select string_agg(xmin::text, ',' order by id) from creator_profiles) || "
            "(select string_agg(xmin::text, ',' order by id) from offers))"
        ).fetchone()[0]


def run_floor(target: database.Target) -> Measure:
    parts = {}
    written = 0
    t0 = time.monotonic()
    with target.connect() as conn:
        for table in ("creators", "offers"):
            t = time.monotonic()
            with conn.transaction():
                written += conn.execute((BENCH / f"floor_{table}.sql").read_text()).rowcount
            parts[table] = round(time.monotonic() - t, 2)
    return Measure(
        "floor: one hand-written UPDATE per table", time.monotonic() - t0, written, {"per_table_s": parts}
    )


def run_cli(target: database.Target, *args: str) -> tuple[float, dict, int]:
    """Run `csinfra backfill --json`, sampling the peak RSS of the csinfra process and of its dbt child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["DATABASE_URL"] = psycopg.conninfo.make_conninfo("", **target.effective())
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "creatorstays_infra", "backfill", "--json", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peaks = {"csinfra": 0, "dbt": 0}
    stop = threading.Event()

    def sample():
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                peaks["csinfra"] = max(peaks["csinfra"], p.memory_info().rss)
                for child in p.children(recursive=True):
                    peaks["dbt"] = max(peaks["dbt"], child.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, errs = proc.communicate()
    seconds = time.monotonic() - t0
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"csinfra backfill failed:\n{errs[-3000:]}")
    summary = json.loads(out)
    return (
        seconds,
        {"summary": summary, "peak_rss_mb": {k: round(v / 2**20) for k, v in peaks.items()}},
        proc.returncode,
    )


def run_ours(target: database.Target, label: str, *args: str) -> Measure:
    seconds, info, _ = run_cli(target, *args)
    models = info["summary"]["models"]
    written = sum(m["written"] + m["rewrittenAfterConcurrentChange"] for m in models.values())
    notes = {
        "peak_rss_mb": info["peak_rss_mb"],
        "per_model": {
            k: {
                "s": m["seconds"],
                "written": m["written"],
                "audit": m["auditRows"],
                "derive_ms": m["deriveMs"],
                "batches": m["batches"],
                "left_locked": m["skippedStillLocked"],
                "rewritten_fresh": m["rewrittenAfterConcurrentChange"],
                "over_time": m["batchesOverTime"],
                "lock_timeouts": m["lockTimeouts"],
            }
            for k, m in models.items()
        },
    }
    return Measure(label, seconds, written, notes)


PEER_COLUMNS = """
select c.id, c."displayName", c.handle, c.bio, c.niches, c.deliverables, c."minimumFlatFee", c."avatarUrl",
       c."instagramConnected", c."tiktokConnected",
       least(c."firstOfferReceivedAt", (select min(o."createdAt") from offers o
             where o."creatorProfileId" = c.id and o.status is distinct from 'draft')) as received,
       least(c."firstOfferRespondedAt", (select min(o."respondedAt") from offers o where o."creatorProfileId" = c.id)) as responded,
       least(c."firstCollabCompletedAt", (select min(k."completedAt") from collaborations k
             where k."creatorId" = c.id and k.status = 'completed')) as completed
from creator_profiles c
"""
# The kinder peer reads every creator in one query, each first-time moment pre-aggregated once (a
# correlated subquery per creator would scan collaborations, which has no index on "creatorId", per row).
PEER_COLUMNS_STREAMED = """
select c.id, c."displayName", c.handle, c.bio, c.niches, c.deliverables, c."minimumFlatFee", c."avatarUrl",
       c."instagramConnected", c."tiktokConnected",
       least(c."firstOfferReceivedAt", o.received), least(c."firstOfferRespondedAt", o.responded),
       least(c."firstCollabCompletedAt", k.completed)
from creator_profiles c
left join (select "creatorProfileId", min("createdAt") filter (where status is distinct from 'draft') as received,
                  min("respondedAt") as responded
           from offers group by 1) o on o."creatorProfileId" = c.id
left join (select "creatorId", min("completedAt") as completed from collaborations where status = 'completed'
           group by 1) k on k."creatorId" = c.id
"""
PEER_UPDATE = """update creator_profiles set "trustTier" = %s, "readinessState" = %s, "readinessBlockers" = %s,
       "profileCompleteness" = %s, "firstOfferReceivedAt" = %s, "firstOfferRespondedAt" = %s,
       "firstCollabCompletedAt" = %s where id = %s"""


def _peer_update(writer, row) -> None:
    (cid, dn, handle, bio, niches, deliv, fee, avatar, ig, tt, received, responded, completed) = row
    s = oracle.creator(
        {
            "displayName": dn,
            "handle": handle,
            "bio": bio,
            "niches": niches,
            "deliverables": deliv,
            "minimumFlatFee": fee,
            "avatarUrl": avatar,
            "instagramConnected": ig,
            "tiktokConnected": tt,
        },
        completed,
    )
    writer.execute(
        PEER_UPDATE,
        (
            s["trustTier"],
            s["readinessState"],
            psycopg.types.json.Jsonb(s["readinessBlockers"]),
            s["profileCompleteness"],
            received,
            responded,
            completed,
            cid,
        ),
    )


def run_peer(target: database.Target, sample: int | None) -> Measure:
    """The application's original backfill: for each creator id, read the creator (with what its first-time
    moments need, through the application's indexes), compute the rules in application code, one UPDATE.
    Two round trips per creator, autocommit, as a loop calling a per-creator function does. On the
    application's real schema `collaborations` has no index on "creatorId", so each read scans it: with
    `sample`, the first N creators (by id) are run and the time is extrapolated to all of them."""
    t0 = time.monotonic()
    n = 0
    with target.connect(autocommit=True) as conn:
        total = conn.execute("select count(*) from creator_profiles").fetchone()[0]
        ids = [r[0] for r in conn.execute("select id from creator_profiles order by id limit %s", (sample,))]
        one = PEER_COLUMNS + " where c.id = %s"
        for cid in ids:
            _peer_update(conn, conn.execute(one, (cid,)).fetchone())
            n += 1
    seconds = time.monotonic() - t0
    if n < total:
        return Measure(
            f"peer: row-by-row loop, per creator one read and one UPDATE ({n:,} run, time extrapolated)",
            seconds * total / n,
            total,
            {"measured_s": round(seconds, 2), "measured_creators": n},
        )
    return Measure("peer: row-by-row loop, per creator one read and one UPDATE", seconds, n)


def run_peer_streamed(target: database.Target) -> Measure:
    """A kinder peer: all creators read in one streamed query, still one UPDATE per creator."""
    t0 = time.monotonic()
    n = 0
    with (
        target.connect() as reader,
        target.connect(autocommit=True) as writer,
        reader.cursor(name="peer") as cur,
    ):
        cur.itersize = 2000
        cur.execute(PEER_COLUMNS_STREAMED)
        for row in cur:
            _peer_update(writer, row)
            n += 1
    return Measure("peer, streamed reads: one UPDATE per creator", time.monotonic() - t0, n)


def run_analytics_writer(target: database.Target, events: int = 200_000) -> list[Measure]:
    """Events/s of the COPY batch writer against one log_analytics_event call per event."""
    from creatorstays_infra import AnalyticsBatchWriter, log_profile_viewed

    t0 = time.monotonic()
    with AnalyticsBatchWriter(target.connect(autocommit=True), batch_size=10_000) as writer:
        for i in range(events):
            writer.add(
                "host", f"h{i % 5000}", "profile_viewed", {"creatorProfileId": f"c{i}", "source": "search"}
            )
    batch_s = time.monotonic() - t0
    single = 5_000
    t0 = time.monotonic()
    with target.connect(autocommit=True) as conn:
        for i in range(single):
            log_profile_viewed(conn, f"h{i % 5000}", f"c{i}", "search")
    single_s = time.monotonic() - t0
    return [
        Measure(
            f"analytics: AnalyticsBatchWriter (COPY), {events:,} events",
            batch_s,
            writer.written,
            {"events_per_s": round(writer.written / batch_s)},
        ),
        Measure(
            f"analytics: log_analytics_event, one call per event, {single:,} events",
            single_s,
            single,
            {"events_per_s": round(single / single_s)},
        ),
    ]


def floor_sample(tpl: str, run_db: str, first: int) -> dict:
    """The floor's result for the first N creators (to compare with a sampled peer)."""
    target = recreate(run_db, tpl)
    run_floor(target)
    return fingerprint(target, creators_only=True, first=first)


def median_of(runs: list[Measure]) -> Measure:
    """The run with the median time (the upper one of an even count), every run's time in its notes."""
    chosen = sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]
    if len(runs) > 1:
        chosen.notes["runs_s"] = [round(m.seconds, 2) for m in runs]
    return chosen


def bench_size(n: int, seed: int, skip_peer: bool, peer_sample: int | None = None, repeat: int = 1) -> dict:
    print(f"== {n:,} creators", flush=True)
    tpl = build_template(n, seed)
    results: list[Measure] = []
    prints = {}
    run_db = f"{tpl}_run"
    try:
        # floor, full and no-change rerun, `repeat` times each (alternating, each on a fresh clone): the
        # medians are reported, with every run's time and the range of the paired ratios
        floors, fulls, reruns = [], [], []
        for i in range(repeat):
            target = recreate(run_db, tpl)
            floors.append(run_floor(target))
            if i == 0:
                prints["floor"] = fingerprint(target)
            print(f"  {floors[-1].variant}: {floors[-1].seconds:.1f} s", flush=True)

            target = recreate(run_db, tpl)
            fulls.append(
                run_ours(
                    target,
                    "csinfra backfill --write-back-only: full (creators + offers, audit rows, summary)",
                    "--write-back-only",
                )
            )
            if i == 0:
                prints["ours"] = fingerprint(target)
            print(f"  {fulls[-1].variant}: {fulls[-1].seconds:.1f} s", flush=True)
            versions = row_versions(target)
            reruns.append(
                run_ours(
                    target, "csinfra backfill --write-back-only: second run, no changes", "--write-back-only"
                )
            )
            reruns[-1].notes["row_versions_unchanged"] = row_versions(target) == versions
            print(f"  {reruns[-1].variant}: {reruns[-1].seconds:.1f} s", flush=True)
        results.extend(median_of(runs) for runs in (floors, fulls, reruns))
        results[2].notes["row_versions_unchanged"] = all(r.notes["row_versions_unchanged"] for r in reruns)
        paired = {
            "full_vs_floor": [f.seconds / fl.seconds for f, fl in zip(fulls, floors, strict=True)],
            "rerun_vs_floor": [r.seconds / fl.seconds for r, fl in zip(reruns, floors, strict=True)],
        }

        target = recreate(run_db, tpl)
        results.append(run_ours(target, "csinfra backfill --only creators", "--only", "creators"))
        prints["ours_creators"] = fingerprint(target, creators_only=True)
        print(f"  {results[-1].variant}: {results[-1].seconds:.1f} s", flush=True)

        if not skip_peer:
            target = recreate(run_db, tpl)
            results.append(run_peer(target, peer_sample))
            sampled = results[-1].notes.get("measured_creators")
            prints["peer"] = fingerprint(target, creators_only=True, first=sampled)
            prints["floor_peer_sample"] = (
                prints["floor"] if sampled is None else floor_sample(tpl, run_db, sampled)
            )
            print(f"  {results[-1].variant}: {results[-1].seconds:.1f} s", flush=True)
            target = recreate(run_db, tpl)
            results.append(run_peer_streamed(target))
            prints["peer_streamed"] = fingerprint(target, creators_only=True)
            print(f"  {results[-1].variant}: {results[-1].seconds:.1f} s", flush=True)

        results.extend(run_analytics_writer(target))
        print(f"  {results[-2].variant}: {results[-2].notes['events_per_s']:,} events/s", flush=True)
    finally:
        drop(run_db)
        drop(tpl)
    same = (
        prints["floor"] == prints["ours"]
        and prints["ours_creators"]["creators"] == prints["floor"]["creators"]
    )
    peer_same = (
        "peer" not in prints or prints["peer"]["creators"] == prints["floor_peer_sample"]["creators"]
    ) and (
        "peer_streamed" not in prints or prints["peer_streamed"]["creators"] == prints["floor"]["creators"]
    )
    floor = results[0].seconds
    full, rerun, creators_only = results[1], results[2], results[3]
    ratios = {
        "full_vs_floor": round(full.seconds / floor, 2),
        "rerun_vs_floor": round(rerun.seconds / floor, 2),
    }
    if repeat > 1:  # each run against the floor measured just before it
        for name, values in paired.items():
            ratios[f"{name}_paired_range"] = f"{min(values):.2f}..{max(values):.2f}"
    if not skip_peer:
        ratios["peer_vs_ours_creators"] = round(results[4].seconds / creators_only.seconds, 1)
        ratios["streamed_peer_vs_ours_creators"] = round(results[5].seconds / creators_only.seconds, 1)
    return {
        "creators": n,
        "identical_results": same,
        "peer_identical_creators": peer_same,
        "ratios": ratios,
        "variants": [
            {"variant": m.variant, "seconds": round(m.seconds, 2), "rows_written": m.rows_written, **m.notes}
            for m in results
        ],
    }


def markdown(report: list[dict]) -> str:
    lines = []
    for r in report:
        lines.append(
            f"\n**{r['creators']:,} creators** (≈{3 * r['creators']:,} offers; identical results across variants: "
            f"{'yes' if r['identical_results'] and r['peer_identical_creators'] else 'NO'})\n"
        )
        lines.append("| variant | wall s | rows written | peak RSS csinfra / dbt MB | note |")
        lines.append("|---|---:|---:|---:|---|")
        for v in r["variants"]:
            rss = v.get("peak_rss_mb")
            rss_text = f"{rss['csinfra']} / {rss['dbt']}" if rss else ""
            written = v["rows_written"] if v["rows_written"] is not None else ""
            note = (
                f"{v['events_per_s']:,} events/s"
                if "events_per_s" in v
                else ("row versions unchanged" if v.get("row_versions_unchanged") else "")
            )
            if v.get("runs_s"):
                note = "; ".join(
                    x for x in (note, "median of " + ", ".join(f"{t:.1f}" for t in v["runs_s"])) if x
                )
            lines.append(f"| {v['variant']} | {v['seconds']:.1f} | {written} | {rss_text} | {note} |")
        lines.append("")
        lines.append("ratios: " + ", ".join(f"{k} = {v}" for k, v in r["ratios"].items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--skip-peer", action="store_true", help="skip the row-by-row peers (slow at large sizes)"
    )
    ap.add_argument(
        "--peer-sample",
        type=int,
        default=20_000,
        help="run the row-by-row peer on this many creators and extrapolate (0: all)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="run the floor, the full backfill and the no-change rerun this many times and report medians "
        "(at sizes up to --repeat-max-size; larger sizes run once)",
    )
    ap.add_argument("--repeat-max-size", type=int, default=200_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = ap.parse_args()
    report = [
        bench_size(
            n,
            args.seed,
            args.skip_peer,
            args.peer_sample or None,
            args.repeat if n <= args.repeat_max_size else 1,
        )
        for n in args.sizes
    ]
    args.out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"backfill-{stamp}.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    (args.out / f"backfill-{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
