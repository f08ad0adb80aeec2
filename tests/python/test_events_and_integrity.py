"""Audit and analytics writes, and the integrity the database enforces against any client (raw SQL)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import psycopg
import pytest

from creatorstays_infra import (
    AnalyticsBatchWriter,
    ValidationError,
    analytics_stats,
    get_actor_activity,
    get_audit_trail,
    get_recent_by_action,
    log_admin_action,
    log_analytics_event,
    log_audit_event,
    log_collab_completed,
    log_collab_event,
    log_collab_started,
    log_offer_event,
    log_offer_responded,
    log_offer_sent,
    log_profile_viewed,
    log_system_event,
    reset_analytics_stats,
)

NASTY = 'Robert\'); DROP TABLE audit_logs; -- "quoted" \\ back\\slash $1 %s {}'


# -- audit ------------------------------------------------------------------------------------------------
def test_audit_helpers_write_and_read_back(applied_db):
    with applied_db.as_role("app").connect() as conn:
        ids = [
            log_offer_event(
                conn,
                "offer.status_changed",
                "o1",
                "user",
                "creator_1",
                {"fromStatus": "pending", "toStatus": "accepted"},
            ),
            log_collab_event(conn, "collab.started", "k1", "user", "host_1"),
            log_admin_action(
                conn,
                "admin.impersonate",
                "admin_1",
                "User",
                "u1",
                {"reason": NASTY},
                ip_address="203.0.113.9",
                actor_email="ops@example.com",
                user_agent="Mozilla/5.0",
            ),
            log_system_event(conn, "system.offer_expired", "Offer", "o1", actor_type="cron"),
            log_audit_event(
                conn, "payment.completed", "system", None, "Payment", "p1", {"amountCents": 1500}
            ),
        ]
        conn.commit()
        assert len(set(ids)) == 5 and all(len(i) == 25 and i.startswith("c") and i.isalnum() for i in ids)
        trail = get_audit_trail(conn, "Offer", "o1")
        assert [e.action for e in trail] == ["system.offer_expired", "offer.status_changed"]
        assert (
            trail[1].metadata == {"fromStatus": "pending", "toStatus": "accepted"}
            and trail[0].actor_type == "cron"
        )
        admin = get_actor_activity(conn, "admin_1")
        assert admin[0].metadata["reason"] == NASTY  # stored verbatim
        assert admin[0].ip_address == "203.0.113.9" and admin[0].actor_email == "ops@example.com"
        assert [e.id for e in get_recent_by_action(conn, "admin.impersonate")] == [ids[2]]
        assert get_recent_by_action(conn, "admin.impersonate", since=datetime(2100, 1, 1)) == []
        assert conn.execute("select count(*) from audit_logs").fetchone()[0] == 5


def test_admin_and_system_helpers_add_their_prefix_and_system_writers_are_system(applied_db):
    """As the application's helpers do: `logSystemEvent('offer_expired', …)` writes `system.offer_expired` with
    `"actorId" = 'system'` (docs/rules.md §8), and an admin action gets `admin.` in front."""
    with applied_db.as_role("app").connect() as conn:
        log_system_event(conn, "offer_expired", "Offer", "o9")
        log_system_event(conn, "trust_updated", "CreatorProfile", "c9", actor_type="cron")
        log_admin_action(conn, "user_suspended", "admin_9", "User", "u9", actor_email="ops@example.com")
        rows = conn.execute("""select action, "actorType", "actorId", "actorEmail" from audit_logs
                               where "targetId" in ('o9', 'c9', 'u9') order by action""").fetchall()
        conn.rollback()
    assert rows == [
        ("admin.user_suspended", "admin", "admin_9", "ops@example.com"),
        ("system.offer_expired", "system", "system", None),
        ("system.trust_updated", "cron", "system", None),
    ]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: log_audit_event(c, "offer.deleted", "user", "u", "Offer", "o"), "action"),
        (lambda c: log_system_event(c, "   ", "Offer", "o"), "action"),
        (lambda c: log_audit_event(c, "admin.", "admin", "a", "User", "u"), "action"),
        (lambda c: log_audit_event(c, "offer.created", "robot", "u", "Offer", "o"), "actor_type"),
        (lambda c: log_audit_event(c, "offer.created", "user", None, "Offer", "o"), "actor_id"),
        (lambda c: log_audit_event(c, "offer.created", "user", "  ", "Offer", "o"), "actor_id"),
        (lambda c: log_audit_event(c, "offer.created", "user", "u", "", "o"), "target_type"),
        (lambda c: log_offer_event(c, "offer.created", "", "user", "u"), "offer_id"),
        (lambda c: log_offer_event(c, "collab.started", "o", "user", "u"), "action"),
        (lambda c: log_admin_action(c, "system.x", "a", "User", "u"), "action"),
        (
            lambda c: log_audit_event(
                c, "offer.created", "user", "u", "Offer", "o", {"when": datetime(2026, 1, 1)}
            ),
            "metadata.when",
        ),
        (
            lambda c: log_audit_event(c, "offer.created", "user", "u", "Offer", "o", {"x": float("nan")}),
            "metadata.x",
        ),
        (lambda c: log_audit_event(c, "offer.created", "user", "u", "Offer", "o", {1: "a"}), "metadata.1"),
        (
            lambda c: log_audit_event(c, "offer.created", "user", "u", "Offer", "o", ["not", "an", "object"]),
            "metadata",
        ),
        (
            lambda c: log_audit_event(c, "offer.created", "user", "u", "Offer", "o", {"big": "x" * 70_000}),
            "metadata",
        ),
        (
            lambda c: log_audit_event(c, "offer.created", "user", "u", "Offer", "o", {"nul": "a\x00b"}),
            "metadata.nul",
        ),
    ],
)
def test_bad_audit_input_names_the_field_and_writes_nothing(applied_db, call, field):
    with applied_db.as_role("app").connect() as conn:
        with pytest.raises(ValidationError) as exc:
            call(conn)
        assert exc.value.field == field
        assert conn.execute("select count(*) from audit_logs").fetchone()[0] == 0


def test_an_audit_write_is_never_silently_lost(applied_db):
    with applied_db.as_role("owner").connect() as conn:
        conn.execute("alter table audit_logs rename to audit_logs_gone")
        conn.commit()
    with applied_db.as_role("app").connect() as conn, pytest.raises(psycopg.errors.UndefinedTable):
        log_audit_event(conn, "offer.created", "user", "u", "Offer", "o")


# -- analytics --------------------------------------------------------------------------------------------
def test_funnel_events_have_the_specified_shape(applied_db):
    reset_analytics_stats()
    with applied_db.as_role("app").connect() as conn:
        log_offer_sent(conn, "h1", "o1", "c1", 20000)
        log_offer_responded(conn, "c1", "o1", "accepted", "h1")
        creator_id, host_id = log_collab_started(conn, "k1", "c1", "h1", 20000)
        log_collab_completed(conn, "k1", "c1", "h1", 20000)
        log_profile_viewed(conn, "h1", "c1", "search")
        conn.commit()
        rows = conn.execute(
            'select "actorType", "actorId", "eventType", "eventData" from analytics_events order by "eventType", "actorType"'
        ).fetchall()
    assert creator_id and host_id
    assert sorted(rows, key=lambda r: (r[2], r[0])) == sorted(
        [
            (
                "system",
                "system",
                "collab_completed",
                {"collabId": "k1", "creatorProfileId": "c1", "hostProfileId": "h1", "totalValueCents": 20000},
            ),
            (
                "creator",
                "c1",
                "collab_started",
                {"collabId": "k1", "hostProfileId": "h1", "totalValueCents": 20000, "role": "creator"},
            ),
            (
                "host",
                "h1",
                "collab_started",
                {"collabId": "k1", "creatorProfileId": "c1", "totalValueCents": 20000, "role": "host"},
            ),
            (
                "host",
                "h1",
                "offer_sent",
                {"offerId": "o1", "creatorProfileId": "c1", "totalValueCents": 20000},
            ),
            (
                "creator",
                "c1",
                "offer_responded",
                {"offerId": "o1", "response": "accepted", "hostProfileId": "h1"},
            ),
            ("host", "h1", "profile_viewed", {"creatorProfileId": "c1", "source": "search"}),
        ],
        key=lambda r: (r[2], r[0]),
    )
    assert analytics_stats()["written"] == 6


def test_analytics_failures_never_break_the_caller(applied_db, caplog):
    reset_analytics_stats()
    with applied_db.as_role("owner").connect() as conn:
        conn.execute("alter table analytics_events add constraint no_evil check (\"actorId\" <> 'evil')")
        conn.commit()
    with applied_db.as_role("app").connect() as conn:
        conn.execute(
            "insert into audit_logs (id, action, \"actorType\", \"actorId\", \"targetType\", \"targetId\") values ('keep', 'offer.created', 'user', 'u1', 'Offer', 'o1')"
        )
        with caplog.at_level(logging.WARNING, logger="creatorstays_infra.analytics"):
            assert log_analytics_event(conn, "robot", "x", "offer_sent") is None
            assert log_offer_responded(conn, "c1", "o1", "maybe", "h1") is None
            assert log_analytics_event(conn, "host", "h1", "offer_sent", {"bad": float("inf")}) is None
            assert (
                log_analytics_event(conn, "host", "evil", "offer_sent", {}) is None
            )  # a database error, inside a savepoint
            assert log_analytics_event(conn, "host", "good", "offer_sent", {"q": NASTY}) is not None
        conn.commit()  # the caller's transaction survived every failure
        assert conn.execute("select count(*) from audit_logs where id = 'keep'").fetchone()[0] == 1
        assert conn.execute("""select "eventData"->>'q' from analytics_events""").fetchone()[0] == NASTY
    stats = analytics_stats()
    assert stats["failed"] == 4 and stats["written"] == 1
    assert (
        stats["failed: field actor_type"] == 1
        and stats["failed: field response"] == 1
        and stats["failed: CheckViolation"] == 1
    )
    assert "actor_type" in caplog.text and "response" in caplog.text


def test_batch_writer_copies_and_salvages_a_bad_batch(applied_db):
    reset_analytics_stats()
    conn = applied_db.as_role("app").connect(autocommit=True)
    with AnalyticsBatchWriter(conn, batch_size=1000) as writer:
        for i in range(2500):
            writer.add(
                "host",
                f"h{i}",
                "profile_viewed",
                {"creatorProfileId": f"c{i}", "source": "search"},
                created_at=datetime(2026, 1, 1) + timedelta(seconds=i),
            )
        assert writer.add("nobody", "x", "profile_viewed") is False
    assert writer.written == 2500 and writer.failed == 1
    with applied_db.as_role("owner").connect(autocommit=True) as owner:
        owner.execute("alter table analytics_events add constraint no_b7 check (\"actorId\" <> 'b7')")
    conn = applied_db.as_role("app").connect(autocommit=True)
    writer = AnalyticsBatchWriter(conn, batch_size=50)
    for i in range(20):
        writer.add("host", f"b{i}", "offer_sent", {"offerId": f"o{i}"})
    writer.close()
    assert writer.written == 19 and writer.failed == 1
    assert applied_db.scalar("select count(*) from analytics_events") == 2519


# -- integrity the database enforces (raw SQL, any client) -------------------------------------------------------
def test_audit_logs_are_append_only(applied_db):
    # the table's owner holds every privilege: the triggers still refuse (the app role is refused earlier, see test_security)
    with applied_db.as_role("owner").connect(autocommit=True) as conn:
        conn.execute(
            "insert into audit_logs (id, action, \"actorType\", \"actorId\", \"targetType\", \"targetId\") values ('a1', 'offer.created', 'user', 'u1', 'Offer', 'o1')"
        )
        for statement in (
            "update audit_logs set action = 'x'",
            "delete from audit_logs",
            "truncate audit_logs",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        assert conn.execute("select action from audit_logs").fetchall() == [("offer.created",)]


def test_terms_snapshot_is_write_once_and_history_only_grows(applied_db):
    with applied_db.as_role("app").connect(autocommit=True) as conn:
        oid = conn.execute("select id from offers limit 1").fetchone()[0]
        conn.execute(
            """update offers set "originalTermsSnapshot" = '{"cashCents": 1}' where id = %s""", (oid,)
        )  # first write
        with pytest.raises(psycopg.errors.CheckViolation, match="write-once"):
            conn.execute(
                """update offers set "originalTermsSnapshot" = '{"cashCents": 2}' where id = %s""", (oid,)
            )
        with pytest.raises(psycopg.errors.CheckViolation, match="write-once"):
            conn.execute("""update offers set "originalTermsSnapshot" = null where id = %s""", (oid,))
        entry = {
            "fromStatus": "pending",
            "toStatus": "accepted",
            "changedBy": "creator",
            "changedAt": "2026-01-01T00:00:00.000Z",
        }
        conn.execute(
            """update offers set "statusHistory" = "statusHistory" || %s::jsonb where id = %s""",
            (json.dumps([entry]), oid),
        )
        conn.execute(
            """update offers set "statusHistory" = "statusHistory" || %s::jsonb where id = %s""",
            (json.dumps([entry]), oid),
        )
        for change in (
            """update offers set "statusHistory" = '[]' where id = %s""",  # shrink
            """update offers set "statusHistory" = jsonb_set("statusHistory", '{0,toStatus}', '"declined"') where id = %s""",  # edit
            """update offers set "statusHistory" = '{"not": "array"}' where id = %s""",  # replace
            """update offers set "statusHistory" = "statusHistory" - 0 where id = %s""",  # drop the first
        ):
            with pytest.raises(psycopg.errors.CheckViolation, match="append-only"):
                conn.execute(change, (oid,))
        assert (
            conn.execute(
                """select jsonb_array_length("statusHistory") from offers where id = %s""", (oid,)
            ).fetchone()[0]
            == 2
        )
        # other columns stay writable
        conn.execute("""update offers set "cashCents" = 12345 where id = %s""", (oid,))


@pytest.mark.parametrize("value", ["1.0000001", "-0.01", "NaN", "Infinity"])
def test_profile_completeness_stays_in_range(applied_db, value):
    with applied_db.as_role("app").connect(autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                """update creator_profiles set "profileCompleteness" = %s::float8
                            where id = (select min(id) from creator_profiles)""",
                (value,),
            )
        conn.execute(
            """update creator_profiles set "profileCompleteness" = 1 where id = (select min(id) from creator_profiles)"""
        )
