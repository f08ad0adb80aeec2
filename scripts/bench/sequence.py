"""`make bench-sequence`: the deployment guide's sequence on the application's real schema, timed, with the
locks each step takes on the application's tables.

    python scripts/bench/sequence.py --creators 100000 [--seed 42] [--no-events] [--out bench-results]

Builds a fresh database from scripts/app_schema/pre_phase1.sql with demo data (and, after the migration,
the demo audit and analytics events), then runs, each step as its own process, exactly as an operator
would:

    csinfra migrate up → dbt run → dbt test → dbt run (no changes) → csinfra migrate down →
    csinfra migrate up → csinfra migrate restore-archive → dbt run → dbt test

While a step runs, a separate connection samples pg_locks every few milliseconds and records, for every
application table, each table-level lock mode the step's sessions (client backends: not autovacuum, which
the writes wake up) held and for how long (the longest continuous hold seen, to the sampling interval).
Sampling can miss a lock held for less than one interval; the DDL steps hold theirs to the end of their
single transaction, and the backfill's batches last longer than an interval.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from sampling import IntervalSampler

from creatorstays_infra.ops import database, demo
from creatorstays_infra.ops.dbt import dbt_command, dbt_env

ROOT = Path(__file__).resolve().parents[2]

APP_TABLES = (
    "users",
    "host_profiles",
    "properties",
    "creator_profiles",
    "offers",
    "collaborations",
    "audit_logs",
    "analytics_events",
    "_prisma_migrations",
)
MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
SAMPLE_SECONDS = 0.003


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    # table -> mode -> longest continuous hold seen (seconds)
    locks: dict[str, dict[str, float]] = field(default_factory=dict)
    output: str = ""


class LockSampler(IntervalSampler):
    """Polls pg_locks for locks other sessions hold on the application's tables."""

    QUERY = """select l.pid, c.relname, l.mode, l.granted
               from pg_locks l
               join pg_class c on c.oid = l.relation
               join pg_stat_activity a on a.pid = l.pid
               where l.locktype = 'relation' and a.backend_type = 'client backend'
                 and c.relnamespace = %s::regnamespace and c.relname = any(%s) and l.pid <> pg_backend_pid()"""

    def __init__(self, target: database.Target, app_schema: str):
        super().__init__(target, SAMPLE_SECONDS)
        self.app_schema = app_schema
        # (table, mode) -> longest hold that ended (or was still going at the end)
        self.longest: dict[tuple[str, str], float] = {}

    def sample(self, conn) -> dict:
        return {
            (pid, rel, mode): None
            for pid, rel, mode, granted in conn.execute(self.QUERY, (self.app_schema, list(APP_TABLES)))
            if granted
        }

    def interval_closed(self, key: tuple, seconds: float, detail: None) -> None:
        _, rel, mode = key
        self.longest[(rel, mode)] = max(self.longest.get((rel, mode), 0.0), seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for (rel, mode), held in self.longest.items():
            out.setdefault(rel, {})[mode] = held
        return out


def run_step(name: str, command: list[str], env: dict, target: database.Target) -> Step:
    sampler = LockSampler(target, "public")
    sampler.start()
    t0 = time.monotonic()
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - t0
    sampler.stop_event.set()
    sampler.join()
    if result.returncode != 0:
        raise SystemExit(
            f"{name} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    step = Step(name, seconds, sampler.summary(), result.stdout)
    print(f"  {name:<32} {seconds:7.1f} s   {strongest(step.locks)}", flush=True)
    return step


def _held(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def strongest(locks: dict[str, dict[str, float]]) -> str:
    """Per table, every mode held, strongest first, with its longest hold."""
    parts = []
    for table in APP_TABLES:
        if table in locks:
            modes = sorted(locks[table], key=MODES.index, reverse=True)
            parts.append(
                f"{table}: " + ", ".join(f"{m.removesuffix('Lock')} {_held(locks[table][m])}" for m in modes)
            )
    return "; ".join(parts) or "no lock seen"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-events", action="store_true", help="leave audit_logs/analytics_events empty")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args()

    name = f"csinfra_bench_sequence_{args.creators}"
    admin = database.resolve().with_dbname("postgres")
    with admin.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    target = admin.with_dbname(name)
    print(f"sequence on {target.describe()}, {args.creators:,} creators", flush=True)
    t0 = time.monotonic()
    with target.connect() as conn:
        summary = demo.generate(conn, "public", creators=args.creators, seed=args.seed)
    print(f"  demo data: {summary.rows} in {time.monotonic() - t0:.1f} s", flush=True)

    env = {k: v for k, v in os.environ.items() if k not in database.SELECTING_PG_VARS}
    p = target.effective()
    env["DATABASE_URL"] = psycopg.conninfo.make_conninfo("", **p)
    cli = [sys.executable, "-m", "creatorstays_infra"]
    dbt_environment = dbt_env(target, "public")

    steps: list[Step] = [run_step("csinfra migrate up", [*cli, "migrate", "up"], env, target)]
    if not args.no_events:
        with target.connect() as conn:
            events = demo.generate_events(conn, "public", seed=args.seed)
        print(f"  demo events: {events.rows} in {events.seconds:.1f} s", flush=True)
    steps.append(run_step("dbt seed", dbt_command(["seed"]), dbt_environment, target))
    steps.append(run_step("dbt run", dbt_command(["run"]), dbt_environment, target))
    steps.append(run_step("dbt test", dbt_command(["test"]), dbt_environment, target))
    steps.append(run_step("dbt run (no changes)", dbt_command(["run"]), dbt_environment, target))
    down = run_step("csinfra migrate down", [*cli, "migrate", "down"], env, target)
    steps.append(down)
    archive_id = re.search(r" as (r\w+); restore with", down.output).group(1)
    steps.append(run_step("csinfra migrate up (again)", [*cli, "migrate", "up"], env, target))
    steps.append(
        run_step(
            "csinfra migrate restore-archive", [*cli, "migrate", "restore-archive", archive_id], env, target
        )
    )
    steps.append(run_step("dbt seed (after the round trip)", dbt_command(["seed"]), dbt_environment, target))
    steps.append(run_step("dbt run (after the round trip)", dbt_command(["run"]), dbt_environment, target))
    steps.append(run_step("dbt test (after the round trip)", dbt_command(["test"]), dbt_environment, target))

    args.out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "creators": args.creators,
        "rows": summary.rows,
        "events": not args.no_events,
        "measuredAt": stamp,
        "steps": [
            {
                "name": s.name,
                "seconds": round(s.seconds, 2),
                "locks": {t: {m: round(v, 3) for m, v in modes.items()} for t, modes in s.locks.items()},
            }
            for s in steps
        ],
    }
    (args.out / f"sequence_{args.creators}_{stamp}.json").write_text(json.dumps(record, indent=2))
    lines = [
        f"| step ({args.creators:,} creators) | wall s | table locks held on the application's tables (longest hold) |",
        "|---|---:|---|",
    ]
    lines += [f"| {s.name} | {s.seconds:.1f} | {strongest(s.locks)} |" for s in steps]
    (args.out / f"sequence_{args.creators}_{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    with admin.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
