"""The backfill (dbt write-back models) against real PostgreSQL, checked row by row by an independent oracle."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

import oracle
from conftest import ROOT
from creatorstays_infra import update_creator_readiness
from creatorstays_infra.ops.dbt import LOAD_AND_RUN, dbt_command, dbt_env

CREATOR_FIELDS = (
    "trustTier",
    "readinessState",
    "readinessBlockers",
    "profileCompleteness",
    "firstOfferReceivedAt",
    "firstOfferRespondedAt",
    "firstCollabCompletedAt",
)


def parse_iso(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.replace(microsecond=round(dt.microsecond / 1000) * 1000) if dt.microsecond % 1000 else dt


def expected_from_raw(conn, stored_lifecycle: dict | None = None) -> tuple[dict, dict]:
    """What every creator and offer should hold, computed in Python from the raw application rows."""
    conn.row_factory = dict_row
    creators = {r["id"]: r for r in conn.execute("select * from creator_profiles")}
    offers = conn.execute("select * from offers").fetchall()
    collabs = conn.execute('select "creatorId", status, "completedAt" from collaborations').fetchall()
    received: dict = {}
    responded: dict = {}
    completed: dict = {}

    def keep_min(d, k, v):
        if v is not None and (d.get(k) is None or v < d[k]):
            d[k] = v

    for o in offers:
        cid = o["creatorProfileId"]
        if o["status"] != "draft":
            keep_min(received, cid, o["createdAt"])
        keep_min(responded, cid, o["respondedAt"])
        history = o["statusHistory"] if isinstance(o["statusHistory"], list) else []
        for e in history:
            if (
                isinstance(e, dict)
                and e.get("changedBy") == "creator"
                and e.get("toStatus") in ("accepted", "declined", "countered")
            ):
                keep_min(responded, cid, parse_iso(e.get("changedAt")))
    for c in collabs:
        if c["status"] == "completed":
            keep_min(completed, c["creatorId"], c["completedAt"])
    stored_lifecycle = stored_lifecycle or {}
    want_creators = {}
    for cid, p in creators.items():
        before = stored_lifecycle.get(cid, {})
        fc = oracle.earliest(before.get("firstCollabCompletedAt"), completed.get(cid))
        state = oracle.creator(p, fc)
        state["firstOfferReceivedAt"] = oracle.earliest(before.get("firstOfferReceivedAt"), received.get(cid))
        state["firstOfferRespondedAt"] = oracle.earliest(
            before.get("firstOfferRespondedAt"), responded.get(cid)
        )
        state["firstCollabCompletedAt"] = fc
        want_creators[cid] = state
    want_offers = {}
    for o in offers:
        snap = o["originalTermsSnapshot"]
        explicit = snap.get("stayValueCents") if isinstance(snap, dict) else None
        explicit = explicit if isinstance(explicit, int) and not isinstance(explicit, bool) else None
        want = oracle.offer({**o, "stayValueCents": explicit})
        if not -(2**31) <= want["totalValueCents"] < 2**31:
            want["totalValueCents"] = None
        want_offers[o["id"]] = want
    return want_creators, want_offers


def assert_matches_oracle(db, stored_lifecycle=None) -> tuple[int, int]:
    with db.connect() as conn:
        want_creators, want_offers = expected_from_raw(conn, stored_lifecycle)
        conn.row_factory = dict_row
        creators = {r["id"]: r for r in conn.execute("select * from creator_profiles")}
        offers = {r["id"]: r for r in conn.execute("select * from offers")}
    bad = []
    for cid, want in want_creators.items():
        got = {f: creators[cid][f] for f in CREATOR_FIELDS}
        if got != want:
            bad.append((cid, {k: (got[k], want[k]) for k in want if got[k] != want[k]}))
    for oid, want in want_offers.items():
        got = {f: offers[oid][f] for f in want}
        if got != want:
            bad.append((oid, {k: (got[k], want[k]) for k in want if got[k] != want[k]}))
        if offers[oid]["originalTermsSnapshot"] is None:
            bad.append((oid, "no terms snapshot"))
    assert not bad, f"{len(bad)} rows disagree with the oracle, e.g. {bad[:5]}"
    return len(want_creators), len(want_offers)


def row_versions(db) -> tuple[str, str]:
    with db.connect(autocommit=True) as conn:
        return tuple(
            conn.execute(
                sql.SQL("select md5(string_agg(xmin::text, ',' order by id)) from {}").format(
                    sql.Identifier(t)
                )
            ).fetchone()[0]
            for t in ("creator_profiles", "offers")
        )


# ------------------------------------------------------------------------------------------------------
def test_backfill_matches_the_oracle_row_by_row_and_reruns_write_nothing(applied_db):
    applied_db.backfill()
    n_creators, n_offers = assert_matches_oracle(applied_db)
    assert n_creators > 100 and n_offers > 300
    versions = row_versions(applied_db)
    audit_before = applied_db.scalar("select count(*) from audit_logs")
    applied_db.backfill()
    # not even a no-op UPDATE: no row got a new version
    assert row_versions(applied_db) == versions
    with applied_db.connect(autocommit=True) as conn:
        last = conn.execute(
            "select model, candidates, written from csinfra.writeback_log order by started_at desc limit 2"
        ).fetchall()
        summaries = conn.execute(
            "select metadata from audit_logs where action = 'admin.backfill_infrastructure' order by \"createdAt\""
        ).fetchall()
    assert {(m, c, w) for m, c, w in last} == {("wb_creator_profiles", 0, 0), ("wb_offers", 0, 0)}
    # one summary row for the run that wrote; the run on unchanged data writes nothing at all to the
    # application's tables, not even its summary (csinfra.writeback_log above records it)
    assert len(summaries) == 1
    assert summaries[0][0]["totals"]["written"] == n_creators_written(summaries[0][0]) > 0
    assert applied_db.scalar("select count(*) from audit_logs") == audit_before


def n_creators_written(summary: dict) -> int:
    return sum(m["written"] for m in summary["models"].values())


def test_every_trust_tier_change_is_audited(applied_db):
    applied_db.backfill()
    with applied_db.connect(autocommit=True) as conn:
        changed = conn.execute(
            """select count(*) from creator_profiles where "trustTier" <> 'NEW'"""
        ).fetchone()[0]
        rows = conn.execute(
            """select a."targetId", a.metadata, c."trustTier"::text from audit_logs a
               join creator_profiles c on c.id = a."targetId"
               where a.action = 'system.trust_updated'"""
        ).fetchall()
        assert all(
            r[0]
            for r in conn.execute("""select "actorType" = 'system' and "actorId" = 'system' and "targetType" = 'CreatorProfile'
                                                  from audit_logs where action = 'system.trust_updated'""")
        )
    assert changed > 0 and len(rows) == changed
    assert all(
        m["from"] == "NEW" and m["to"] == tier and m["source"] == "backfill" and m["runId"]
        for _, m, tier in rows
    )


def test_verify_reports_stats_and_drift(built_db):
    ok = built_db.cli("verify", "--json", check=True)
    report = json.loads(ok.stdout)
    assert set(report) >= {"totalCreators", "stats", "drift"}
    # every count against the database's own, taken here and not from verify's queries
    with built_db.connect(autocommit=True) as conn:
        total = conn.execute("select count(*) from creator_profiles").fetchone()[0]
        by_tier = dict(
            conn.execute('select "trustTier"::text, count(*) from creator_profiles group by 1').fetchall()
        )
        by_state = dict(
            conn.execute(
                'select "readinessState"::text, count(*) from creator_profiles group by 1'
            ).fetchall()
        )
    assert report["totalCreators"] == total
    assert {k: v for k, v in report["stats"]["trustTier"].items() if v} == by_tier
    assert {k: v for k, v in report["stats"]["readinessState"].items() if v} == by_state
    assert report["drift"]["total"] == 0
    with built_db.connect(autocommit=True) as conn:
        _tier, cid = conn.execute(
            """select "trustTier"::text, id from creator_profiles where "trustTier" = 'NEW' limit 1"""
        ).fetchone()
        conn.execute("""update creator_profiles set "trustTier" = 'PROVEN' where id = %s""", (cid,))
        conn.execute(
            """update offers set "isValid" = not "isValid" where id = (select min(id) from offers)"""
        )
    bad = built_db.cli("verify", "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["drift"] == {"creators": 1, "offers": 1, "total": 2}
    assert report["invariantViolations"]["provenWithoutCompletedCollab"] == 1
    assert report["invariantViolations"]["isValidDisagreesWithErrors"] == 1


def table_row_versions(db, table: str) -> dict:
    with db.connect(autocommit=True) as conn:
        return dict(
            conn.execute(sql.SQL("select id, xmin::text from {}").format(sql.Identifier(table))).fetchall()
        )


def test_backfill_cli_reports_progress_summary_and_requires_the_migration(applied_db, pre_db):
    before = {table: table_row_versions(applied_db, table) for table in ("creator_profiles", "offers")}
    result = applied_db.cli("backfill", "--json", "--batch-size", "100", check=True)
    summary = json.loads(result.stdout)
    creators = summary["models"]["wb_creator_profiles"]
    assert summary["ok"] and creators["written"] == creators["changedRowsFound"] > 0
    # "written" is what the database saw: the rows whose version changed, counted from the rows
    for model, table in (("wb_creator_profiles", "creator_profiles"), ("wb_offers", "offers")):
        after = table_row_versions(applied_db, table)
        changed = sum(1 for row_id, version in after.items() if before[table].get(row_id) != version)
        assert summary["models"][model]["written"] == changed, model
    assert creators["rowsScanned"] == applied_db.scalar("select count(*) from creator_profiles")
    assert summary["models"]["wb_offers"]["rowsScanned"] == applied_db.scalar("select count(*) from offers")
    assert creators["batches"] == -(-creators["changedRowsFound"] // 100)
    missing = pre_db.cli("backfill")
    assert missing.returncode == 1 and "csinfra migrate up" in missing.stderr


GARBAGE_CREATORS = [
    # id, displayName, handle, bio, niches, deliverables, minimumFlatFee, avatarUrl, ig, tt
    ("g_ws", "\t\u00a0\u3000", "\u2028\u2029", "\ufeff \r\n", None, "{}", None, "", True, False),
    ("g_zwsp", "\u200b", "h_zwsp", "\u0085", "{a}", "{b}", 1, " ", False, True),
    ("g_neg", "Name", "h_neg", "bio", "{}", None, -100, None, True, True),
    ("g_zero", "Name", "h_zero", "bio", "{a}", "{b}", 0, "x", True, False),
    ("g_full", "Name", "h_full", "bio", "{a,b}", "{reel}", 5000, "https://a", False, False),
    ("g_ready", "Name", "h_ready", "bio", "{a}", "{reel}", 5000, "https://a", True, True),
    ("g_nullarr", "Name", "h_nullarr", "bio", "{NULL}", "{''}", 2147483647, "u", True, False),
]


def test_garbage_in_the_source_rows_yields_the_specified_values(applied_db):
    with applied_db.connect() as conn:
        user = conn.execute("select id from users limit 1").fetchone()[0]
        host, prop = conn.execute('select "hostProfileId", id from properties limit 1').fetchone()
        conn.execute('alter table creator_profiles drop constraint "creator_profiles_userId_fkey"')
        conn.execute('drop index "creator_profiles_userId_key"')
        conn.execute('alter table creator_profiles alter column "instagramConnected" drop not null')
        for cid, dn, handle, bio, niches, deliv, fee, avatar, ig, tt in GARBAGE_CREATORS:
            conn.execute(
                """insert into creator_profiles (id, "userId", "displayName", handle, bio, niches, deliverables,
                   "minimumFlatFee", "avatarUrl", "instagramConnected", "tiktokConnected", "updatedAt")
                   values (%s, %s, %s, %s, %s, %s::text[], %s::text[], %s, %s, %s, %s, now())""",
                (cid, user, dn, handle, bio, niches, deliv, fee, avatar, ig, tt),
            )
        conn.execute("""update creator_profiles set "instagramConnected" = null where id = 'g_full'""")
        offers = [
            # id, cash, nights, deliverables, bonus, threshold, bonusCents, status, history, responded
            ("go_neg", -5000, -2, None, True, None, None, "pending", "[]", None),
            (
                "go_huge",
                2147483647,
                2000000,
                "{a}",
                False,
                None,
                None,
                "pending",
                '{"not": "an array"}',
                None,
            ),
            ("go_zero", 0, 0, "{}", True, 0, 0, "draft", '[1, "x", null]', None),
            (
                "go_11",
                9000,
                1,
                "{a,b,c,d,e,f,g,h,i,j,k}",
                False,
                None,
                None,
                "accepted",
                (
                    '[{"fromStatus":"pending","toStatus":"accepted","changedBy":"creator","changedAt":"2026-13-45T99:00:00Z"},'
                    ' {"toStatus":"countered","changedBy":"creator","changedAt":"2026-03-01T10:00:00.123+02:00"},'
                    ' {"toStatus":"accepted","changedBy":"creator","changedAt":"not a date"},'
                    ' {"toStatus":"accepted","changedBy":"host","changedAt":"2020-01-01T00:00:00Z"}]'
                ),
                None,
            ),
            ("go_ok", 5000, 1, "{a}", True, 100, 500, "declined", "[]", datetime(2026, 5, 1, 12, 0, 0, 1000)),
        ]
        for oid, cash, nights, deliv, bonus, thr, bc, status, hist, resp in offers:
            conn.execute(
                """insert into offers (id, "hostProfileId", "creatorProfileId", "offerType", "cashCents", "stayNights", deliverables,
                   "trafficBonusEnabled", "trafficBonusThreshold", "trafficBonusCents", status, "statusHistory",
                   "respondedAt", "updatedAt") values (%s, %s, 'g_ws', 'cash', %s, %s, %s::text[], %s, %s, %s, %s, %s::jsonb, %s, now())""",
                (oid, host, cash, nights, deliv, bonus, thr, bc, status, hist, resp),
            )
        conn.execute(
            """insert into collaborations (id, "offerId", "creatorId", "hostId", "propertyId", status, "updatedAt", "completedAt")
               values ('gc1', 'go_ok', 'g_zwsp', %s, %s, 'completed', now(), null),
                      ('gc2', 'go_11', 'g_neg', %s, %s, 'completed', now(), '2026-04-01 10:00:00')""",
            (host, prop, host, prop),
        )
        conn.commit()
    applied_db.backfill()
    assert_matches_oracle(applied_db)
    with applied_db.connect(autocommit=True) as conn:
        conn.row_factory = dict_row
        c = {r["id"]: r for r in conn.execute("select * from creator_profiles where id like 'g\\_%'")}
        o = {r["id"]: r for r in conn.execute("select * from offers where id like 'go\\_%'")}
    assert c["g_ws"]["readinessBlockers"][:3] == ["missing_display_name", "missing_handle", "missing_bio"]
    assert c["g_ws"]["firstOfferRespondedAt"] == datetime(2026, 3, 1, 8, 0, 0, 123000)  # +02:00 read as UTC
    assert c["g_zwsp"]["readinessBlockers"] == []  # U+200B and U+0085 are not whitespace to trim()
    assert c["g_zwsp"]["trustTier"] == "VERIFIED" and c["g_zwsp"]["firstCollabCompletedAt"] is None
    assert c["g_neg"]["trustTier"] == "PROVEN"
    assert c["g_full"]["readinessState"] == "PENDING_OAUTH" and c["g_ready"]["readinessState"] == "READY"
    assert o["go_huge"]["totalValueCents"] is None and o["go_huge"]["isValid"] is True
    assert o["go_neg"]["validationErrors"] == oracle.MESSAGES[:2] + oracle.MESSAGES[3:]
    assert o["go_zero"]["originalTermsSnapshot"]["reconstructed"] is True
    assert o["go_ok"]["isValid"] and o["go_ok"]["totalValueCents"] == 20000


def test_an_interrupted_backfill_resumes_and_finishes(applied_db):
    env = dbt_env(applied_db.target, "public")
    cmd = dbt_command(["build", *LOAD_AND_RUN, "--selector", "backfill"], {"writeback_batch_size": 40})
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    written = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            written = applied_db.scalar(
                "select coalesce(sum(written), 0) from csinfra.writeback_log"
                if applied_db.scalar("select to_regclass('csinfra.writeback_log') is not null")
                else "select 0"
            )
            # kill once batches were written and both rule views exist (dbt's two threads build the
            # offer view concurrently with the creators' write-back, so verify can read both)
            views_ready = applied_db.scalar(
                "select to_regclass('csinfra.int_creators_derived') is not null "
                "and to_regclass('csinfra.int_offers_validated') is not null"
            )
            if written >= 80 and views_ready:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert written >= 80, "the run finished before it could be interrupted"
    verified = applied_db.cli("verify", "--json")
    assert verified.stdout, verified.stderr
    report = json.loads(verified.stdout)
    assert report["drift"]["total"] > 0  # it really stopped part-way
    resumed = applied_db.cli("backfill", "--json", check=True)
    summary = json.loads(resumed.stdout)
    assert summary["resumedAfterInterruptedRuns"]
    again = applied_db.cli("verify", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["drift"]["total"] == 0
    assert_matches_oracle(applied_db)


def test_backfill_under_concurrent_online_writes_loses_nothing(built_db):
    """While the backfill runs in small batches, the application edits profiles and offers and
    calls the online path; afterwards drift is 0 and every application write is there."""
    applied_db = built_db
    with applied_db.connect(autocommit=True) as conn:
        # back to the post-migration defaults, so the backfill has every row to write again
        conn.execute("""update creator_profiles set "trustTier" = 'NEW', "readinessState" = 'INCOMPLETE',
                        "readinessBlockers" = '[]', "profileCompleteness" = 0""")
        ids = [r[0] for r in conn.execute("select id from creator_profiles order by id")]
        host = conn.execute("select id from host_profiles limit 1").fetchone()[0]
    last_bio: dict[str, str | None] = {}
    last_ig: dict[str, bool] = {}
    offers_written: list[str] = []
    errors: list[BaseException] = []
    commit_times: list = []
    stop = threading.Event()
    lock = threading.Lock()

    def app_writer(n: int):
        rng = random.Random(n)
        i = 0
        with applied_db.connect() as conn:
            while not stop.is_set():
                i += 1
                cid = rng.choice(halves[n])
                bio = rng.choice([None, "", " \t", f"bio {i}"])
                ig = rng.random() < 0.5
                try:
                    with conn.transaction():
                        conn.execute(
                            'update creator_profiles set bio = %s, "instagramConnected" = %s, "updatedAt" = now() where id = %s',
                            (bio, ig, cid),
                        )
                        if i % 3 == 0:
                            conn.execute(
                                """insert into offers (id, "hostProfileId", "creatorProfileId", "offerType", "cashCents", deliverables,
                                   status, "updatedAt") values (%s, %s, %s, 'cash', %s, '{reel}', 'pending', now())""",
                                (f"live_{n}_{i}", host, cid, rng.choice([0, 4000, 20000])),
                            )
                        update_creator_readiness(conn, cid)
                        # the database's clock, to place this commit against the write-back's own log
                        committed_at = conn.execute("select clock_timestamp()").fetchone()[0]
                except BaseException as exc:  # noqa: BLE001 — any failure fails the test, not only the database's
                    errors.append(exc)
                    if not isinstance(exc, psycopg.Error):
                        return
                    continue
                with lock:
                    last_bio[cid], last_ig[cid] = bio, ig
                    commit_times.append(committed_at)
                    if i % 3 == 0:
                        offers_written.append(f"live_{n}_{i}")

    # two writers on disjoint creators, so "the last write" of each row is well defined
    halves = [ids[0::2], ids[1::2]]
    threads = [threading.Thread(target=app_writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        applied_db.backfill(writeback_batch_size=25)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert len(last_bio) > 10
    with applied_db.connect(autocommit=True) as conn:
        # the writes really raced the write-back: some committed between its start and its end
        started, finished = conn.execute(
            """select started_at, finished_at from csinfra.writeback_log
               where model = 'wb_creator_profiles' order by started_at desc limit 1"""
        ).fetchone()
        during = [c for c in commit_times if started < c < finished]
        assert during, (started, finished, min(commit_times), max(commit_times))
        assert any(c > finished for c in commit_times)
        stored = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                'select id, bio, "instagramConnected" from creator_profiles where id = any(%s)',
                (list(last_bio),),
            )
        }
        n_offers = conn.execute(
            "select count(*) from offers where id = any(%s)", (offers_written,)
        ).fetchone()[0]
    assert stored == {cid: (last_bio[cid], last_ig[cid]) for cid in last_bio}
    assert n_offers == len(offers_written)
    with applied_db.connect(autocommit=True) as conn:
        assert (
            conn.execute("select count(*) from csinfra.int_creators_derived where is_drifted").fetchone()[0]
            == 0
        )
    # the offers the application inserted during the run are picked up by the next run; drift is then 0
    applied_db.backfill()
    report = json.loads(applied_db.cli("verify", "--json").stdout)
    assert report["drift"]["total"] == 0
    assert_matches_oracle(applied_db)


def test_a_row_the_application_changes_mid_run_is_never_overwritten_with_a_stale_value(built_db):
    """Rows derived at the start of the run and edited by the application before their batch is
    written are skipped by the row-version guard, then re-derived fresh and written."""
    with built_db.connect(autocommit=True) as conn:
        conn.execute("""update creator_profiles set "trustTier" = 'NEW', "readinessState" = 'INCOMPLETE',
                        "readinessBlockers" = '[]', "profileCompleteness" = 0""")
        late = [
            r[0]
            for r in conn.execute(
                """select id from creator_profiles where bio is not null and btrim(bio) <> '' order by id desc limit 5"""
            )
        ]
    env = dbt_env(built_db.target, "public")
    cmd = dbt_command(
        ["run", "--select", "wb_creator_profiles"],
        {"writeback_batch_size": 20, "writeback_pause_seconds": 0.2},
    )
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the run has derived its work and started writing
        if built_db.scalar(
            "select count(*) from csinfra.writeback_log where status = 'writing' and model = 'wb_creator_profiles'"
        ):
            break
        time.sleep(0.05)
    with built_db.connect(autocommit=True) as conn:
        # the application blanks these bios (a blocker appears) after the backfill derived them
        conn.execute("update creator_profiles set bio = '  ' where id = any(%s)", (late,))
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    with built_db.connect(autocommit=True) as conn:
        log = conn.execute(
            "select skipped, retried, written, candidates from csinfra.writeback_log where model = 'wb_creator_profiles' "
            "order by started_at desc limit 1"
        ).fetchone()
        rows = conn.execute(
            """select bio, "readinessBlockers" from creator_profiles where id = any(%s)""", (late,)
        ).fetchall()
        drift = conn.execute("select count(*) from csinfra.int_creators_derived where is_drifted").fetchone()[
            0
        ]
    skipped, retried, written, candidates = log
    assert retried >= len(late) and skipped == 0 and written + retried == candidates
    assert all(bio == "  " and "missing_bio" in blockers for bio, blockers in rows)
    assert drift == 0
