"""The analysts' side (issue 5): demo events, the marts' numbers against independent computations,
incremental = full refresh, the leak guards, documentation, and the HTML report in a real browser."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import zlib
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from psycopg import sql

import oracle
from conftest import TARGET
from creatorstays_infra import record_offer_status_change, update_creator_readiness
from creatorstays_infra.errors import CsinfraError
from creatorstays_infra.ops import demo
from creatorstays_infra.ops.dbt import LOAD_AND_RUN
from creatorstays_infra.ops.marts import MART_MODELS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "csinfra"
AS_OF = "2026-11-27 00:00:00"
MARTS_RUN = ("run", "--select", "+path:models/marts", "--exclude", "path:models/writeback")
INCREMENTAL = (
    "int_funnel_milestones_recorded",
    "int_creator_profile_views_daily",
    "int_creator_trust_tier_changes",
    "int_creator_trust_tier_periods",
    "int_creator_search_components",
)
SECRET_COLUMN = re.compile(r"email|e_mail|ip_?address|token|secret|password|refresh", re.IGNORECASE)


def rows(db, query, params=None):
    with db.connect(autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def mart_sql(text: str) -> sql.Composed:
    """SQL naming the marts' schema as {m}, composed with psycopg.sql."""
    return sql.SQL(text).format(m=sql.Identifier(SCHEMA))


def digests(db, tables) -> dict[str, str]:
    out = {}
    with db.connect(autocommit=True) as conn:
        for t in tables:
            out[t] = conn.execute(
                sql.SQL(
                    "select count(*) || ':' || md5(coalesce(string_agg(md5(x::text), '' order by md5(x::text)), '')) from {} as x"
                ).format(sql.Identifier(SCHEMA, t))
            ).fetchone()[0]
    return out


# -- demo events ------------------------------------------------------------------------------------------
def test_demo_events_are_consistent_with_offers_and_collaborations(marts_db):
    db = marts_db
    # every offer event names an existing offer that was sent, after it was created
    assert (
        db.scalar("""
        select count(*) from analytics_events e left join offers o on o.id = e."eventData"->>'offerId'
        where e."eventType" in ('offer_sent', 'offer_responded')
          and (o.id is null or o.status = 'draft' or e."createdAt" < o."createdAt")""")
        == 0
    )
    assert (
        db.scalar("""
        select count(*) from analytics_events e left join collaborations c on c.id = e."eventData"->>'collabId'
        where e."eventType" like 'collab_%' and c.id is null""")
        == 0
    )
    # completions only for completed collaborations; responses only for responded statuses
    assert (
        db.scalar("""
        select count(*) from analytics_events e join collaborations c on c.id = e."eventData"->>'collabId'
        where e."eventType" = 'collab_completed' and c.status <> 'completed'""")
        == 0
    )
    assert (
        db.scalar("""
        select count(*) from analytics_events e join offers o on o.id = e."eventData"->>'offerId'
        where e."eventType" = 'offer_responded' and (e."eventData"->>'response') <> o.status""")
        == 0
    )
    # the imperfections are there: duplicates, late deliveries, lost events, completions known only from events
    assert (
        db.scalar("""select count(*) from (select 1 from analytics_events where "eventType" = 'offer_sent'
                        group by "eventData"->>'offerId' having count(*) > 1) d""")
        > 0
    )
    assert (
        db.scalar("""select count(*) from analytics_events e join offers o on o.id = e."eventData"->>'offerId'
                        where e."eventType" = 'offer_responded' and e."createdAt" > o."respondedAt" + interval '1 hour'""")
        > 0
    )
    assert (
        db.scalar(
            """select count(*) from offers o where o.status <> 'draft' and o."createdAt" >= %s
                        and not exists (select from analytics_events e where e."eventType" = 'offer_sent'
                                        and e."eventData"->>'offerId' = o.id)""",
            (demo.PHASE1_LIVE_AT,),
        )
        > 0
    )
    assert (
        db.scalar("""select count(*) from collaborations c join analytics_events e on e."eventData"->>'collabId' = c.id
                        and e."eventType" = 'collab_completed' where c.status = 'completed' and c."completedAt" is null""")
        > 0
    )
    # nothing before go-live; user actors carry e-mail and IP (so the marts' guards have something to keep out)
    assert (
        db.scalar('select count(*) from analytics_events where "createdAt" < %s', (demo.PHASE1_LIVE_AT,)) == 0
    )
    assert (
        db.scalar("""select count(*) from audit_logs where "actorType" = 'user'
                        and ("actorEmail" is null or "ipAddress" is null)""")
        == 0
    )
    types = dict(rows(db, 'select "eventType", count(*) from analytics_events group by 1'))
    assert set(types) == {
        "offer_sent",
        "offer_responded",
        "collab_started",
        "collab_completed",
        "profile_viewed",
    }
    assert types["profile_viewed"] == demo.PROFILE_VIEWS_PER_CREATOR * db.scalar(
        "select count(*) from creator_profiles"
    )


def test_demo_events_refuse_bad_states(pre_db, marts_db):
    with pre_db.connect() as conn, pytest.raises(CsinfraError, match="Phase 1 is not applied"):
        demo.generate_events(conn, "public")
    with marts_db.connect() as conn, pytest.raises(CsinfraError, match="audit_logs already has rows"):
        demo.generate_events(conn, "public")
    result = marts_db.cli("demo-data", "--events-only")
    assert result.returncode == 1 and "already has rows" in result.stderr


def test_demo_events_can_be_sized_exactly(applied_db):
    with applied_db.connect() as conn, pytest.raises(CsinfraError, match="below the .* funnel events"):
        demo.generate_events(conn, "public", analytics_events=1)
    with applied_db.connect() as conn:
        summary = demo.generate_events(conn, "public", analytics_events=50_000)
    assert summary.rows["analytics_events"] == 50_000
    funnel_events = applied_db.scalar(
        """select count(*) from analytics_events where "eventType" <> 'profile_viewed'"""
    )
    assert 0 < funnel_events < 50_000


# -- the marts' numbers ------------------------------------------------------------------------------------
def test_readiness_blockers_match_the_oracle(marts_db):
    profiles = rows(
        marts_db,
        """select "displayName", handle, bio, niches, deliverables, "minimumFlatFee", "avatarUrl",
                                        "instagramConnected", "tiktokConnected" from creator_profiles""",
    )
    keys = (
        "displayName",
        "handle",
        "bio",
        "niches",
        "deliverables",
        "minimumFlatFee",
        "avatarUrl",
        "instagramConnected",
        "tiktokConnected",
    )
    expected = Counter()
    alone = Counter()
    for p in profiles:
        blockers = oracle.creator(dict(zip(keys, p, strict=True)), None)["readinessBlockers"]
        expected.update(blockers)
        if len(blockers) == 1:
            alone.update(blockers)
    report = rows(
        marts_db,
        mart_sql(
            "select blocker_code, message, creators_blocked, creators_blocked_only_by_this, "
            "total_creators from {m}.rpt_readiness_blockers order by display_order"
        ),
    )
    assert [r[1] for r in report] == oracle.BLOCKER_MESSAGES
    for code, _, blocked, only, total in report:
        assert blocked == expected[code], code
        assert only == alone[code], code
        assert total == len(profiles)
    # the dashboard shows each creator's blockers in rule order, with the rule's messages
    shown = rows(
        marts_db,
        mart_sql(
            "select creator_profile_id, blocker_code, message from {m}.rpt_creator_dashboard_blockers "
            "order by creator_profile_id, position_on_dashboard"
        ),
    )
    messages = dict(zip(oracle.BLOCKER_CODES, oracle.BLOCKER_MESSAGES, strict=True))
    assert all(messages[code] == message for _, code, message in shown)
    assert Counter(code for _, code, _ in shown) == expected


def test_offer_funnel_against_the_operational_tables(marts_db):
    db = marts_db
    sent = db.scalar("select count(*) from offers where status <> 'draft'")
    assert db.scalar(mart_sql("select count(*) from {m}.fct_offer_funnel")) == sent
    assert db.scalar(mart_sql("select sum(offers_sent) from {m}.rpt_offer_funnel_by_sent_week")) == sent
    # completed = completed collaborations, whether or not their completedAt is known
    completed = db.scalar("""select count(*) from offers o join collaborations c on c."offerId" = o.id
                             where c.status = 'completed'""")
    assert db.scalar(mart_sql("select count(*) from {m}.fct_offer_funnel where is_completed")) == completed
    # where only the event knows when a collaboration completed, the funnel takes the event's time
    known_by_event = rows(
        db,
        mart_sql("""
        select f.completed_at, e."createdAt" from {m}.fct_offer_funnel f
        join collaborations c on c."offerId" = f.offer_id and c.status = 'completed' and c."completedAt" is null
        join analytics_events e on e."eventType" = 'collab_completed' and e."eventData"->>'collabId' = c.id"""),
    )
    assert known_by_event and all(f == e for f, e in known_by_event)
    # a late or duplicated response event never moves the response later than the operational time
    assert (
        db.scalar(
            mart_sql("""select count(*) from {m}.fct_offer_funnel f join offers o on o.id = f.offer_id
                         where f.responded_at > o."respondedAt" """)
        )
        == 0
    )
    # duplicates are counted once
    assert db.scalar(mart_sql("select count(*) from {m}.fct_offer_funnel where has_sent_event")) == db.scalar(
        """select count(distinct "eventData"->>'offerId') from analytics_events where "eventType" = 'offer_sent'"""
    )
    # the funnel is monotone per cohort, windowed counts never exceed the ever counts
    bad = db.scalar(
        mart_sql("""select count(*) from {m}.rpt_offer_funnel_by_sent_week
                        where not (offers_sent >= offers_viewed and offers_viewed >= offers_responded
                               and offers_responded >= offers_accepted and offers_accepted >= collabs_started
                               and collabs_started >= collabs_completed)""")
    )
    assert bad == 0


def test_windows_still_open_are_null_not_low(marts_db):
    marts_db.dbt(*MARTS_RUN, vars_={"marts_as_of": AS_OF})
    weeks = rows(
        marts_db,
        mart_sql("""select sent_week, accepted_within_window, completed_within_window, accepted_window_days,
                                      completed_window_days from {m}.rpt_offer_funnel_by_sent_week order by sent_week"""),
    )
    as_of = datetime.fromisoformat(AS_OF)
    open_seen = closed_seen = False
    for week, accepted, completed, acc_days, comp_days in weeks:
        start = datetime.combine(week, datetime.min.time())
        for value, days in ((accepted, acc_days), (completed, comp_days)):
            mature = start + timedelta(days=7 + days) <= as_of
            assert (value is not None) == mature, (week, days)
            open_seen |= not mature
            closed_seen |= mature
    assert open_seen and closed_seen


def test_activation_and_trust_tiers(marts_db):
    db = marts_db
    n = db.scalar("select count(*) from creator_profiles")
    assert (
        db.scalar(mart_sql("select sum(creators_signed_up) from {m}.rpt_creator_activation_by_signup_week"))
        == n
    )
    assert db.scalar(
        mart_sql("""select sum(creators_ready) from {m}.rpt_creator_activation_by_signup_week""")
    ) == db.scalar("""select count(*) from creator_profiles where "readinessState" = 'READY'""")
    assert db.scalar(
        mart_sql("""select sum(creators_with_offer) from {m}.rpt_creator_activation_by_signup_week""")
    ) == db.scalar("""select count(*) from creator_profiles where "firstOfferReceivedAt" is not null""")
    # trust tiers: the day before the backfill everyone was NEW; at the end, the stored distribution
    stored = dict(rows(db, 'select "trustTier"::text, count(*) from creator_profiles group by 1'))
    last = dict(
        rows(
            db,
            mart_sql("""select trust_tier, creators from {m}.rpt_trust_tier_distribution_daily
                             where calendar_day = (select max(calendar_day) from {m}.rpt_trust_tier_distribution_daily)"""),
        )
    )
    assert {k: v for k, v in last.items() if v} == stored
    first_change = db.scalar(
        """select min("createdAt")::date from audit_logs where action = 'system.trust_updated'"""
    )
    before = dict(
        rows(
            db,
            mart_sql("""select trust_tier, creators from {m}.rpt_trust_tier_distribution_daily
                               where calendar_day = %s::date - 1"""),
            (first_change,),
        )
    )
    signed_up_before = db.scalar(
        'select count(*) from creator_profiles where "createdAt"::date < %s', (first_change,)
    )
    assert before == {"NEW": signed_up_before, "VERIFIED": 0, "PROVEN": 0}
    # an online tier change lands in the history after a rebuild
    cid = db.scalar("""select id from creator_profiles where "trustTier" = 'NEW' and not "instagramConnected"
                       and not "tiktokConnected" order by id limit 1""")
    with db.connect() as conn:
        conn.execute(
            'update creator_profiles set "instagramConnected" = true, "displayName" = %s, bio = %s, niches = %s, '
            'deliverables = %s, "minimumFlatFee" = 10000, handle = %s where id = %s',
            ("Someone", "A bio", ["travel"], ["instagram_reel"], f"h_{cid}", cid),
        )
        from creatorstays_infra import update_creator_readiness

        update_creator_readiness(conn, cid)
        conn.commit()
    db.dbt(*MARTS_RUN)
    after = dict(
        rows(
            db,
            mart_sql("""select trust_tier, creators from {m}.rpt_trust_tier_distribution_daily
                              where calendar_day = (select max(calendar_day) from {m}.rpt_trust_tier_distribution_daily)"""),
        )
    )
    assert after["NEW"] == last["NEW"] - 1 and after["VERIFIED"] == last["VERIFIED"] + 1


def test_search_ranking_prefers_trust(marts_db):
    ranked = rows(
        marts_db,
        mart_sql("""select trust_tier, search_score, search_rank, is_searchable
                                from {m}.rpt_creator_search_ranking"""),
    )
    assert all((rank is not None) == searchable for _, _, rank, searchable in ranked)
    searchable = sorted((r for r in ranked if r[3]), key=lambda r: r[2])
    assert [r[2] for r in searchable] == list(range(1, len(searchable) + 1))
    scores = [float(r[1]) for r in searchable]
    assert scores == sorted(scores, reverse=True)
    # with the other components equal, a higher tier scores higher: PROVEN beats VERIFIED by the weight gap
    by_tier = {t: [float(s) for tt, s, _, ok in ranked if tt == t and ok] for t in ("VERIFIED", "PROVEN")}
    assert by_tier["PROVEN"] and by_tier["VERIFIED"]
    assert sum(by_tier["PROVEN"]) / len(by_tier["PROVEN"]) > sum(by_tier["VERIFIED"]) / len(
        by_tier["VERIFIED"]
    )


def test_search_ranking_isolates_the_trust_weight(marts_db):
    """Three creators equal in every component but the stored trust tier (same profile, no views, no
    collaborations): their scores differ by exactly weight(trust_tier) × the tiers' score gap. With a trust
    weight of 0 they would tie: the earlier test's PROVEN > VERIFIED holds through completed collaborations too."""
    project = yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]["search_ranking"]
    with (ROOT / "seeds" / "trust_tiers.csv").open() as f:
        tier_score = {r["trust_tier"]: float(r["search_score"]) for r in csv.DictReader(f)}
    weight = float(project["weights"]["trust_tier"])
    assert weight > 0 and tier_score["PROVEN"] > tier_score["VERIFIED"] > tier_score["NEW"]
    twins = {"twin_new": "NEW", "twin_verified": "VERIFIED", "twin_proven": "PROVEN"}
    with marts_db.connect() as conn:
        for cid, tier in twins.items():
            user = f"u_{cid}"
            conn.execute(
                """insert into users (id, email, "updatedAt") values (%s, %s, now())""",
                (user, f"{cid}@example.test"),
            )
            conn.execute(
                """insert into creator_profiles (id, "userId", handle, "displayName", bio, niches, deliverables,
                   "minimumFlatFee", "avatarUrl", "instagramConnected", "isActive", "isPublic", "updatedAt",
                   "trustTier", "readinessState", "readinessBlockers", "profileCompleteness")
                   values (%s, %s, %s, 'Twin', 'Bio', '{travel}', '{reel}', 5000, 'https://a', true, true, true, now(),
                   %s, 'READY', '[]', 1.0)""",
                (cid, user, cid, tier),
            )
        conn.commit()
    marts_db.dbt("build", *LOAD_AND_RUN, "--selector", "marts", vars_={"marts_as_of": AS_OF})
    with marts_db.connect() as conn:
        scores = dict(
            conn.execute(
                "select creator_profile_id, search_score from csinfra.rpt_creator_search_ranking "
                "where creator_profile_id = any(%s)",
                (list(twins),),
            ).fetchall()
        )
    gap = {cid: float(scores[cid]) - float(scores["twin_new"]) for cid in twins}
    assert gap["twin_new"] == 0
    assert gap["twin_verified"] == pytest.approx(
        weight * (tier_score["VERIFIED"] - tier_score["NEW"]), abs=2e-6
    )
    assert gap["twin_proven"] == pytest.approx(weight * (tier_score["PROVEN"] - tier_score["NEW"]), abs=2e-6)


# -- incremental = full refresh --------------------------------------------------------------------------
def test_incremental_models_equal_a_full_refresh(applied_db):
    """Events arrive in two loads (the second with late arrivals inside the lookback window); the
    incremental build must equal a full refresh of the same data, table for table."""
    db = applied_db
    with db.connect() as conn:
        conn.execute(
            "select 1"
        )  # open a transaction, so generate_events' own becomes a savepoint we can undo
        demo.generate_events(conn, "public", seed=7)
        events = conn.execute(EVENT_ROWS).fetchall()
        audits = conn.execute(AUDIT_ROWS).fetchall()
        conn.rollback()  # generate_events ran inside our transaction: keep its rows, not the tables' contents
    assert events and audits
    newest = max(e[-1] for e in events)
    cutoff = newest - (newest - min(e[-1] for e in events)) / 5

    def split(batch):
        """First load: everything before the cutoff except every third row of its last two days,
        which arrives late, with the second load (older than what the first build saw, inside the lookback)."""
        late = [
            r
            for r in batch
            if cutoff - timedelta(days=2) <= r[-1] < cutoff and zlib.crc32(r[0].encode()) % 3 == 0
        ]
        late_ids = {r[0] for r in late}
        first = [r for r in batch if r[-1] < cutoff and r[0] not in late_ids]
        rest = [r for r in batch if r[-1] >= cutoff]
        return first, late + rest, late

    ev1, ev2, ev_late = split(events)
    au1, au2, _ = split(audits)
    assert ev_late, "the second load must hold late arrivals"
    _insert(db, ev1, au1)
    db.dbt("build", *LOAD_AND_RUN, vars_={"marts_as_of": AS_OF})  # catalogs, backfill, first build of all
    _insert(db, ev2, au2)
    db.dbt(*MARTS_RUN, vars_={"marts_as_of": AS_OF})  # incremental
    incremental = digests(db, (*INCREMENTAL, *MART_MODELS))
    db.dbt(*MARTS_RUN, "--full-refresh", vars_={"marts_as_of": AS_OF})
    assert digests(db, (*INCREMENTAL, *MART_MODELS)) == incremental
    # and the late arrivals were counted: the incremental run saw every offer_sent event
    assert db.scalar(
        mart_sql("""select count(*) from {m}.int_funnel_milestones_recorded where milestone = 'sent'""")
    ) == db.scalar(
        """select count(distinct "eventData"->>'offerId') from analytics_events where "eventType" = 'offer_sent'"""
    )


MUTABLE_MARTS = (
    "dim_creators",
    "fct_creator_activation",
    "rpt_creator_dashboard_blockers",
    "fct_offer_funnel",
)


INCREMENTAL_MART_KEYS = {
    "dim_creators": "creator_profile_id",
    "fct_creator_activation": "creator_profile_id",
    "fct_offer_funnel": "offer_id",
    "int_creator_search_components": "creator_profile_id",
    "rpt_creator_activation_by_signup_week": "signup_week",
    "rpt_offer_funnel_by_sent_week": "sent_week",
}


def mart_rows(db) -> dict[str, dict]:
    """{mart: {key: (row version, row as text)}} of the incremental marts with one row per key."""
    with db.connect(autocommit=True) as conn:
        return {
            mart: {
                key: (version, text)
                for key, version, text in conn.execute(
                    sql.SQL("select {key}::text, kept.xmin::text, kept::text from {table} as kept").format(
                        key=sql.Identifier(key), table=sql.Identifier(SCHEMA, mart)
                    )
                ).fetchall()
            }
            for mart, key in INCREMENTAL_MART_KEYS.items()
        }


def rewritten_and_changed(before: dict, after: dict) -> tuple[set, set]:
    """The keys whose row the build wrote (a new row version) and the keys whose row differs (or is new)."""
    rewritten = {key for key, (version, _) in after.items() if key not in before or before[key][0] != version}
    changed = {key for key, (_, text) in after.items() if key not in before or before[key][1] != text}
    return rewritten, changed


def test_incremental_marts_follow_every_kind_of_write_and_touch_nothing_else(marts_db):
    """The marts built from the application's mutable rows are incremental, driven by the rows' versions: after
    writes of every kind (the application's edits and the online path, a tier set as the write-back sets it, with
    no updatedAt, a login, a status change with history, a completed collaboration, an offer deleted, one back to
    draft, a whole sent week back to draft, a creator deleted, a creator left without blockers, new funnel events),
    the incremental build equals a full refresh table for table; it rewrote exactly the rows whose content changed
    and no other (row versions); and when var marts_as_of moves, the reports that depend on it still equal a full
    refresh."""
    db = marts_db
    db.dbt(*MARTS_RUN, vars_={"marts_as_of": AS_OF})  # every mart built once, the marks set
    before = mart_rows(db)
    with db.connect() as conn:
        one = lambda q, p=None: conn.execute(q, p).fetchone()
        edited = one("""select id from creator_profiles where bio is not null order by id limit 1""")[0]
        conn.execute(
            """update creator_profiles set bio = null, "updatedAt" = now() where id = %s""", (edited,)
        )
        update_creator_readiness(conn, edited)
        completed = one(
            """select id from creator_profiles where "readinessState" <> 'READY' and "userId" is not null
               and id <> %s order by id limit 1""",
            (edited,),
        )[0]
        conn.execute(
            """update creator_profiles set "displayName" = 'Ready Now', handle = 'ready_now', bio = 'a bio',
                      niches = '{travel}', deliverables = '{reel}', "minimumFlatFee" = 20000,
                      "instagramConnected" = true, "updatedAt" = now() where id = %s""",
            (completed,),
        )
        update_creator_readiness(conn, completed)
        tiered = one(
            """select c.id from creator_profiles as c where exists (select 1 from offers where "creatorProfileId" = c.id)
               and "trustTier" = 'NEW' order by c.id limit 1"""
        )[0]
        conn.execute(
            """update creator_profiles set "trustTier" = 'VERIFIED' where id = %s""", (tiered,)
        )  # no updatedAt
        logged_in = one(
            """select id from creator_profiles where id not in (%s, %s, %s) order by id limit 1""",
            (edited, completed, tiered),
        )[0]
        conn.execute(  # a login: the user account changes, the creator profile does not
            """update users set "lastLoginAt" = '2026-11-20 10:00:00'
               where id = (select "userId" from creator_profiles where id = %s)""",
            (logged_in,),
        )
        pending = one("""select id from offers where status = 'pending' order by id limit 1""")[0]
        record_offer_status_change(conn, pending, "pending", "declined", "creator")
        to_draft = one(
            """select o.id from offers as o where status = 'pending' and id <> %s
               and not exists (select 1 from collaborations where "offerId" = o.id) order by id limit 1""",
            (pending,),
        )[0]
        conn.execute("""update offers set status = 'draft' where id = %s""", (to_draft,))
        deleted_offer = one(
            """select o.id from offers as o where status <> 'draft' and id not in (%s, %s)
               and not exists (select 1 from collaborations where "offerId" = o.id) order by id desc limit 1""",
            (pending, to_draft),
        )[0]
        conn.execute("""delete from offers where id = %s""", (deleted_offer,))
        collab = one("""select id from collaborations where status <> 'completed' order by id limit 1""")[0]
        conn.execute(
            """update collaborations set status = 'completed', "completedAt" = '2026-11-21 12:00:00' where id = %s""",
            (collab,),
        )
        gone = one(
            """select c.id from creator_profiles as c
               where not exists (select 1 from collaborations where "creatorId" = c.id)
                 and c.id not in (%s, %s, %s, %s)
               order by c.id desc limit 1""",
            (edited, completed, tiered, logged_in),
        )[0]
        conn.execute("""delete from offers where "creatorProfileId" = %s""", (gone,))
        conn.execute("""delete from creator_profiles where id = %s""", (gone,))
        viewed = one(  # an offer not viewed yet: the new event sets its viewed_at
            mart_sql(
                """select offer_id from {m}.fct_offer_funnel where status = 'pending' and viewed_at is null
                   and offer_id <> %s order by offer_id desc limit 1"""
            ),
            (pending,),
        )[0]
        conn.execute(
            """insert into audit_logs (id, action, "actorType", "actorId", "targetType", "targetId", metadata, "createdAt")
               values ('audit_view_new', 'offer.viewed', 'user', 'u1', 'Offer', %s, '{}', now())""",
            (viewed,),
        )
        # the sent week with the fewest offers (none of those above) goes back to draft whole: its row must go
        smallest_week, week_offers = one(
            mart_sql(
                """select sent_week::text, array_agg(offer_id) from {m}.fct_offer_funnel group by sent_week
                   having not bool_or(offer_id = any(%s)) order by count(*), sent_week limit 1"""
            ),
            ([pending, to_draft, deleted_offer, viewed],),
        )
        conn.execute("""update offers set status = 'draft' where id = any(%s)""", (week_offers,))
        conn.commit()
    db.dbt(*MARTS_RUN, vars_={"marts_as_of": AS_OF})  # incremental
    incremental = digests(db, (*INCREMENTAL, *MART_MODELS))
    after = mart_rows(db)
    db.dbt(*MARTS_RUN, "--full-refresh", vars_={"marts_as_of": AS_OF})
    assert digests(db, (*INCREMENTAL, *MART_MODELS)) == incremental
    # each write reached its mart rows ...
    dims, offers = after["dim_creators"], after["fct_offer_funnel"]
    for creator in (edited, completed, tiered, logged_in):
        assert dims[creator][0] != before["dim_creators"][creator][0], creator
    assert gone in before["dim_creators"] and gone not in dims
    assert gone not in after["fct_creator_activation"]
    assert to_draft in before["fct_offer_funnel"] and to_draft not in offers
    assert deleted_offer not in offers
    assert not set(week_offers) & set(offers)
    assert smallest_week not in after["rpt_offer_funnel_by_sent_week"]
    for offer in (pending, viewed):
        assert offers[offer][0] != before["fct_offer_funnel"][offer][0], offer
    assert (
        db.scalar(
            mart_sql("select count(*) from {m}.rpt_creator_dashboard_blockers where creator_profile_id = %s"),
            (completed,),
        )
        == 0
    )
    # ... and the build wrote exactly the rows whose content changed, no other: incremental, not a rebuild
    for mart in INCREMENTAL_MART_KEYS:
        rewritten, changed = rewritten_and_changed(before[mart], after[mart])
        assert rewritten == changed, (mart, sorted(rewritten ^ changed)[:5])
        assert len(rewritten) <= 0.2 * len(after[mart]), (mart, len(rewritten), len(after[mart]))
    # var marts_as_of moves on (a later day): the windows that depend on it are recomputed, and only what changed
    # is rewritten; still equal to a full refresh
    later = "2027-01-15 00:00:00"
    before_later = mart_rows(db)
    db.dbt(*MARTS_RUN, vars_={"marts_as_of": later})
    incremental = digests(db, (*INCREMENTAL, *MART_MODELS))
    after_later = mart_rows(db)
    db.dbt(*MARTS_RUN, "--full-refresh", vars_={"marts_as_of": later})
    assert digests(db, (*INCREMENTAL, *MART_MODELS)) == incremental
    for mart in INCREMENTAL_MART_KEYS:
        rewritten, changed = rewritten_and_changed(before_later[mart], after_later[mart])
        assert rewritten == changed, (mart, sorted(rewritten ^ changed)[:5])
    assert rewritten_and_changed(
        before_later["rpt_offer_funnel_by_sent_week"], after_later["rpt_offer_funnel_by_sent_week"]
    )[1], "the later as-of settles some windowed counts"


def _plan_reads(db, model: str, relation: str) -> int:
    """How many times the incremental SQL of `model` (as the last dbt run compiled it) reads `relation`: the loops of
    its scan nodes, from EXPLAIN ANALYZE (0: PostgreSQL never ran them)."""
    compiled = next((TARGET / "compiled").rglob(f"{model}.sql")).read_text()
    with db.connect() as conn:
        # dbt's compiled SQL, as dbt itself sends it: composed, not formatted into a string
        plan = conn.execute(sql.SQL("explain (analyze, format json) ") + sql.SQL(compiled)).fetchone()[0]
        conn.rollback()

    def loops(node) -> int:
        own = node.get("Actual Loops", 0) if node.get("Relation Name") == relation else 0
        return own + sum(loops(child) for child in node.get("Plans", []))

    return loops(plan[0]["Plan"])


def test_a_mart_reads_its_upstream_marts_only_when_they_changed_a_row(marts_db):
    """csinfra_upstream_changed: each incremental model records the transaction of its last build that changed a row
    (changed_xid, from the transaction's own row counts); a mart downstream reads an upstream mart's rows only when
    that transaction is newer than its own mark. A build that changes nothing keeps changed_xid; with track_counts
    off (no row counts) every build counts as a change."""
    db = marts_db
    db.dbt(*MARTS_RUN, vars_={"marts_as_of": AS_OF})

    def changed_xids() -> dict:
        return dict(rows(db, mart_sql("select model, changed_xid::text from {m}.incremental_marks")))

    first = changed_xids()
    assert first["dim_creators"] and first["int_funnel_milestones_recorded"], first
    db.dbt(*MARTS_RUN, vars_={"marts_as_of": AS_OF})  # nothing changed
    assert changed_xids() == first
    # fct_creator_activation now reads nothing of dim_creators: its scan is never run
    assert _plan_reads(db, "fct_creator_activation", "dim_creators") == 0
    with db.connect() as conn:
        conn.execute(
            """update creator_profiles set "isPublic" = not "isPublic"
               where id = (select id from creator_profiles order by id limit 1)"""
        )
        conn.commit()
    db.dbt("run", "--select", "dim_creators", vars_={"marts_as_of": AS_OF})
    assert changed_xids()["dim_creators"] != first["dim_creators"]
    assert _plan_reads(db, "fct_creator_activation", "dim_creators") > 0
    db.dbt(*MARTS_RUN, vars_={"marts_as_of": AS_OF})
    incremental = digests(db, MUTABLE_MARTS)
    db.dbt(*MARTS_RUN, "--full-refresh", vars_={"marts_as_of": AS_OF})
    assert digests(db, MUTABLE_MARTS) == incremental
    # without row counts, a build that changed nothing still counts as a change (never the other way)
    with db.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} set track_counts = off").format(sql.Identifier(db.name)))
    try:
        before = changed_xids()
        db.dbt(*MARTS_RUN, vars_={"marts_as_of": AS_OF})
        after = changed_xids()
        assert all(after[model] != before[model] for model in ("dim_creators", "fct_offer_funnel")), after
    finally:
        with db.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("alter database {} reset track_counts").format(sql.Identifier(db.name)))


def test_an_event_older_than_the_lookback_needs_a_full_refresh(marts_db):
    """The documented limit of the lookback window, shown: too late for the incremental run, counted by --full-refresh."""
    db = marts_db
    offer_id = db.scalar(
        mart_sql(
            """select offer_id from {m}.fct_offer_funnel where viewed_at is null order by offer_id limit 1"""
        )
    )
    newest = db.scalar("""select max("createdAt") from audit_logs where action like 'offer.%'""")
    with db.connect() as conn:
        conn.execute(
            """insert into audit_logs (id, action, "actorType", "actorId", "targetType", "targetId", "createdAt")
                        values ('ctestlateview000000000001', 'offer.viewed', 'user', 'u1', 'Offer', %s, %s - interval '10 days')""",
            (offer_id, newest),
        )
        conn.commit()
    db.dbt(*MARTS_RUN)
    assert (
        db.scalar(mart_sql("select viewed_at from {m}.fct_offer_funnel where offer_id = %s"), (offer_id,))
        is None
    )
    db.dbt(*MARTS_RUN, vars_={"events_lookback": "30 days"})
    assert (
        db.scalar(mart_sql("select viewed_at from {m}.fct_offer_funnel where offer_id = %s"), (offer_id,))
        is not None
    )


EVENT_COLUMNS = '"id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt"'
AUDIT_COLUMNS = (
    '"id", "action", "actorType", "actorId", "actorEmail", "targetType", "targetId", "metadata", '
    '"ipAddress", "userAgent", "createdAt"'
)
EVENT_ROWS = EVENT_COLUMNS.replace('"eventData"', '"eventData"::text').join(
    ("select ", " from analytics_events")
)
AUDIT_ROWS = AUDIT_COLUMNS.replace('"metadata"', '"metadata"::text').join(("select ", " from audit_logs"))


def _insert(db, events, audits):
    with db.connect() as conn:
        with conn.cursor().copy(f"copy analytics_events ({EVENT_COLUMNS}) from stdin") as copy:
            for r in events:
                copy.write_row(r)
        with conn.cursor().copy(f"copy audit_logs ({AUDIT_COLUMNS}) from stdin") as copy:
            for r in audits:
                copy.write_row(r)
        conn.commit()


# -- leaks, sources, documentation ----------------------------------------------------------------------
def test_no_mart_column_can_carry_secrets_emails_or_ips(marts_db):
    columns = rows(
        marts_db,
        """select table_name, column_name from information_schema.columns
                                where table_schema = %s and table_name = any(%s)""",
        (SCHEMA, list(MART_MODELS)),
    )
    assert {t for t, _ in columns} == set(MART_MODELS)
    assert [c for c in columns if SECRET_COLUMN.search(c[1])] == []
    # no value of any mart equals an e-mail address, IP address or token of the application
    with marts_db.connect(autocommit=True) as conn:
        secrets = {
            v
            for (v,) in conn.execute(
                """select email from users union select "contactEmail" from host_profiles
               union select "actorEmail" from audit_logs union select "ipAddress" from audit_logs
               union select "instagramAccessToken" from creator_profiles union select "tiktokAccessToken" from creator_profiles
               union select "tiktokRefreshToken" from creator_profiles"""
            )
            if v
        }
        assert len(secrets) > 100
        for table in MART_MODELS:
            leaked = conn.execute(
                sql.SQL("""select count(*) from {} as t, jsonb_each_text(to_jsonb(t)) as kv
                                             where kv.value = any(%s)""").format(
                    sql.Identifier(SCHEMA, table)
                ),
                (list(secrets),),
            ).fetchone()[0]
            assert leaked == 0, table


LEAKS = {
    # the leak injected into a built mart -> the guard that must catch it
    'alter table {s}.dim_creators add column "actorEmail" text': "column_names_exclude_dim_creators",
    (
        "update {s}.rpt_creator_dashboard_blockers set message = 'write to jane.doe@example.com' "
        "where dashboard_blocker_id = (select min(dashboard_blocker_id) from {s}.rpt_creator_dashboard_blockers)"
    ): "no_sensitive_values_rpt_creator_dashboard_blockers",
    (
        "update {s}.fct_offer_funnel set property_id = 'seen from 192.168.10.4' "
        "where offer_id = (select min(offer_id) from {s}.fct_offer_funnel)"
    ): "no_sensitive_values_fct_offer_funnel",
    (
        "update {s}.dim_creators set readiness_blockers = '[\"IGQVJYabcdefghijklmnopqrstuvwxyz0123\"]' "
        "where creator_profile_id = (select min(creator_profile_id) from {s}.dim_creators)"
    ): "no_sensitive_values_dim_creators",
}
MARTS_UNDER_TEST = ("dim_creators", "fct_offer_funnel", "rpt_creator_dashboard_blockers")


def test_leak_guards_fail_the_build(marts_db):
    """Clean marts pass; each injected leak (column name, e-mail, IP, token) fails exactly its own guard."""
    clean = marts_db.dbt("test", "--select", *MARTS_UNDER_TEST)  # raises on any failure
    assert "Completed successfully" in clean
    with marts_db.connect(autocommit=True) as conn:
        for leak in LEAKS:
            conn.execute(sql.SQL(leak).format(s=sql.Identifier(SCHEMA)))
    with pytest.raises(AssertionError) as failure:
        marts_db.dbt("test", "--select", *MARTS_UNDER_TEST)
    failed = set(re.findall(r"Failure in test (\w+)", str(failure.value)))
    guards = {name for name in failed if name.startswith(("no_sensitive_values", "column_names_exclude"))}
    for expected in LEAKS.values():
        assert any(name.startswith(expected) for name in guards), (expected, failed)
    assert all(any(name.startswith(expected) for expected in LEAKS.values()) for name in guards), guards


def test_marts_read_only_refs_and_every_mart_and_column_is_documented(marts_db):
    for path in (ROOT / "models").rglob("*.sql"):
        if "staging" not in path.parts:
            assert "source(" not in path.read_text(), f"{path} calls source(); only staging may"
    documented: dict[str, dict] = {}
    for yml in (ROOT / "models" / "marts").rglob("_*__models.yml"):
        for model in yaml.safe_load(yml.read_text())["models"]:
            documented[model["name"]] = model
    assert set(documented) == set(MART_MODELS) == {p.stem for p in (ROOT / "models" / "marts").rglob("*.sql")}
    for name, model in documented.items():
        assert model.get("description", "").strip(), name
        cols = {c["name"]: c for c in model["columns"]}
        actual = [
            c
            for (c,) in rows(
                marts_db,
                """select column_name from information_schema.columns
                                                 where table_schema = %s and table_name = %s""",
                (SCHEMA, name),
            )
        ]
        assert set(actual) == set(cols), (
            f"{name}: undocumented {set(actual) - set(cols)}, stale {set(cols) - set(actual)}"
        )
        assert all(c.get("description", "").strip() for c in cols.values()), name
        tests = json.dumps(model.get("data_tests", []))
        assert "column_names_exclude" in tests and "no_sensitive_values" in tests, name
        assert (
            any("unique" in json.dumps(c.get("data_tests", [])) for c in cols.values())
            or "unique_combination" in tests
        ), name


def test_docs_generate_and_exposures(marts_db):
    log = marts_db.dbt("docs", "generate")
    assert "Catalog written" in log
    manifest = json.loads((TARGET / "manifest.json").read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert {"offer_and_activation_report", "creator_dashboard_blockers", "creator_search"} <= set(exposures)
    depends = {n.split(".")[-1] for e in exposures.values() for n in e["depends_on"]["nodes"]}
    assert depends <= set(MART_MODELS)
    report_marts = {n.split(".")[-1] for n in exposures["offer_and_activation_report"]["depends_on"]["nodes"]}
    assert report_marts == {
        "rpt_offer_funnel_by_sent_week",
        "rpt_creator_activation_by_signup_week",
        "rpt_readiness_blockers",
        "rpt_trust_tier_distribution_daily",
    }
    catalog = json.loads((TARGET / "catalog.json").read_text())
    assert {n.split(".")[-1] for n in catalog["nodes"]} >= set(MART_MODELS)


# -- CLI ---------------------------------------------------------------------------------------------------
def test_marts_and_report_cli_errors(pre_db, applied_db, tmp_path):
    result = pre_db.cli("marts")
    assert result.returncode == 1 and "audit_logs" in result.stderr
    result = applied_db.cli("marts", "--as-of", "yesterday")
    assert result.returncode == 1 and "--as-of" in result.stderr
    result = applied_db.cli("marts")
    assert result.returncode == 1 and "no backfill has run" in result.stderr
    result = applied_db.cli("report", "--out", str(tmp_path / "r.html"))
    assert result.returncode == 1 and "marts missing" in result.stderr and "csinfra marts" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_marts_cli_builds_and_tests(marts_db):
    result = marts_db.cli("marts", "--json", timeout=900)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["dbt"]["error"] == 0 and summary["dbt"]["pass"] > 100
    # never the write-back: the application's tables were not written
    assert "wb_creator_profiles" not in Path(summary["log"]).read_text()


# -- the report in a real browser ---------------------------------------------------------------------------
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError(
        "no chromium on PATH: `make test` installs Debian's chromium (apt-get install chromium)"
    )


BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def test_report_renders_in_headless_chromium_with_the_marts_numbers(marts_db, tmp_path):
    out = tmp_path / "report.html"
    result = marts_db.cli("report", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    page = out.read_text()
    # self-contained: nothing is fetched (the only URL is SVG's XML namespace, which is never loaded)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"@import|url\(", page)
    assert "default-src 'none'" in page

    dom = subprocess.run(
        [chromium(), *BROWSER_FLAGS, "--virtual-time-budget=5000", "--dump-dom", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert attrs.get("rendered") == "ok", "the page's script did not run in the browser"
    assert int(attrs["bars"]) == 12 and int(attrs["areas"]) == 3 and int(attrs["points"]) > 0
    assert all(int(w) > 300 for w in attrs["chart-widths"].split(",")), attrs["chart-widths"]
    shown = {k: v for k, v in re.findall(r'data-metric="([^"]+)">([^<]*)<', dom)}

    def num(text: str) -> int:
        return int(text.replace(",", ""))

    funnel = rows(
        marts_db,
        mart_sql("""select sum(offers_sent), sum(offers_viewed), sum(offers_responded), sum(offers_accepted),
                                       sum(collabs_started), sum(collabs_completed) from {m}.rpt_offer_funnel_by_sent_week"""),
    )[0]
    for key, value in zip(
        (
            "offers_sent",
            "offers_viewed",
            "offers_responded",
            "offers_accepted",
            "collabs_started",
            "collabs_completed",
        ),
        funnel,
        strict=True,
    ):
        assert num(shown[f"funnel.{key}"]) == value, key
    assert num(shown["kpi.offers_sent"]) == funnel[0]
    activation = rows(
        marts_db,
        mart_sql("""select sum(creators_signed_up), sum(creators_ready), sum(creators_completed_collab)
                                    from {m}.rpt_creator_activation_by_signup_week"""),
    )[0]
    assert num(shown["activation.creators_signed_up"]) == activation[0]
    assert num(shown["activation.creators_ready"]) == activation[1]
    assert num(shown["activation.creators_completed_collab"]) == activation[2]
    for code, blocked, only in rows(
        marts_db,
        mart_sql("""select blocker_code, creators_blocked, creators_blocked_only_by_this
                                                 from {m}.rpt_readiness_blockers"""),
    ):
        assert num(shown[f"blocker.{code}.creators_blocked"]) == blocked
        assert num(shown[f"blocker.{code}.creators_blocked_only_by_this"]) == only
    for tier, creators in rows(
        marts_db,
        mart_sql("""select trust_tier, creators from {m}.rpt_trust_tier_distribution_daily
                                             where calendar_day = (select max(calendar_day)
                                                                   from {m}.rpt_trust_tier_distribution_daily)"""),
    ):
        assert num(shown[f"trust.{tier}"]) == creators
    for message in oracle.BLOCKER_MESSAGES:
        assert message in dom

    png = tmp_path / "report.png"
    subprocess.run(
        [chromium(), *BROWSER_FLAGS, "--window-size=1000,3000", f"--screenshot={png}", out.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = png.read_bytes()
    assert (
        data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    )  # a blank page of that size compresses to a few KB


def test_report_escapes_what_it_shows(marts_db, tmp_path):
    """Text from the database is escaped (a blocker message is configuration, but still)."""
    with marts_db.connect(autocommit=True) as conn:
        conn.execute(
            mart_sql(
                "update {m}.rpt_readiness_blockers set message = '<script>alert(1)</script>' where display_order = 1"
            )
        )
    out = tmp_path / "r.html"
    assert marts_db.cli("report", "--out", str(out)).returncode == 0
    page = out.read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_report_on_an_empty_application(empty_db, tmp_path):
    """No creators, no offers: every mart builds empty and the report still renders."""
    from creatorstays_infra.ops.migrations import Options, Runner, load_migrations

    with empty_db.connect() as conn:
        conn.execute((ROOT / "scripts" / "app_schema" / "pre_phase1.sql").read_text())
        conn.commit()
        Runner(conn, Options(app_schema="public")).up(load_migrations()[0])
    empty_db.dbt(
        "build",
        "--select",
        "+path:models/marts",
        "--exclude",
        "path:models/writeback",
        "--indirect-selection",
        "cautious",
    )
    out = tmp_path / "r.html"
    result = empty_db.cli("report", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "0 offers sent" in result.stdout
