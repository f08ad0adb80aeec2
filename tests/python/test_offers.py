"""Offers online: validation equal to the SQL model, preparation, the status machine under concurrency, expiry."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import oracle
from conftest import property_settings
from creatorstays_infra import (
    ConflictError,
    InvalidTransition,
    NotFoundError,
    ValidationError,
    expire_offers,
    prepare_offer_for_creation,
    record_offer_status_change,
    validate_offer_terms,
)

INT32 = st.integers(-(2**31), 2**31 - 1)
edge_money = st.one_of(
    st.none(), st.sampled_from([0, -1, 1, 4999, 5000, 9999, 10000, 15000, 2**31 - 1, -(2**31)]), INT32
)
terms_st = st.fixed_dictionaries(
    {
        "cashCents": st.one_of(st.sampled_from([0, -1, 4999, 5000, 9999, 10000]), INT32),
        "stayNights": st.one_of(st.none(), st.sampled_from([-1, 0, 1, 2]), INT32),
        "deliverables": st.one_of(st.none(), st.lists(st.text(alphabet="ab '\";-", max_size=5), max_size=12)),
        "trafficBonusEnabled": st.one_of(st.none(), st.booleans()),
        "trafficBonusThreshold": edge_money,
        "trafficBonusCents": edge_money,
    }
)
_n = itertools.count()


@pytest.fixture
def offers_db(built_db):
    with built_db.connect(autocommit=True) as conn:
        conn.execute('alter table offers drop constraint "offers_hostProfileId_fkey"')
        conn.execute('alter table offers drop constraint "offers_creatorProfileId_fkey"')
        conn.execute('alter table offers alter column "trafficBonusEnabled" drop not null')
    return built_db


@property_settings("offer_validation_equals_the_sql_model")
@given(terms=terms_st, explicit_stay=st.one_of(st.none(), st.sampled_from([0, 5000, -100]), INT32))
# always tried: an explicit 0 with nights falls back to the estimate (docs/rules.md §5)
@example(
    terms={
        "cashCents": 0,
        "stayNights": 2,
        "deliverables": ["a"],
        "trafficBonusEnabled": False,
        "trafficBonusThreshold": None,
        "trafficBonusCents": None,
    },
    explicit_stay=0,
)
def test_python_validation_equals_the_sql_model(offers_db, terms, explicit_stay):
    """validate_offer_terms (Python) and int_offers_validated (SQL) agree on random terms, and both
    agree with the independent oracle."""
    oid = f"prop_{next(_n)}_{uuid.uuid4().hex[:6]}"
    snapshot = None if explicit_stay is None else {"stayValueCents": explicit_stay}
    with offers_db.connect() as conn:
        conn.execute(
            """insert into offers (id, "hostProfileId", "creatorProfileId", "offerType", "cashCents", "stayNights", deliverables,
               "trafficBonusEnabled", "trafficBonusThreshold", "trafficBonusCents", "originalTermsSnapshot", "updatedAt")
               values (%s, 'h', 'c', 'cash', %s, %s, %s, %s, %s, %s, %s, now())""",
            (
                oid,
                terms["cashCents"],
                terms["stayNights"],
                terms["deliverables"],
                terms["trafficBonusEnabled"],
                terms["trafficBonusThreshold"],
                terms["trafficBonusCents"],
                None if snapshot is None else psycopg.types.json.Jsonb(snapshot),
            ),
        )
        row = conn.execute(
            "select total_value_cents, is_valid, validation_errors from csinfra.int_offers_validated where offer_id = %s",
            (oid,),
        ).fetchone()
        conn.rollback()
    py = validate_offer_terms({**terms, "stayValueCents": explicit_stay})
    want = oracle.offer({**terms, "stayValueCents": explicit_stay})
    in_range = -(2**31) <= py.total_value_cents < 2**31
    assert (row[0], row[1], row[2]) == (py.total_value_cents if in_range else None, py.is_valid, py.errors)
    assert (py.total_value_cents, py.is_valid, py.errors) == (
        want["totalValueCents"],
        want["isValid"],
        want["validationErrors"],
    )


def test_validation_messages_in_order():
    v = validate_offer_terms({"cashCents": 100, "deliverables": [], "trafficBonusEnabled": True})
    assert v.errors == [
        "Offer value must be at least $100",
        "Cash offers without a stay must be at least $50",
        "At least one deliverable is required",
        "Traffic bonus requires a click threshold",
        "Traffic bonus requires a bonus amount",
    ]
    assert validate_offer_terms({"cashCents": 0, "stayNights": 1, "deliverables": ["reel"]}).is_valid
    # an explicit stay value wins over nights × 15000
    assert (
        validate_offer_terms(
            {"cash_cents": 0, "stay_nights": 3, "stay_value_cents": 9000, "deliverables": ["a"]}
        ).total_value_cents
        == 9000
    )
    # ... unless it is 0: docs/rules.md §5, `stayValueCents || estimate` (3 nights x $150 = 45000 cents)
    zero = validate_offer_terms({"cashCents": 0, "stayNights": 3, "stayValueCents": 0, "deliverables": ["a"]})
    assert (zero.total_value_cents, zero.stay_value_cents, zero.is_valid) == (45000, 45000, True)
    # a negative value is used as given, and then fails validation
    negative = validate_offer_terms(
        {"cashCents": 0, "stayNights": 3, "stayValueCents": -100, "deliverables": ["a"]}
    )
    assert negative.total_value_cents == -100 and negative.errors == ["Offer value must be at least $100"]


def test_prepare_offer_for_creation_snapshot_and_expiry_clamp():
    now = datetime(2026, 2, 3, 10, 0, 0)
    p = prepare_offer_for_creation(
        {
            "offerType": "hybrid",
            "cashCents": 5000,
            "stayNights": 2,
            "deliverables": ["reel", "story"],
            "requirements": "Tag us",
            "trafficBonusEnabled": True,
            "trafficBonusThreshold": 500,
            "trafficBonusCents": 2500,
        },
        now=now,
    )
    assert p.data["original_terms_snapshot"] == {
        "offerType": "hybrid",
        "cashCents": 5000,
        "stayNights": 2,
        "stayValueCents": 30000,
        "deliverables": ["reel", "story"],
        "requirements": "Tag us",
        "trafficBonusEnabled": True,
        "trafficBonusThreshold": 500,
        "trafficBonusCents": 2500,
        "totalValueCents": 35000,
        "snapshotAt": "2026-02-03T10:00:00.000Z",
    }
    assert p.data["status_history"] == [] and p.data["is_valid"] and p.data["validation_errors"] == []
    assert p.data["expires_at"] == now + timedelta(days=14)
    for days, want in ((1, 3), (3, 3), (30, 30), (365, 30), (-5, 3), (10, 10)):
        assert prepare_offer_for_creation(
            {"cashCents": 20000, "deliverables": ["a"], "expiresInDays": days}, now=now
        ).data["expires_at"] == now + timedelta(days=want)
    invalid = prepare_offer_for_creation({"cashCents": -500, "deliverables": []}, now=now)
    assert not invalid.is_valid and invalid.data["total_value_cents"] == -500


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"cashCents": "100"}, "cash_cents"),
        ({"cashCents": 1.5}, "cash_cents"),
        ({"cashCents": True}, "cash_cents"),
        ({"stayNights": 2**31}, "stay_nights"),
        ({"deliverables": "reel"}, "deliverables"),
        ({"deliverables": ["ok", 3]}, "deliverables[1]"),
        ({"trafficBonusEnabled": "yes"}, "traffic_bonus_enabled"),
        ({"requirements": "a\x00b"}, "requirements"),
        ({"expiresInDays": "14"}, "expires_in_days"),
    ],
)
def test_bad_terms_name_the_field(terms, field):
    with pytest.raises(ValidationError) as exc:
        validate_offer_terms(terms)
    assert exc.value.field == field


def test_keys_that_are_not_terms_are_ignored_as_the_application_ignores_them():
    """The application passes its whole offer form (expiresAt, hostProfileId, …); only the terms count."""
    terms = {"cashCents": 20000, "deliverables": ["reel"], "offerType": "cash"}
    form = {**terms, "expiresAt": "2026-12-01T00:00:00Z", "hostProfileId": "h1", "cashcents": 1}
    assert validate_offer_terms(form) == validate_offer_terms(terms)
    now = datetime(2026, 11, 28, 12, 0, 0)
    prepared = prepare_offer_for_creation(form, now=now)
    assert prepared.data == prepare_offer_for_creation(terms, now=now).data
    assert set(prepared.data["original_terms_snapshot"]) == {
        "offerType",
        "cashCents",
        "stayNights",
        "stayValueCents",
        "deliverables",
        "requirements",
        "trafficBonusEnabled",
        "trafficBonusThreshold",
        "trafficBonusCents",
        "totalValueCents",
        "snapshotAt",
    }  # the snapshot's keys are docs/rules.md §5's, whatever the form held
    assert prepared.data["expires_at"] == now + timedelta(
        days=14
    )  # expiresAt is not a term: the default applies
    # strict: every key must be a term, and the error names the first that is not
    for call in (validate_offer_terms, prepare_offer_for_creation):
        with pytest.raises(ValidationError) as exc:
            call(form, strict=True)
        assert exc.value.field == "expiresAt"
    with pytest.raises(ValidationError) as exc:
        validate_offer_terms({"cashcents": 100}, strict=True)
    assert exc.value.field == "cashcents"


def test_total_beyond_integer_cannot_be_prepared():
    with pytest.raises(ValidationError, match="total_value_cents"):
        prepare_offer_for_creation({"cashCents": 2**31 - 1, "stayNights": 10, "deliverables": ["a"]})


# -- the status machine -----------------------------------------------------------------------------------
def new_offer(conn, status="pending", expires_at=None) -> str:
    oid = f"sm_{uuid.uuid4().hex[:10]}"
    host, creator = conn.execute('select "hostProfileId", "creatorProfileId" from offers limit 1').fetchone()
    conn.execute(
        """insert into offers (id, "hostProfileId", "creatorProfileId", "offerType", "cashCents", deliverables, status,
           "expiresAt", "updatedAt") values (%s, %s, %s, 'cash', 20000, '{reel}', %s, %s, now())""",
        (oid, host, creator, status, expires_at),
    )
    return oid


def test_status_change_appends_history_atomically(built_db):
    with built_db.as_role("app").connect() as conn:
        oid = new_offer(conn, "draft")
        record_offer_status_change(conn, oid, "draft", "pending", "host")
        change = record_offer_status_change(
            conn, oid, "pending", "countered", "creator", reason="Can you add a night?"
        )
        assert change.history_length == 2
        status, history = conn.execute(
            'select status, "statusHistory" from offers where id = %s', (oid,)
        ).fetchone()
        assert status == "countered"
        assert [(h["fromStatus"], h["toStatus"], h["changedBy"]) for h in history] == [
            ("draft", "pending", "host"),
            ("pending", "countered", "creator"),
        ]
        assert history[1]["reason"] == "Can you add a night?" and history[1]["changedAt"].endswith("Z")
        # written now (the library's clock, checked against the database's, same machine)
        now = conn.execute("select now() at time zone 'UTC'").fetchone()[0]
        changed_at = datetime.fromisoformat(history[1]["changedAt"]).replace(tzinfo=None)
        assert abs(changed_at - now) < timedelta(seconds=5), (changed_at, now)
        assert history[1] == change.entry()  # stored exactly as returned
        conn.commit()


@pytest.mark.parametrize(
    ("from_status", "to_status", "error", "field"),
    [
        ("accepted", "pending", InvalidTransition, "to_status"),
        ("draft", "accepted", InvalidTransition, "to_status"),
        ("expired", "pending", InvalidTransition, "to_status"),
        ("pending", "archived", ValidationError, "to_status"),
        ("PENDING", "accepted", ValidationError, "from_status"),
    ],
)
def test_disallowed_transitions_and_unknown_statuses(built_db, from_status, to_status, error, field):
    with built_db.as_role("app").connect() as conn:
        oid = new_offer(conn)
        with pytest.raises(error) as exc:
            record_offer_status_change(conn, oid, from_status, to_status, "host")
        assert exc.value.field == field
        assert conn.execute('select "statusHistory" from offers where id = %s', (oid,)).fetchone()[0] == []


def test_stale_from_status_missing_offer_and_bad_actor(built_db):
    with built_db.as_role("app").connect() as conn:
        oid = new_offer(conn)
        record_offer_status_change(conn, oid, "pending", "accepted", "creator")
        with pytest.raises(ConflictError, match="is 'accepted', not 'pending'"):
            record_offer_status_change(conn, oid, "pending", "declined", "creator")
        with pytest.raises(NotFoundError, match="no_such_offer"):
            record_offer_status_change(conn, "no_such_offer", "pending", "accepted", "creator")
        with pytest.raises(ValidationError) as exc:
            record_offer_status_change(conn, oid, "pending", "accepted", "robot")
        assert exc.value.field == "changed_by"
        for bad in ("", "  ", None):
            with pytest.raises(ValidationError) as exc:
                record_offer_status_change(conn, bad, "pending", "accepted", "host")
            assert exc.value.field == "offer_id"
        assert (
            len(conn.execute('select "statusHistory" from offers where id = %s', (oid,)).fetchone()[0]) == 1
        )


def test_many_concurrent_writers_on_one_offer_exactly_one_wins(built_db):
    with built_db.as_role("app").connect() as conn:
        oid = new_offer(conn)
        conn.commit()
    targets = ["accepted", "declined", "countered", "withdrawn", "expired"] * 4
    outcomes: list[str] = []
    barrier = threading.Barrier(len(targets))
    lock = threading.Lock()

    def writer(to_status: str):
        with built_db.as_role("app").connect() as conn:
            barrier.wait()
            try:
                record_offer_status_change(
                    conn, oid, "pending", to_status, "creator" if to_status != "withdrawn" else "host"
                )
                conn.commit()
                result = f"won:{to_status}"
            except ConflictError:
                conn.rollback()
                result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=writer, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1 and outcomes.count("conflict") == len(targets) - 1
    with built_db.as_role("app").connect() as conn:
        status, history = conn.execute(
            'select status, "statusHistory" from offers where id = %s', (oid,)
        ).fetchone()
    assert len(history) == 1 and status == history[0]["toStatus"] == winners[0].split(":")[1]


def test_expire_offers_in_one_pass_with_history_and_audit(built_db):
    now = datetime(2026, 11, 30, 12, 0, 0)
    with built_db.as_role("app").connect() as conn:
        conn.execute("""update offers set "expiresAt" = null""")  # only the offers of this test can expire
        past = [new_offer(conn, s, now - timedelta(hours=1)) for s in ("pending", "countered", "pending")]
        untouched = [
            new_offer(conn, "pending", now + timedelta(hours=1)),
            new_offer(conn, "accepted", now - timedelta(days=1)),
            new_offer(conn, "draft", now - timedelta(days=1)),
            new_offer(conn, "pending", None),
        ]
        assert expire_offers(conn, now) == 3
        rows = dict(
            conn.execute("select id, status from offers where id = any(%s)", (past + untouched,)).fetchall()
        )
        assert all(rows[o] == "expired" for o in past)
        assert [rows[o] for o in untouched] == ["pending", "accepted", "draft", "pending"]
        history = conn.execute(
            'select "statusHistory" -> -1 from offers where id = %s', (past[1],)
        ).fetchone()[0]
        assert history == {
            "fromStatus": "countered",
            "toStatus": "expired",
            "changedBy": "system",
            "changedAt": "2026-11-30T12:00:00.000Z",
            "reason": "expiresAt passed",
        }
        audits = conn.execute(
            """select "targetId", metadata from audit_logs where action = 'offer.expired'"""
        ).fetchall()
        assert sorted(a[0] for a in audits) == sorted(past)
        assert expire_offers(conn, now) == 0  # nothing left
