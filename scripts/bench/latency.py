"""`make bench-latency`: what the application feels while the backfill runs.

    python scripts/bench/latency.py --creators 100000 [--clients 4] [--rate 200] [--idle-seconds 30]

On the application's real schema (demo data, the migration applied, nothing backfilled yet), an
application-like write load runs with pgbench (`scripts/bench/app_load.pgbench`: each transaction updates
one random creator and one random offer; `--clients` connections, `--rate` transactions per second in
all): first alone, then beside each backfill variant, each on its own clone of the same template:

* the backfill as shipped (batches sized by time, rows locked with SKIP LOCKED);
* the old fixed-size setting (`--batch-size 50000`), for comparison.

Reported per phase: the application's transaction latency (p50, p99, max, count over 200 ms, from
pgbench's per-transaction log), and the lock waits measured directly: a sampler polls
pg_stat_activity every few milliseconds for application sessions waiting on a lock that a backfill
session holds (`pg_blocking_pids`), and records each wait from first to last sight.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from sampling import IntervalSampler

from creatorstays_infra.ops import database, demo, embedded
from creatorstays_infra.ops.migrations import Options, Runner, load_migrations

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "app_load.pgbench"
SAMPLE_SECONDS = 0.005


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    waits_ms: list[float] = field(default_factory=list)  # application waits on a backfill's lock
    notes: dict = field(default_factory=dict)

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [0.0] * 99
        return {
            "phase": self.name,
            "seconds": round(self.seconds, 1),
            "transactions": len(lat),
            "p50_ms": round(q[49], 1),
            "p99_ms": round(q[98], 1),
            "max_ms": round(max(lat, default=0.0), 1),
            "over_200ms": sum(1 for v in lat if v > 200),
            "lock_waits_on_backfill": len(self.waits_ms),
            "longest_lock_wait_ms": round(max(self.waits_ms, default=0.0), 1),
            "lock_waits_over_200ms": sum(1 for v in self.waits_ms if v > 200),
            **self.notes,
        }


def admin() -> database.Target:
    return database.resolve().with_dbname("postgres")


def recreate(name: str, template: str | None = None) -> database.Target:
    with admin().connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("create database {}").format(sql.Identifier(name))
            if template is None
            else sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return admin().with_dbname(name)


def build_template(creators: int, seed: int) -> tuple[str, int]:
    name = f"csinfra_bench_latency_tpl_{creators}"
    target = recreate(name)
    with target.connect() as conn:
        demo.generate(conn, "public", creators=creators, seed=seed)
        Runner(conn, Options(app_schema="public")).up(load_migrations()[0])
        conn.execute("create schema csinfra_bench")
        conn.execute("""create table csinfra_bench.app_ids as
                        select row_number() over (order by c.id) as n, c.id as creator_id,
                               (select o.id from offers o where o."creatorProfileId" = c.id order by o.id limit 1) as offer_id
                        from creator_profiles c""")
        conn.execute("delete from csinfra_bench.app_ids where offer_id is null")
        conn.execute(
            "create table csinfra_bench.ids as select row_number() over (order by n) as n, creator_id, offer_id "
            "from csinfra_bench.app_ids"
        )
        conn.execute("drop table csinfra_bench.app_ids")
        conn.execute("alter table csinfra_bench.ids rename to app_ids")
        conn.execute("alter table csinfra_bench.app_ids add primary key (n)")
        n = conn.execute("select count(*) from csinfra_bench.app_ids").fetchone()[0]
        conn.commit()
    with target.connect(autocommit=True) as conn:
        conn.execute("vacuum (freeze, analyze)")
    return name, n


class LockWaitSampler(IntervalSampler):
    """Application sessions (pgbench's) waiting on a lock a backfill session (dbt's) holds, wait by wait."""

    QUERY = """select w.pid, w.query_start,
                      b.state || ': ' || left(regexp_replace(b.query, '^\\s*/\\*.*?\\*/\\s*', ''), 160)
               from pg_stat_activity w
               join pg_stat_activity b on b.pid = any(pg_blocking_pids(w.pid)) and b.application_name like 'dbt%%'
               where w.application_name = 'pgbench' and w.wait_event_type = 'Lock'"""

    def __init__(self, target: database.Target):
        super().__init__(target, SAMPLE_SECONDS)
        self.waits_ms: list[float] = []
        self.longest_blocker: str = ""  # what the blocking backfill session was running, for the longest wait

    def sample(self, conn) -> dict:
        return {
            (pid, str(start)): " ".join((blocker or "").split())
            for pid, start, blocker in conn.execute(self.QUERY)
        }

    def interval_closed(self, key: tuple, seconds: float, detail: str) -> None:
        if seconds * 1000 > max(self.waits_ms, default=0.0):
            self.longest_blocker = detail
        self.waits_ms.append(seconds * 1000)


def start_load(target: database.Target, ncreators: int, clients: int, rate: int, seconds: int, log_dir: Path):
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("pgbench_log*"):
        old.unlink()
    conninfo = psycopg.conninfo.make_conninfo("", **target.effective())
    cmd = [
        embedded.pg_tool("pgbench"),
        "-n",
        "-c",
        str(clients),
        "-j",
        str(min(clients, 2)),
        "-R",
        str(rate),
        "-T",
        str(seconds),
        "-D",
        f"ncreators={ncreators}",
        "-f",
        str(SCRIPT),
        "-l",
        "--log-prefix",
        str(log_dir / "pgbench_log"),
        conninfo,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGAPPNAME"] = "pgbench"
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_latencies(log_dir: Path) -> list[float]:
    """pgbench's per-transaction log: client, transaction, latency (µs), script, epoch s, epoch µs[, lag]."""
    out = []
    for path in log_dir.glob("pgbench_log*"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                out.append(int(parts[2]) / 1000.0)
    return out


def run_phase(
    name: str, target: database.Target, ncreators: int, args, backfill_args: list[str] | None
) -> Phase:
    log_dir = args.out / "pgbench" / name.replace(" ", "_")
    phase = Phase(name)
    sampler = LockWaitSampler(target)
    duration = args.idle_seconds if backfill_args is None else 3600
    load = start_load(target, ncreators, args.clients, args.rate, duration, log_dir)
    sampler.start()
    time.sleep(2)  # the load settles before anything else starts
    t0 = time.monotonic()
    if backfill_args is None:
        load.wait()
    else:
        env = {k: v for k, v in os.environ.items() if k not in database.SELECTING_PG_VARS}
        env["DATABASE_URL"] = psycopg.conninfo.make_conninfo("", **target.effective())
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "creatorstays_infra",
                "backfill",
                "--write-back-only",
                "--json",
                *backfill_args,
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            load.terminate()
            raise SystemExit(f"{name}: backfill failed:\n{result.stderr[-3000:]}")
        summary = json.loads(result.stdout)
        phase.notes = {
            "backfill_s": summary["seconds"],
            "written": sum(
                m["written"] + m["rewrittenAfterConcurrentChange"] for m in summary["models"].values()
            ),
            "left_locked": sum(m["skippedStillLocked"] for m in summary["models"].values()),
            "batches": sum(m["batches"] for m in summary["models"].values()),
        }
        load.terminate()
        load.wait()
    phase.seconds = time.monotonic() - t0
    sampler.stop_event.set()
    sampler.join()
    phase.latencies_ms = read_latencies(log_dir)
    phase.waits_ms = sampler.waits_ms
    if sampler.longest_blocker:
        phase.notes["longest_wait_blocked_by"] = sampler.longest_blocker
    print(f"  {name}: {json.dumps(phase.summary())}", flush=True)
    return phase


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=int, default=200, help="application transactions per second, in all")
    parser.add_argument("--idle-seconds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args()
    print(
        f"latency under load, {args.creators:,} creators, {args.clients} clients at {args.rate} tx/s",
        flush=True,
    )
    template, ncreators = build_template(args.creators, args.seed)
    run_db = f"{template}_run"
    phases = []
    try:
        target = recreate(run_db, template)
        phases.append(run_phase("idle (no backfill)", target, ncreators, args, None))
        target = recreate(run_db, template)
        phases.append(
            run_phase("csinfra backfill (batches sized by time, SKIP LOCKED)", target, ncreators, args, [])
        )
        target = recreate(run_db, template)
        phases.append(
            run_phase(
                "csinfra backfill --batch-size 50000 (the old fixed batches)",
                target,
                ncreators,
                args,
                ["--batch-size", "50000"],
            )
        )
    finally:
        with admin().connect(autocommit=True) as conn:
            for name in (run_db, template):
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    args.out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    rows = [p.summary() for p in phases]
    (args.out / f"latency_{args.creators}_{stamp}.json").write_text(json.dumps(rows, indent=2))
    lines = [
        (
            f"| app writes ({args.clients} clients, {args.rate} tx/s), {args.creators:,} creators | backfill s | p50 ms "
            "| p99 ms | max ms | tx over 200 ms | waits on the backfill's locks: count / longest ms / over 200 ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r.get('backfill_s', '')} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | "
            f"{r['over_200ms']:,} of {r['transactions']:,} | {r['lock_waits_on_backfill']} / "
            f"{r['longest_lock_wait_ms']} / {r['lock_waits_over_200ms']} |"
        )
    text = "\n".join(lines)
    (args.out / f"latency_{args.creators}_{stamp}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
