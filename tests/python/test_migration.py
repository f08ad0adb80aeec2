"""The Phase 1 migration on real PostgreSQL: round trip, idempotency, ledgers, safety, bad input."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time

import psycopg
from psycopg import sql

from conftest import ROOT
from creatorstays_infra.ops.migrations import MIGRATIONS_DIR

NAME = "20260203_infrastructure_phase1"
UP_FILE = MIGRATIONS_DIR / NAME / "migration.sql"


def app_fingerprint(db) -> dict:
    """Row counts and a content hash of every application table (data must never change)."""
    out = {}
    with db.connect(autocommit=True) as conn:
        for table in ("users", "host_profiles", "properties", "creator_profiles", "offers", "collaborations"):
            out[table] = conn.execute(
                sql.SQL(
                    "select count(*), md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from {} as t"
                ).format(sql.Identifier(table))
            ).fetchone()
    return out


def relation_files(conn) -> dict:
    """The data file of each application table the migration alters; a rewrite changes it."""
    return dict(
        conn.execute(
            """select relname, pg_relation_filenode(oid) from pg_class
               where relname in ('creator_profiles', 'offers') and relkind = 'r'
                 and relnamespace = 'public'::regnamespace"""
        ).fetchall()
    )


def ledger_count(db) -> int:
    if not db.scalar("select to_regclass('csinfra_meta.schema_migrations') is not null"):
        return 0
    return db.scalar("select count(*) from csinfra_meta.schema_migrations")


# -- round trip ------------------------------------------------------------------------------------
def test_up_then_down_restores_the_schema_exactly(pre_db):
    before_schema, before_data = pre_db.dump_schema(), app_fingerprint(pre_db)
    up = pre_db.cli("migrate", "up", check=True)
    assert "applied" in up.stdout
    during = pre_db.dump_schema()
    assert '"trustTier" public."TrustTier" DEFAULT' in during
    assert "CREATE TABLE public.audit_logs" in during
    down = pre_db.cli("migrate", "down", check=True)
    assert "rolled back" in down.stdout
    assert pre_db.dump_schema() == before_schema
    assert app_fingerprint(pre_db) == before_data


def test_round_trip_in_a_non_default_application_schema(empty_db):
    with empty_db.connect() as conn:
        from creatorstays_infra.ops import demo

        demo.generate(conn, "app", creators=50, seed=3)
    before = empty_db.dump_schema("app")
    env = empty_db.env(CSINFRA_APP_SCHEMA="app")
    empty_db.cli("migrate", "up", check=True, env=env)
    assert empty_db.scalar("select to_regclass('app.audit_logs') is not null")
    assert not empty_db.scalar("select to_regclass('public.audit_logs') is not null")
    status = json.loads(empty_db.cli("migrate", "status", "--json", check=True, env=env).stdout)
    assert status["appSchema"] == "app" and status["migrations"][0]["schemaOk"] is True
    empty_db.cli("migrate", "down", check=True, env=env)
    assert empty_db.dump_schema("app") == before


def test_up_is_idempotent_and_down_when_not_applied_does_nothing(pre_db):
    before = pre_db.dump_schema()
    first = pre_db.cli("migrate", "down", check=True)
    assert "not applied" in first.stdout
    assert pre_db.dump_schema() == before
    pre_db.cli("migrate", "up", check=True)
    after_up = pre_db.dump_schema()
    second = pre_db.cli("migrate", "up", check=True)
    assert "already applied" in second.stdout
    assert pre_db.dump_schema() == after_up
    assert ledger_count(pre_db) == 1
    assert pre_db.scalar("select count(*) from _prisma_migrations where migration_name = %s", (NAME,)) == 1


def test_dry_run_prints_sql_and_changes_nothing(pre_db):
    before = pre_db.dump_schema()
    result = pre_db.cli("migrate", "up", "--dry-run", check=True)
    assert 'CREATE TYPE "TrustTier"' in result.stdout
    assert "set_config('lock_timeout', '3s', true)" in result.stdout
    assert pre_db.dump_schema() == before
    assert ledger_count(pre_db) == 0
    status = pre_db.cli("migrate", "status", "--dry-run", check=True)
    assert "nothing was executed" in status.stdout and "pg_attribute" in status.stdout
    assert pre_db.dump_schema() == before
    pre_db.cli("migrate", "up", check=True)
    applied = pre_db.dump_schema()
    down = pre_db.cli("migrate", "down", "--dry-run", check=True)
    assert 'DROP TABLE "audit_logs"' in down.stdout and 'create table "csinfra_archive".' in down.stdout
    assert pre_db.dump_schema() == applied


# -- ledgers -----------------------------------------------------------------------------------------
def earlier_prisma_rows(db) -> list:
    with db.connect(autocommit=True) as conn:
        return conn.execute(
            "select * from _prisma_migrations where migration_name <> %s order by id", (NAME,)
        ).fetchall()


def test_prisma_ledger_records_the_migration_like_the_orm_and_down_removes_it(pre_db):
    earlier = earlier_prisma_rows(pre_db)
    assert len(earlier) == 4  # the application's ledger, as scripts/app_schema/pre_phase1.sql has it
    pre_db.cli("migrate", "up", check=True)
    with pre_db.connect(autocommit=True) as conn:
        row = conn.execute(
            "select id, checksum, finished_at, logs, rolled_back_at, started_at, applied_steps_count "
            "from _prisma_migrations where migration_name = %s",
            (NAME,),
        ).fetchone()
        ours = conn.execute(
            "select checksum, applied_by, duration_ms, prisma_migration_id from csinfra_meta.schema_migrations"
        ).fetchone()
    rid, checksum, finished_at, logs, rolled_back_at, started_at, steps = row
    assert len(rid) == 36 and rid.count("-") == 4  # a uuid, like Prisma's
    assert checksum == hashlib.sha256(UP_FILE.read_bytes()).hexdigest()
    assert finished_at is not None and finished_at >= started_at
    assert logs is None and rolled_back_at is None and steps == 1
    assert ours[0] == checksum and ours[3] == rid and "postgres" in ours[1] and ours[2] >= 0
    pre_db.cli("migrate", "down", check=True)
    assert pre_db.scalar("select count(*) from _prisma_migrations where migration_name = %s", (NAME,)) == 0
    # the earlier migrations' rows are untouched
    assert earlier_prisma_rows(pre_db) == earlier
    assert (
        pre_db.scalar("select array_agg(action order by id)::text from csinfra_meta.migration_log")
        == "{up,down}"
    )


def test_without_an_orm_ledger_nothing_is_invented(pre_db):
    with pre_db.connect(autocommit=True) as conn:
        conn.execute("drop table _prisma_migrations")
    result = pre_db.cli("migrate", "up", check=True)
    assert "no _prisma_migrations table" in result.stdout
    assert not pre_db.scalar("select to_regclass('public._prisma_migrations') is not null")
    assert ledger_count(pre_db) == 1


def test_a_changed_applied_file_is_refused(pre_db, tmp_path):
    pre_db.cli("migrate", "up", check=True)
    tampered = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, tampered)
    with open(tampered / NAME / "migration.sql", "a") as fh:
        fh.write("\n-- an innocent-looking edit\n")
    env = pre_db.env(CSINFRA_MIGRATIONS_DIR=str(tampered))
    before = pre_db.dump_schema()
    for step in ("up", "down"):
        result = pre_db.cli("migrate", step, env=env)
        assert result.returncode == 1
        assert "checksum" in result.stderr and NAME in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert pre_db.dump_schema() == before
    status = pre_db.cli("migrate", "status", env=env)
    assert status.returncode == 1 and "checksum changed" in status.stdout


def test_status_reports_a_column_dropped_by_hand(applied_db):
    ok = applied_db.cli("migrate", "status", "--json", check=True)
    assert json.loads(ok.stdout)["migrations"][0]["schemaOk"] is True
    with applied_db.connect(autocommit=True) as conn:
        conn.execute('alter table creator_profiles drop column "firstOfferReceivedAt"')
    result = applied_db.cli("migrate", "status", "--json")
    assert result.returncode == 1
    problems = json.loads(result.stdout)["migrations"][0]["problems"]
    assert problems == ["column public.creator_profiles.firstOfferReceivedAt is missing"]
    # a rollback refuses to guess on a schema that does not match
    down = applied_db.cli("migrate", "down")
    assert down.returncode == 1 and "firstOfferReceivedAt" in down.stderr


def test_status_reports_leftovers_when_not_applied(pre_db):
    with pre_db.connect(autocommit=True) as conn:
        conn.execute("create table audit_logs (id text primary key)")
    result = pre_db.cli("migrate", "status", "--json")
    assert result.returncode == 1
    assert any(
        "table public.audit_logs exists" in p for p in json.loads(result.stdout)["migrations"][0]["problems"]
    )


# -- bad input: one clear line, non-zero exit, nothing changed ---------------------------------------------
def _assert_clean_failure(result, *needles):
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("csinfra: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    # anything before the error is a retry notice, never a traceback
    assert all(ln.startswith("csinfra: lock timeout (attempt ") for ln in lines[:-1]), result.stderr
    for needle in needles:
        assert needle in errors[0]


def test_unreachable_server(pre_db):
    env = pre_db.env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=3")
    _assert_clean_failure(pre_db.cli("migrate", "up", env=env), "cannot connect", "127.0.0.1:1")


def test_wrong_credentials_and_unknown_database(pre_db):
    p = pre_db.target.effective()
    bad_user = pre_db.env(
        DATABASE_URL=f"postgresql://no_such_role:secret@{p['host']}:{p['port']}/{p['dbname']}"
    )
    result = pre_db.cli("migrate", "up", env=bad_user)
    _assert_clean_failure(result, "cannot connect", "no_such_role")
    assert "secret" not in result.stderr
    bad_db = pre_db.env(DATABASE_URL=f"postgresql://postgres@{p['host']}:{p['port']}/no_such_db")
    _assert_clean_failure(pre_db.cli("migrate", "up", env=bad_db), "no_such_db")


def test_missing_application_table(pre_db):
    with pre_db.connect(autocommit=True) as conn:
        conn.execute("drop table offers cascade")
    before = pre_db.dump_schema()
    _assert_clean_failure(pre_db.cli("migrate", "up"), "public.offers does not exist")
    assert pre_db.dump_schema() == before
    assert ledger_count(pre_db) == 0


def test_missing_application_schema(pre_db):
    env = pre_db.env(CSINFRA_APP_SCHEMA="nope")
    _assert_clean_failure(pre_db.cli("migrate", "up", env=env), "schema 'nope' does not exist")


def test_same_column_name_with_another_type(pre_db):
    with pre_db.connect(autocommit=True) as conn:
        conn.execute('alter table creator_profiles add column "trustTier" text')
    before = pre_db.dump_schema()
    _assert_clean_failure(
        pre_db.cli("migrate", "up"), "public.creator_profiles.trustTier", "text", "nothing changed"
    )
    assert pre_db.dump_schema() == before
    assert ledger_count(pre_db) == 0


def test_a_failing_statement_rolls_back_everything(pre_db):
    before = pre_db.dump_schema()
    # a statement_timeout nothing can meet: the step fails part-way through the file
    _assert_clean_failure(pre_db.cli("migrate", "up", "--statement-timeout", "1ms"), "nothing changed")
    assert pre_db.dump_schema() == before
    assert ledger_count(pre_db) == 0


# -- safety on a live database -------------------------------------------------------------------------------
def test_lock_timeout_is_retried_then_fails_cleanly_naming_the_holder(pre_db):
    before = pre_db.dump_schema()
    holder = pre_db.connect()
    holder.execute("select * from creator_profiles limit 1")  # AccessShareLock held in an open transaction
    holder_pid = holder.info.backend_pid
    try:
        t0 = time.monotonic()
        result = pre_db.cli("migrate", "up", "--lock-timeout", "200ms", "--retries", "2")
        _assert_clean_failure(result, "could not lock", f"pid {holder_pid}", "3 attempts", "nothing changed")
        assert time.monotonic() - t0 >= 0.6  # three attempts of 200 ms plus backoff
        assert pre_db.dump_schema() == before
    finally:
        holder.rollback()
        holder.close()


def _once_waited_on(db, lock_timeout_s: float) -> None:
    """Return once another session of this database has waited on a lock (the migration, which starts as a process
    of its own: on a loaded machine that takes a while, so a fixed sleep raced it) and twice its lock_timeout
    more: its first attempt has then timed out, whatever the machine's load."""
    deadline = time.monotonic() + 120
    with db.connect(autocommit=True) as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and wait_event_type = 'Lock' and pid <> pg_backend_pid()"
            ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.02)
    time.sleep(2 * lock_timeout_s)


def test_lock_timeout_retry_succeeds_once_the_holder_commits(pre_db):
    holder = pre_db.connect()
    holder.execute("select * from offers limit 1")

    def release():
        _once_waited_on(pre_db, 0.3)
        holder.rollback()

    t = threading.Thread(target=release)
    t.start()
    try:
        result = pre_db.cli("migrate", "up", "--lock-timeout", "300ms", "--retries", "6", check=True)
    finally:
        t.join()
        holder.close()
    assert "applied" in result.stdout
    attempts = int(result.stdout.split("(")[1].split(" attempt")[0])
    assert attempts > 1
    assert "lock timeout (attempt 1/7)" in result.stderr


def test_two_runners_at_once_apply_exactly_once(pre_db):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "creatorstays_infra", "migrate", "up"],
            env=pre_db.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    actions = sorted("already applied" if "already applied" in o[0] else "applied" for o in outputs)
    assert actions == ["already applied", "already applied", "applied"]
    assert ledger_count(pre_db) == 1
    assert pre_db.scalar("select count(*) from csinfra_meta.migration_log") == 1


def test_migration_under_live_writes_loses_no_write(pre_db):
    """While another connection keeps updating creator_profiles and inserting offers, `up` completes."""
    with pre_db.connect(autocommit=True) as conn:
        creators = [r[0] for r in conn.execute("select id from creator_profiles order by id limit 50")]
        host, prop = conn.execute(
            'select "hostProfileId", "propertyId" from offers where "propertyId" is not null limit 1'
        ).fetchone()
    committed_bios: dict[str, str] = {}
    committed_offers: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer():
        i = 0
        with pre_db.connect() as conn:
            conn.execute("set lock_timeout = '10s'")
            conn.commit()
            while not stop.is_set():
                i += 1
                cid = creators[i % len(creators)]
                bio = f"live write {i}"
                oid = f"live_offer_{i}"
                try:
                    with conn.transaction():
                        conn.execute(
                            'update creator_profiles set bio = %s, "updatedAt" = now() where id = %s',
                            (bio, cid),
                        )
                        conn.execute(
                            'insert into offers (id, "hostProfileId", "creatorProfileId", "propertyId", "offerType", '
                            '"cashCents", "updatedAt") values (%s, %s, %s, %s, \'cash\', 20000, now())',
                            (oid, host, cid, prop),
                        )
                except BaseException as exc:  # noqa: BLE001 — a failed write was never acknowledged, so not "lost"
                    errors.append(exc)  # and any failure, not only the database's, fails the test
                    if not isinstance(exc, psycopg.Error):
                        return
                    continue
                committed_bios[cid] = bio
                committed_offers.append(oid)
                commit_times.append(time.monotonic())

    commit_times: list[float] = []
    with pre_db.connect(autocommit=True) as conn:
        files_before = relation_files(conn)
    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.5)
        migration_started = time.monotonic()
        result = pre_db.cli("migrate", "up", "--lock-timeout", "500ms", check=True)
        migration_ended = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    assert "applied" in result.stdout
    assert len(committed_offers) > 20
    assert not errors, errors[:3]
    # the writes really raced the migration: some committed while `migrate up` ran, and some after it
    during = [c for c in commit_times if migration_started < c < migration_ended]
    assert during, (migration_started, migration_ended, commit_times[:3], commit_times[-3:])
    assert any(c > migration_ended for c in commit_times)
    with pre_db.connect(autocommit=True) as conn:
        stored = dict(
            conn.execute(
                "select id, bio from creator_profiles where id = any(%s)", (list(committed_bios),)
            ).fetchall()
        )
        found = conn.execute(
            "select count(*) from offers where id = any(%s)", (committed_offers,)
        ).fetchone()[0]
        files_after = relation_files(conn)
    assert stored == committed_bios
    assert found == len(committed_offers)
    # no table was rewritten under the writers: every added column's default is a constant, so
    # PostgreSQL stores it in the catalog instead of rewriting the table (a volatile default, or a
    # type change, would give the table a new file and hold ACCESS EXCLUSIVE for the whole copy)
    assert files_after == files_before


# -- rollback archives ----------------------------------------------------------------------------------------
def archive_id_of(output: str) -> str:
    match = re.search(r"^archived .* as (r\w+); restore with", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def _insert_events(db, n: int, prefix: str) -> None:
    with db.connect() as conn:
        conn.execute(
            """insert into audit_logs (id, action, "actorType", "actorId", "targetType", "targetId", metadata, "ipAddress")
               select %s || g, 'offer.created', 'user', 'u' || g, 'Offer', 'o' || g, jsonb_build_object('n', g), '10.0.0.1'
               from generate_series(1, %s) g""",
            (prefix, n),
        )
        conn.execute(
            """insert into analytics_events (id, "actorType", "actorId", "eventType", "eventData")
               select %s || g, 'host', 'h' || g, 'offer_sent', jsonb_build_object('offerId', 'o' || g)
               from generate_series(1, %s) g""",
            (prefix, n * 2),
        )
        conn.commit()


def _events(db) -> tuple:
    with db.connect(autocommit=True) as conn:
        a = conn.execute(
            "select md5(string_agg(t::text, '|' order by id)), count(*) from audit_logs t"
        ).fetchone()
        e = conn.execute(
            "select md5(string_agg(t::text, '|' order by id)), count(*) from analytics_events t"
        ).fetchone()
    return a, e


def test_rollback_archives_rows_and_restores_them(applied_db):
    _insert_events(applied_db, 25, "a")
    original = _events(applied_db)
    down = applied_db.cli("migrate", "down", check=True)
    assert "archived 25 audit_logs, 50 analytics_events" in down.stdout
    archive_id = archive_id_of(down.stdout)
    listed = applied_db.cli("migrate", "archives", check=True).stdout
    assert archive_id[:12] in listed
    # restoring before the tables exist is refused with the way out
    early = applied_db.cli("migrate", "restore-archive", archive_id)
    assert early.returncode == 1 and "migrate up" in early.stderr
    applied_db.cli("migrate", "up", check=True)
    restored = applied_db.cli("migrate", "restore-archive", archive_id, check=True)
    assert "restored 25 audit_logs, 50 analytics_events" in restored.stdout
    assert _events(applied_db) == original
    # restoring twice adds nothing
    again = applied_db.cli("migrate", "restore-archive", archive_id, check=True)
    assert "restored 0 audit_logs, 0 analytics_events" in again.stdout
    unknown = applied_db.cli("migrate", "restore-archive", "r_nope")
    assert unknown.returncode == 1 and "no rollback archive 'r_nope'" in unknown.stderr


def test_several_rollbacks_never_collide_and_discard_data_skips_the_archive(applied_db):
    ids = []
    for i in range(2):
        _insert_events(applied_db, 3 + i, f"x{i}_")
        down = applied_db.cli("migrate", "down", check=True)
        ids.append(archive_id_of(down.stdout))
        applied_db.cli("migrate", "up", check=True)
    assert ids[0] != ids[1]
    assert applied_db.scalar("select count(*) from csinfra_meta.rollback_archives") == 2
    tables_before = applied_db.scalar("select count(*) from pg_tables where schemaname = 'csinfra_archive'")
    assert tables_before == 6  # audit_logs, analytics_events and offers' values, per rollback
    _insert_events(applied_db, 5, "gone")
    discarded = applied_db.cli("migrate", "down", "--discard-data", check=True)
    assert (
        "--discard-data: 5 audit_logs, 10 analytics_events, 0 offers' statusHistory/originalTermsSnapshot values "
        "were dropped" in discarded.stdout
    )
    assert (
        applied_db.scalar("select count(*) from pg_tables where schemaname = 'csinfra_archive'")
        == tables_before
    )
    details = applied_db.scalar(
        "select details from csinfra_meta.migration_log where action = 'down' order by id desc limit 1"
    )
    assert details["discarded_rows"] == {"audit_logs": 5, "analytics_events": 10, "offers": 0}


def test_rollback_waits_for_writers_so_no_event_lands_after_the_archive(applied_db):
    """A writer mid-transaction on audit_logs: the rollback waits (lock_timeout, retry) rather than lose its row."""
    writer = applied_db.connect()
    writer.execute(
        "insert into audit_logs (id, action, \"actorType\", \"actorId\", \"targetType\", \"targetId\") values ('late', 'system.x', 'system', 'system', 'X', 'x1')"
    )

    def commit_later():
        _once_waited_on(applied_db, 0.3)
        writer.commit()

    t = threading.Thread(target=commit_later)
    t.start()
    try:
        down = applied_db.cli("migrate", "down", "--lock-timeout", "300ms", "--retries", "8", check=True)
    finally:
        t.join()
        writer.close()
    assert "archived 1 audit_logs" in down.stdout
    # it did wait: the first attempt ran into the writer's lock and the step succeeded on a later one
    attempts = [int(n) for n in re.findall(r"\((\d+) attempts?\)", down.stdout)]
    assert attempts and max(attempts) >= 2, down.stdout
    assert "lock timeout (attempt 1/9)" in down.stdout + down.stderr


def _offer_values(db) -> dict[str, tuple]:
    with db.connect(autocommit=True) as conn:
        return {
            r[0]: (r[1], r[2])
            for r in conn.execute('select id, "statusHistory", "originalTermsSnapshot" from offers')
        }


def test_rollback_keeps_every_value_that_cannot_be_derived_again(applied_db):
    """statusHistory and the snapshots the application wrote are archived with the event rows and put back by
    restore-archive; reconstructed snapshots are not (the backfill derives them again); values written since
    the re-apply win over archived ones."""
    _insert_events(applied_db, 7, "v")
    entry = '[{"fromStatus": "pending", "toStatus": "accepted", "changedBy": "creator", "changedAt": "2026-03-01T10:00:00.000Z"}]'
    with applied_db.connect() as conn:
        ids = [r[0] for r in conn.execute("select id from offers order by id limit 40")]
        history, written, rebuilt = ids[:15], ids[10:25], ids[25:40]
        conn.execute("""update offers set "statusHistory" = %s::jsonb where id = any(%s)""", (entry, history))
        conn.execute(
            """update offers set "originalTermsSnapshot" = jsonb_build_object('cashCents', "cashCents", 'snapshotAt', id)
                        where id = any(%s)""",
            (written,),
        )
        conn.execute(
            """update offers set "originalTermsSnapshot" = '{"cashCents": 1, "reconstructed": true}' where id = any(%s)""",
            (rebuilt,),
        )
        conn.commit()
    before = _offer_values(applied_db)
    events = _events(applied_db)
    down = applied_db.cli("migrate", "down", check=True)
    assert (
        "archived 7 audit_logs, 14 analytics_events, 25 offers' statusHistory/originalTermsSnapshot values"
        in down.stdout
    )
    archive_id = archive_id_of(down.stdout)
    applied_db.cli("migrate", "up", check=True)
    # written by the application since the re-apply: these values win over the archive
    newer = '[{"fromStatus": "pending", "toStatus": "declined", "changedBy": "creator", "changedAt": "2026-12-01T00:00:00.000Z"}]'
    with applied_db.connect() as conn:
        conn.execute("""update offers set "statusHistory" = %s::jsonb where id = %s""", (newer, history[0]))
        conn.execute(
            """update offers set "originalTermsSnapshot" = '{"cashCents": 99}' where id = %s""",
            (written[-1],),
        )
        conn.commit()
    restored = applied_db.cli("migrate", "restore-archive", archive_id, check=True)
    assert (
        "restored 7 audit_logs, 14 analytics_events, 14 offers' statusHistory, 14 offers' originalTermsSnapshot"
        in restored.stdout
    )
    assert "kept the values already present: 1 statusHistory, 1 originalTermsSnapshot" in restored.stdout
    after = _offer_values(applied_db)
    assert _events(applied_db) == events
    for oid, (hist, snap) in before.items():
        if oid == history[0]:
            assert after[oid][0] == json.loads(newer)
        elif oid == written[-1]:
            assert after[oid][1] == {"cashCents": 99}
        else:
            expected_snapshot = None if oid in rebuilt else snap
            assert after[oid] == (hist, expected_snapshot), oid
    # a second restore changes nothing
    again = applied_db.cli("migrate", "restore-archive", archive_id, check=True)
    assert (
        "restored 0 audit_logs, 0 analytics_events, 0 offers' statusHistory, 0 offers' originalTermsSnapshot"
        in again.stdout
    )
    assert _offer_values(applied_db) == after


def test_restore_refuses_to_leave_originals_behind_reconstructed_snapshots(applied_db):
    """Snapshots are write-once: once a backfill has reconstructed one, the archived original cannot go back.
    restore-archive says so and changes nothing, unless told to restore the rest (--keep-reconstructed)."""
    _insert_events(applied_db, 4, "k")
    with applied_db.connect() as conn:
        ids = [r[0] for r in conn.execute("select id from offers order by id limit 3")]
        conn.execute(
            """update offers set "originalTermsSnapshot" = '{"cashCents": 12345}' where id = any(%s)""",
            (ids,),
        )
        conn.commit()
    archive_id = archive_id_of(applied_db.cli("migrate", "down", check=True).stdout)
    applied_db.cli("migrate", "up", check=True)
    applied_db.backfill()  # every offer without a snapshot gets a reconstructed one
    audit_rows = applied_db.scalar("select count(*) from audit_logs")
    refused = applied_db.cli("migrate", "restore-archive", archive_id)
    assert refused.returncode == 1
    assert (
        "3 offers got a reconstructed terms snapshot" in refused.stderr
        and "--keep-reconstructed" in refused.stderr
    )
    assert applied_db.scalar("select count(*) from audit_logs") == audit_rows
    kept = applied_db.cli("migrate", "restore-archive", archive_id, "--keep-reconstructed", check=True)
    assert "restored 4 audit_logs, 8 analytics_events" in kept.stdout
    assert "3 originalTermsSnapshot" in kept.stdout  # kept: the reconstructed ones
    with applied_db.connect(autocommit=True) as conn:
        snapshots = [
            r[0]
            for r in conn.execute('select "originalTermsSnapshot" from offers where id = any(%s)', (ids,))
        ]
    assert all(s["reconstructed"] is True for s in snapshots)
