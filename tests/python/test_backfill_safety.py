"""A backfill the application does not feel: batches sized by time, rows the application holds skipped
(never waited on), table locks given way to then a clear failure, one runner per table, and a dry run
that says exactly what the real run then writes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import psycopg
from psycopg import sql

from conftest import ROOT

RESET_CREATORS = """update creator_profiles set "trustTier" = 'NEW', "readinessState" = 'INCOMPLETE',
                    "readinessBlockers" = '[]', "profileCompleteness" = 0"""


def last_log(db, model: str) -> dict:
    with db.connect(autocommit=True) as conn:
        conn.row_factory = psycopg.rows.dict_row
        return conn.execute(
            "select * from csinfra.writeback_log where model = %s order by started_at desc limit 1", (model,)
        ).fetchone()


def backfill(db, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return db.cli("backfill", "--only", "creators", "--json", *args, check=check)


def test_batch_size_follows_the_time_each_batch_takes(built_db):
    """Fast batches grow from the start size; slow ones (a trigger costing 3 ms a row) shrink to fit the target."""
    vars_ = {"writeback_batch_start_rows": 20, "writeback_batch_min_rows": 5, "writeback_batch_target_ms": 60}
    with built_db.connect(autocommit=True) as conn:
        conn.execute(RESET_CREATORS)
    built_db.backfill(**vars_)
    fast = last_log(built_db, "wb_creator_profiles")
    assert fast["candidates"] > 100 and fast["batch_size"] > 20, fast
    with built_db.connect(autocommit=True) as conn:
        conn.execute(RESET_CREATORS)
        conn.execute("""create function public.slow_row() returns trigger language plpgsql as
                        $$ begin perform pg_sleep(0.003); return new; end $$""")
        conn.execute(
            "create trigger slow_row before update on creator_profiles for each row execute function public.slow_row()"
        )
    built_db.backfill(**vars_)
    slow = last_log(built_db, "wb_creator_profiles")
    # 20 rows of 3 ms are 60 ms: the size settles around the target, far below where fast batches went
    assert slow["batch_size"] < 40 and slow["batches"] > fast["batches"], (fast, slow)
    assert slow["written"] == slow["candidates"] and slow["lock_timeouts"] == 0


def test_a_batch_that_would_hold_its_locks_too_long_is_cancelled_and_retried_smaller(built_db):
    """One row costs 0.4 s to update (a trigger): every batch holding it runs into writeback_batch_max_ms
    (here 150 ms), is rolled back and tried again at half the size, down to the minimum size, which runs
    uncapped. Nothing is lost or written twice. The control: with no cap, no batch is cancelled."""
    vars_ = {
        "writeback_batch_start_rows": 40,
        "writeback_batch_min_rows": 5,
        "writeback_batch_target_ms": 100,
        "writeback_batch_max_ms": 150,
    }
    with built_db.connect(autocommit=True) as conn:
        slow_id = conn.execute("select id from creator_profiles order by id offset 49 limit 1").fetchone()[0]
        conn.execute("""create function public.slow_one() returns trigger language plpgsql as
                        $$ begin if new.id = tg_argv[0] then perform pg_sleep(0.4); end if; return new; end $$""")
        conn.execute(
            sql.SQL(
                "create trigger slow_one before update on creator_profiles for each row "
                "execute function public.slow_one({})"
            ).format(sql.Literal(slow_id))
        )

    def run(**extra) -> dict:
        with built_db.connect(autocommit=True) as conn:
            conn.execute(RESET_CREATORS)
        built_db.backfill(**{**vars_, **extra})
        log = last_log(built_db, "wb_creator_profiles")
        log["drift"] = built_db.scalar("select count(*) from csinfra.int_creators_derived where is_drifted")
        return log

    capped = run()
    assert capped["over_time"] >= 3, capped  # 40 -> 20 -> 10 -> 5 rows, then uncapped at the minimum
    assert capped["written"] == capped["candidates"] and capped["drift"] == 0, capped
    uncapped = run(writeback_batch_max_ms=60000)
    assert (
        uncapped["over_time"] == 0
        and uncapped["written"] == uncapped["candidates"]
        and uncapped["drift"] == 0
    ), uncapped
    # cancelled batches wrote nothing: both runs audited the same trust changes, once each
    assert capped["audit_rows"] == uncapped["audit_rows"] > 0, (capped, uncapped)


def test_a_batch_cancelled_at_the_very_end_of_its_statement_loses_nothing(built_db):
    """The time cap can strike after a batch has produced its counts, while the statement finishes (here the
    run-log update of the first batch is slow). The batch is rolled back then, so it must be reported as
    cancelled, not as written: otherwise its key range would be skipped and its rows silently left."""
    vars_ = {
        "writeback_batch_start_rows": 40,
        "writeback_batch_min_rows": 5,
        "writeback_batch_target_ms": 100,
        "writeback_batch_max_ms": 150,
    }
    with built_db.connect(autocommit=True) as conn:
        conn.execute(RESET_CREATORS)
        conn.execute("""create function csinfra.slow_first_batch_log() returns trigger language plpgsql as
                        $$ begin if old.batches = 0 and new.batches = 1 then perform pg_sleep(0.3); end if;
                           return new; end $$""")
        conn.execute(
            "create trigger slow_first_batch_log before update on csinfra.writeback_log for each row "
            "execute function csinfra.slow_first_batch_log()"
        )
    built_db.backfill(**vars_)
    log = last_log(built_db, "wb_creator_profiles")
    assert log["over_time"] >= 1, log
    assert log["written"] == log["candidates"] > 40, log
    assert built_db.scalar("select count(*) from csinfra.int_creators_derived where is_drifted") == 0


def test_a_row_the_application_holds_is_skipped_never_waited_on(built_db):
    """An application transaction keeps one creator row locked through the whole run: the backfill writes every
    other row without waiting for it, leaves that one (counted), and the next run writes it."""
    with built_db.connect(autocommit=True) as conn:
        conn.execute(RESET_CREATORS)
        held = conn.execute(
            'select id from creator_profiles where "instagramConnected" order by id limit 1'
        ).fetchone()[0]
    app = built_db.connect()
    app.execute("select 1 from creator_profiles where id = %s for update", (held,))
    try:
        result = backfill(
            built_db, "--batch-size", "50"
        )  # no lock_timeout applies to a row: it finished while we hold it
        summary = json.loads(result.stdout)["models"]["wb_creator_profiles"]
        assert summary["skippedStillLocked"] == 1
        assert (
            summary["written"] + summary["rewrittenAfterConcurrentChange"] == summary["changedRowsFound"] - 1
        )
        assert (
            app.execute('select "trustTier" from creator_profiles where id = %s', (held,)).fetchone()[0]
            == "NEW"
        )
    finally:
        app.rollback()
        app.close()
    again = json.loads(backfill(built_db).stdout)["models"]["wb_creator_profiles"]
    assert again["changedRowsFound"] == 1 and again["written"] == 1 and again["skippedStillLocked"] == 0
    assert built_db.cli("verify").returncode == 0


def test_a_row_the_application_only_references_is_written_at_once(built_db):
    """An application transaction that inserts an offer for a creator holds that creator row FOR KEY SHARE
    (PostgreSQL's foreign-key check) until it commits. The write-back changes no key, so it locks FOR NO KEY
    UPDATE, which does not conflict: the row is written in this run, not skipped (FOR UPDATE would skip it)."""
    with built_db.connect(autocommit=True) as conn:
        conn.execute(RESET_CREATORS)
        held = conn.execute(
            'select id from creator_profiles where "instagramConnected" order by id limit 1'
        ).fetchone()[0]
    app = built_db.connect()
    app.execute(
        "select 1 from creator_profiles where id = %s for key share", (held,)
    )  # what the FK check takes
    try:
        summary = json.loads(backfill(built_db, "--batch-size", "50").stdout)["models"]["wb_creator_profiles"]
        assert summary["skippedStillLocked"] == 0 and summary["written"] == summary["changedRowsFound"], (
            summary
        )
    finally:
        app.rollback()
        app.close()
    assert built_db.scalar('select "trustTier" from creator_profiles where id = %s', (held,)) != "NEW"
    assert built_db.cli("verify").returncode == 0


def test_a_table_lock_makes_batches_give_way_then_stop_naming_the_holder(built_db):
    with built_db.connect(autocommit=True) as conn:
        conn.execute(RESET_CREATORS)
    holder = built_db.connect()
    holder.execute("lock table creator_profiles in share mode")  # conflicts with the batches' ROW EXCLUSIVE
    holder_pid = holder.info.backend_pid
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "creatorstays_infra",
                "backfill",
                "--only",
                "creators",
                "--lock-timeout",
                "50ms",
                "--max-lock-timeouts",
                "5",
            ],
            env=built_db.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 1
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "csinfra: error: dbt build failed: the write-back of public.creator_profiles could not lock "
        "its batch of keys after ''"
    ), error
    assert (
        f"pid {holder_pid} holds ShareLock" in error
        and "5 times in a row" in error
        and "rerun to resume" in error
    )
    log = last_log(built_db, "wb_creator_profiles")
    assert log["lock_timeouts"] == 5 and log["written"] == 0 and log["finished_at"] is None
    backfill(built_db)  # released: the next run does the work
    assert built_db.cli("verify").returncode == 0


def test_the_dry_run_reports_exactly_what_the_real_run_writes(built_db):
    with built_db.connect(autocommit=True) as conn:
        conn.execute("""update creator_profiles set "trustTier" = 'NEW', "readinessState" = 'INCOMPLETE',
                        "readinessBlockers" = '["missing_bio"]', "profileCompleteness" = 0.5
                        where id in (select id from creator_profiles order by md5(id) limit 120)""")
        conn.execute("""update offers set "isValid" = not "isValid", "totalValueCents" = null
                        where id in (select id from offers order by md5(id) limit 90)""")
        before = {
            r[0]: r[1:]
            for r in conn.execute(
                'select id, "trustTier"::text, "readinessState"::text, "readinessBlockers", "profileCompleteness" from creator_profiles'
            )
        }
        offers_before = {
            r[0]: r[1:] for r in conn.execute('select id, "isValid", "totalValueCents" from offers')
        }
        versions = conn.execute(
            "select md5(string_agg(xmin::text, ',' order by id)) from creator_profiles"
        ).fetchone()[0]
    preview = json.loads(built_db.cli("backfill", "--dry-run", "--json", check=True).stdout)["models"]
    with built_db.connect(autocommit=True) as conn:  # nothing written
        assert (
            conn.execute(
                "select md5(string_agg(xmin::text, ',' order by id)) from creator_profiles"
            ).fetchone()[0]
            == versions
        )
    ran = json.loads(built_db.cli("backfill", "--write-back-only", "--json", check=True).stdout)["models"]
    with built_db.connect(autocommit=True) as conn:
        after = {
            r[0]: r[1:]
            for r in conn.execute(
                'select id, "trustTier"::text, "readinessState"::text, "readinessBlockers", "profileCompleteness" from creator_profiles'
            )
        }
        offers_after = {
            r[0]: r[1:] for r in conn.execute('select id, "isValid", "totalValueCents" from offers')
        }
        audited = Counter(
            f"{m['from']} -> {m['to']}"
            for (m,) in conn.execute(
                "select metadata from audit_logs where action = 'system.trust_updated' and metadata ->> 'runId' = "
                "(select invocation_id from csinfra.writeback_log where model = 'wb_creator_profiles' order by started_at desc limit 1)"
            )
        )
    creators, offers = preview["wb_creator_profiles"], preview["wb_offers"]
    # rows: what the dry run found is what the run wrote, and what the database shows changed
    assert (
        creators["rowsThatWouldChange"]
        == ran["wb_creator_profiles"]["written"]
        == sum(before[k] != after[k] for k in before)
        == 120
    )
    assert (
        offers["rowsThatWouldChange"]
        == ran["wb_offers"]["written"]
        == sum(offers_before[k] != offers_after[k] for k in offers_before)
        == 90
    )
    # per column and per transition
    assert creators["columns"]["trustTier"]["changed"] == sum(before[k][0] != after[k][0] for k in before)
    assert creators["columns"]["readinessBlockers"]["changed"] == sum(
        before[k][2] != after[k][2] for k in before
    )
    assert Counter(creators["transitions"]["trustTier"]) == audited
    assert creators["transitions"]["readinessState"] == dict(
        Counter(f"{before[k][1]} -> {after[k][1]}" for k in before if before[k][1] != after[k][1])
    )
    removed = Counter(e for k in before for e in before[k][2] if e not in after[k][2])
    assert creators["elements"]["readinessBlockers"]["removed"] == dict(removed)
    assert offers["transitions"]["isValid"] == dict(
        Counter(
            f"{str(offers_before[k][0]).lower()} -> {str(offers_after[k][0]).lower()}"
            for k in offers_before
            if offers_before[k][0] != offers_after[k][0]
        )
    )
    assert offers["columns"]["totalValueCents"]["set"] == sum(
        offers_before[k][1] is None and offers_after[k][1] is not None for k in offers_before
    )


def test_two_runners_at_once_one_writes_the_other_stops_or_waits(built_db):
    with built_db.connect(autocommit=True) as conn:
        conn.execute(RESET_CREATORS)
    slow = ["--batch-size", "5", "--pause", "0.25"]  # 300 creators: about 15 s
    first = subprocess.Popen(
        [sys.executable, "-m", "creatorstays_infra", "backfill", "--only", "creators", "--json", *slow],
        env=built_db.env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not built_db.scalar(
            "select count(*) from pg_locks where locktype = 'advisory' and classid = (hashtext('csinfra.writeback')::bigint "
            "& 4294967295)::oid and granted and database = (select oid from pg_database where datname = current_database())"
        ):
            time.sleep(0.05)
        second = backfill(built_db, check=False)
        assert second.returncode == 1
        error = second.stderr.strip().splitlines()[-1]
        assert error.startswith(
            "csinfra: error: dbt build failed: another backfill is writing public.creator_profiles: pid "
        ), error
        assert "rows written" in error and "--wait" in error
        waiting = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "creatorstays_infra",
                "backfill",
                "--only",
                "creators",
                "--json",
                "--wait",
                "300",
            ],
            env=built_db.env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, errors = first.communicate(timeout=300)
        assert first.returncode == 0, errors
        summary = json.loads(out)["models"]["wb_creator_profiles"]
        assert summary["written"] == summary["changedRowsFound"] > 0  # undisturbed
        w_out, w_err = waiting.communicate(timeout=300)
        assert waiting.returncode == 0, w_err
        assert (
            json.loads(w_out)["models"]["wb_creator_profiles"]["changedRowsFound"] == 0
        )  # it waited, then found it done
    finally:
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
    assert built_db.cli("verify").returncode == 0
