"""The online creator functions: the same rules as the batch, proven by property-based tests.

Every online call runs as the application role (`db.as_role("app")`), never as superuser: it holds only
what `csinfra grant` gives it plus the application's own DML on its tables."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.rows import dict_row

import oracle
from conftest import property_settings
from creatorstays_infra import (
    CsinfraError,
    NotFoundError,
    ValidationError,
    compute_readiness,
    mark_first_collab_completed,
    mark_first_offer_received,
    update_creator_readiness,
    update_creator_trust,
)

FIELDS = (
    "trustTier",
    "readinessState",
    "readinessBlockers",
    "profileCompleteness",
    "firstOfferReceivedAt",
    "firstOfferRespondedAt",
    "firstCollabCompletedAt",
)


def relax(conn) -> None:
    """Let the test insert rows the ORM's constraints would refuse (bad data exists in real databases)."""
    conn.execute('alter table creator_profiles drop constraint "creator_profiles_userId_fkey"')
    conn.execute('drop index "creator_profiles_userId_key"')
    conn.execute('drop index "creator_profiles_handle_key"')
    conn.execute('alter table creator_profiles alter column "instagramConnected" drop not null')
    conn.execute('alter table creator_profiles alter column "tiktokConnected" drop not null')
    conn.execute('alter table offers drop constraint "offers_hostProfileId_fkey"')
    conn.execute('alter table collaborations drop constraint "collaborations_offerId_fkey"')
    conn.execute('alter table collaborations drop constraint "collaborations_hostId_fkey"')
    conn.execute('alter table collaborations drop constraint "collaborations_propertyId_fkey"')
    conn.execute('drop index "collaborations_offerId_key"')


# -- strategies ----------------------------------------------------------------------------------------
TRIM = oracle.JS_TRIM
texts = st.one_of(
    st.just(""),
    st.text(alphabet=TRIM, min_size=1, max_size=4),
    st.text(alphabet=TRIM + "a\u200b\u0085", min_size=1, max_size=6),
)
maybe_texts = st.one_of(st.none(), texts)
arrays = st.one_of(
    st.none(), st.just([]), st.lists(st.text(alphabet="ab \t", max_size=3), min_size=1, max_size=3)
)
moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)
maybe_moments = st.one_of(st.none(), moments)
offers_st = st.lists(
    st.fixed_dictionaries(
        {
            "status": st.sampled_from(["draft", "pending", "accepted", "declined", "countered", "expired"]),
            "createdAt": moments,
            "respondedAt": maybe_moments,
            "history": st.lists(
                st.fixed_dictionaries(
                    {
                        "changedBy": st.sampled_from(["creator", "host", "system"]),
                        "toStatus": st.sampled_from(["accepted", "declined", "countered", "withdrawn"]),
                        "changedAt": st.one_of(
                            moments.map(lambda d: d.isoformat(timespec="milliseconds") + "Z"),
                            st.just("garbage"),
                        ),
                    }
                ),
                max_size=2,
            ),
        }
    ),
    max_size=3,
)
collabs_st = st.lists(
    st.tuples(st.sampled_from(["completed", "active", "cancelled"]), maybe_moments), max_size=2
)
profiles = st.fixed_dictionaries(
    {
        "displayName": texts,
        "handle": texts,
        "bio": maybe_texts,
        "niches": arrays,
        "deliverables": arrays,
        "minimumFlatFee": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, -1])),
        "avatarUrl": st.sampled_from([None, "", " ", "https://a"]),
        "instagramConnected": st.sampled_from([None, False, True]),
        "tiktokConnected": st.sampled_from([None, False, True]),
        "stored": st.fixed_dictionaries(
            {
                "firstOfferReceivedAt": maybe_moments,
                "firstOfferRespondedAt": maybe_moments,
                "firstCollabCompletedAt": maybe_moments,
            }
        ),
        "offers": offers_st,
        "collabs": collabs_st,
    }
)

_ids = itertools.count()


def insert_creator(conn, p: dict, cid: str) -> None:
    conn.execute(
        """insert into creator_profiles (id, "userId", "displayName", handle, bio, niches, deliverables, "minimumFlatFee",
           "avatarUrl", "instagramConnected", "tiktokConnected", "firstOfferReceivedAt", "firstOfferRespondedAt",
           "firstCollabCompletedAt", "updatedAt") values (%s, 'u', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())""",
        (
            cid,
            p["displayName"],
            p["handle"],
            p["bio"],
            p["niches"],
            p["deliverables"],
            p["minimumFlatFee"],
            p["avatarUrl"],
            p["instagramConnected"],
            p["tiktokConnected"],
            p["stored"]["firstOfferReceivedAt"],
            p["stored"]["firstOfferRespondedAt"],
            p["stored"]["firstCollabCompletedAt"],
        ),
    )
    for i, o in enumerate(p["offers"]):
        history = [{"fromStatus": "pending", **h} for h in o["history"]]
        conn.execute(
            """insert into offers (id, "hostProfileId", "creatorProfileId", "offerType", status, "createdAt", "respondedAt",
               "statusHistory", "updatedAt") values (%s, 'h', %s, 'cash', %s, %s, %s, %s, now())""",
            (
                f"{cid}_o{i}",
                cid,
                o["status"],
                o["createdAt"],
                o["respondedAt"],
                psycopg.types.json.Jsonb(history),
            ),
        )
    for i, (status, completed_at) in enumerate(p["collabs"]):
        conn.execute(
            """insert into collaborations (id, "offerId", "creatorId", "hostId", "propertyId", status, "completedAt", "updatedAt")
               values (%s, 'o', %s, 'h', 'p', %s, %s, now())""",
            (f"{cid}_c{i}", cid, status, completed_at),
        )


def expected(p: dict) -> dict:
    def parse(s):
        try:
            return datetime.fromisoformat(s).replace(tzinfo=None)
        except ValueError:
            return None

    received = [o["createdAt"] for o in p["offers"] if o["status"] != "draft"]
    responded = [o["respondedAt"] for o in p["offers"]] + [
        parse(h["changedAt"])
        for o in p["offers"]
        for h in o["history"]
        if h["changedBy"] == "creator" and h["toStatus"] in ("accepted", "declined", "countered")
    ]
    completed = [c for s, c in p["collabs"] if s == "completed"]
    s = p["stored"]
    fc = oracle.earliest(s["firstCollabCompletedAt"], *completed)
    state = oracle.creator(p, fc)
    state["firstOfferReceivedAt"] = oracle.earliest(s["firstOfferReceivedAt"], *received)
    state["firstOfferRespondedAt"] = oracle.earliest(s["firstOfferRespondedAt"], *responded)
    state["firstCollabCompletedAt"] = fc
    return state


def stored(conn, cid: str) -> dict:
    conn.row_factory = dict_row
    row = conn.execute("select * from creator_profiles where id = %s", (cid,)).fetchone()
    conn.row_factory = psycopg.rows.tuple_row
    return {f: row[f] for f in FIELDS}


@pytest.fixture
def rules_db(built_db):
    with built_db.connect(autocommit=True) as conn:
        relax(conn)
    return built_db


# -- properties -----------------------------------------------------------------------------------------
@property_settings("online_path_equals_the_rules")
@given(p=profiles)
def test_online_path_stores_exactly_what_the_rules_say(rules_db, p):
    cid = f"hyp_{next(_ids)}_{uuid.uuid4().hex[:6]}"
    with rules_db.as_role("app").connect() as conn:
        insert_creator(conn, p, cid)
        state = update_creator_readiness(conn, cid)
        got = stored(conn, cid)
        conn.commit()
    with rules_db.connect() as conn:  # the application role may not read our views; the owner may
        # the set-based view (what the batch derives) agrees and sees no drift for this row
        view = conn.execute(
            "select is_drifted, trust_tier, readiness_state from csinfra.int_creators_derived where creator_profile_id = %s",
            (cid,),
        ).fetchone()
    want = expected(p)
    assert got == want
    assert (state.trust_tier, state.readiness_state, state.readiness_blockers) == (
        want["trustTier"],
        want["readinessState"],
        want["readinessBlockers"],
    )
    assert view == (False, want["trustTier"], want["readinessState"])
    # the pure helper (no database) agrees with what the SQL stored, given the same first completed collaboration
    pure = compute_readiness({**p, "firstCollabCompletedAt": got["firstCollabCompletedAt"]})
    assert (pure.trust_tier, pure.readiness_state, pure.readiness_blockers, pure.is_ready) == (
        got["trustTier"],
        got["readinessState"],
        got["readinessBlockers"],
        got["readinessState"] == "READY",
    )
    assert pure.profile_completeness == pytest.approx(got["profileCompleteness"], abs=1e-12)


@property_settings("online_and_batch_write_identical_rows")
@given(batch=st.lists(profiles, min_size=20, max_size=40))
def test_online_and_batch_paths_write_identical_rows(rules_db, batch):
    """Each profile twice: one copy written by the online path, read back before any backfill; the other written
    by the batch path. The backfill must then find nothing to change in the online copies (their row versions
    stay), and both copies must equal the oracle's answer."""
    run = uuid.uuid4().hex[:6]
    with rules_db.as_role("app").connect() as conn:
        for i, p in enumerate(batch):
            insert_creator(conn, p, f"on_{run}_{i}")
            insert_creator(conn, p, f"ba_{run}_{i}")
        conn.commit()
        for i in range(len(batch)):
            update_creator_readiness(conn, f"on_{run}_{i}")
        conn.commit()
    with rules_db.connect() as conn:
        online = {i: stored(conn, f"on_{run}_{i}") for i in range(len(batch))}
        versions = dict(
            conn.execute(
                "select id, xmin::text from creator_profiles where id like %s", (f"on_{run}_%",)
            ).fetchall()
        )
    rules_db.as_role("owner").backfill(writeback_batch_size=7)  # the batch path, as the migration owner
    with rules_db.connect() as conn:
        after = dict(
            conn.execute(
                "select id, xmin::text from creator_profiles where id like %s", (f"on_{run}_%",)
            ).fetchall()
        )
        for i, p in enumerate(batch):
            batched = stored(conn, f"ba_{run}_{i}")
            assert online[i] == batched == expected(p), (i, p)
    assert after == versions  # the batch found every online row already right: it wrote none of them


# -- behaviour ------------------------------------------------------------------------------------------
def test_profile_save_then_update_recomputes_and_audits_tier_changes(built_db):
    with built_db.as_role("app").connect() as conn:
        cid = conn.execute("""select id from creator_profiles where "readinessState" = 'READY' and "trustTier" = 'VERIFIED'
                              order by id limit 1""").fetchone()[0]
        conn.execute("update creator_profiles set bio = E'\\t ' where id = %s", (cid,))
        state = update_creator_readiness(conn, cid)
        assert state.readiness_state == "INCOMPLETE" and "missing_bio" in state.readiness_blockers
        assert state.changed and state.previous_trust_tier == "VERIFIED"
        assert state.trust_tier == "VERIFIED"  # 7/8 still >= 0.8
        conn.execute("""update creator_profiles set bio = null, niches = '{}' where id = %s""", (cid,))
        state = update_creator_trust(conn, cid)
        assert state.trust_tier == "NEW" and state.profile_completeness == pytest.approx(0.75)
        audit = conn.execute(
            """select metadata from audit_logs where action = 'system.trust_updated' and "targetId" = %s
                                and metadata->>'source' = 'online'""",
            (cid,),
        ).fetchall()
        assert [a[0]["to"] for a in audit] == ["NEW"] and audit[0][0]["from"] == "VERIFIED"
        again = update_creator_readiness(conn, cid)
        assert not again.changed  # nothing differs: no write at all
        conn.rollback()  # the caller owns the transaction: nothing of the above is kept
        assert (
            conn.execute('select "trustTier"::text from creator_profiles where id = %s', (cid,)).fetchone()[0]
            == "VERIFIED"
        )


def test_first_collab_completed_makes_the_creator_proven(built_db):
    with built_db.as_role("app").connect() as conn:
        cid = conn.execute(
            """select id from creator_profiles where "trustTier" <> 'PROVEN' order by id limit 1"""
        ).fetchone()[0]
        before = conn.execute(
            'select "trustTier"::text from creator_profiles where id = %s', (cid,)
        ).fetchone()[0]
        at = datetime(2026, 6, 1, 12, 0, 0)
        state = mark_first_collab_completed(conn, cid, at)
        assert state.trust_tier == "PROVEN" and state.first_collab_completed_at == at
        n = conn.execute(
            """select count(*) from audit_logs where "targetId" = %s and metadata->>'to' = 'PROVEN'
                            and metadata->>'from' = %s""",
            (cid, before),
        ).fetchone()[0]
        assert n == 1
        # never moved later
        later = mark_first_collab_completed(conn, cid, at + timedelta(days=3))
        assert later.first_collab_completed_at == at
        conn.commit()
    report = built_db.cli("verify", "--json")
    assert report.returncode == 0, report.stdout


def test_mark_first_offer_received_uses_the_data_and_falls_back_to_now(built_db):
    with built_db.as_role("app").connect() as conn:
        with_offer = conn.execute("""select "creatorProfileId", min("createdAt") from offers where status <> 'draft'
                                     group by 1 order by 1 limit 1""").fetchone()
        conn.execute(
            """update creator_profiles set "firstOfferReceivedAt" = null where id = %s""", (with_offer[0],)
        )
        assert mark_first_offer_received(conn, with_offer[0]).first_offer_received_at == with_offer[1]
        # a creator without any sent offer: their offers (if any) made drafts, so the data has no moment
        lonely = conn.execute("""select id from creator_profiles order by id desc limit 1""").fetchone()[0]
        conn.execute("""update offers set status = 'draft' where "creatorProfileId" = %s""", (lonely,))
        conn.execute("""update creator_profiles set "firstOfferReceivedAt" = null where id = %s""", (lonely,))
        t0 = conn.execute("select (now() at time zone 'UTC')::timestamp(3)").fetchone()[0]
        got = mark_first_offer_received(conn, lonely).first_offer_received_at
        assert got is not None and t0 - timedelta(seconds=1) <= got <= t0 + timedelta(seconds=5)
        conn.commit()
    assert built_db.cli("verify", "--json").returncode == 0


@pytest.mark.parametrize("bad", ["", "   ", None, 42])
def test_bad_ids_are_rejected_naming_the_field(built_db, bad):
    with (
        built_db.as_role("app").connect() as conn,
        pytest.raises(ValidationError, match="creator_profile_id"),
    ):
        update_creator_readiness(conn, bad)


def test_unknown_creator_and_missing_rule_function(built_db):
    with built_db.as_role("app").connect() as conn, pytest.raises(NotFoundError, match="no_such_creator"):
        update_creator_readiness(conn, "no_such_creator")
    with built_db.as_role("owner").connect() as conn:
        conn.execute("drop function csinfra.wb_creator_profiles__apply(text, text)")
        conn.commit()
    with built_db.as_role("app").connect() as conn:
        cid = conn.execute("select id from creator_profiles limit 1").fetchone()[0]
        with pytest.raises(CsinfraError, match="run the backfill once"):
            update_creator_readiness(conn, cid)


def test_the_schemas_are_keywords_with_the_same_names_as_elsewhere(built_db):
    """app_schema= (the application's tables) and dbt_schema= (where the online function lives), as in offers and
    events; each is used, not just accepted."""
    with built_db.as_role("app").connect() as conn:
        cid = conn.execute("select min(id) from creator_profiles").fetchone()[0]
        state = mark_first_offer_received(conn, cid, app_schema="public", dbt_schema="csinfra")
        assert state.creator_profile_id == cid
        conn.rollback()
        with pytest.raises(psycopg.errors.UndefinedTable, match="nowhere"):
            mark_first_offer_received(conn, cid, datetime(2020, 1, 1), app_schema="nowhere")
        conn.rollback()
        with pytest.raises(CsinfraError, match="nowhere.wb_creator_profiles__apply does not exist"):
            update_creator_readiness(conn, cid, dbt_schema="nowhere")
