"""The marts on Apache Spark (local mode) from the lake export, built from the same SQL as on PostgreSQL, equal the
PostgreSQL marts row for row (numbers to 1e-9, JSON compared parsed); the report written from them equals the one
written from PostgreSQL's; the event models are incremental there too (whole day partitions overwritten), equal to
a full refresh after late and duplicated events; and the data tests run there, a failing one failing the build.

Spark costs 20-25 s to start per dbt command, so the module builds once (the fixture `spark_built`) and the tests
below use that build in order: the first compares it with PostgreSQL, the second builds on from it."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from psycopg import sql

from creatorstays_infra.ops import marts_compare
from creatorstays_infra.ops.dbt import LOAD_AND_RUN
from creatorstays_infra.ops.marts import MART_MODELS

AS_OF = "2026-11-28 00:00:00"
SCHEMA = "csinfra"
INCREMENTAL = (
    "int_funnel_milestones_recorded",
    "int_creator_profile_views_daily",
    "int_creator_trust_tier_changes",
)
LOOKBACK = timedelta(days=3)  # dbt_project.yml's events_lookback
EVENT_COLUMNS = ("id", "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
AUDIT_COLUMNS = (
    "id",
    "action",
    "actorType",
    "actorId",
    "actorEmail",
    "targetType",
    "targetId",
    "metadata",
    "ipAddress",
    "userAgent",
    "createdAt",
)


@pytest.fixture(scope="module")
def spark_built(server, template_marts, tmp_path_factory):
    """A database of its own (events, backfill, marts), its lake, and the marts built on Spark from it (without
    their tests: the last test runs them) and on PostgreSQL, both as of AS_OF."""
    from conftest import _clone  # the conftest's cloning, for a module-wide database

    clone = _clone(server, template_marts)
    db = next(clone)
    root = tmp_path_factory.mktemp("spark")
    lake, spark = root / "lake", root / "spark"
    env = db.env(CSINFRA_SPARK_DIR=str(spark))
    exported = db.cli("lake", "export", "--lake", str(lake), "--json", env=env)
    assert exported.returncode == 0, exported.stderr
    built = db.cli(
        "marts", "--engine", "spark", "--lake", str(lake), "--as-of", AS_OF, "--skip-tests", "--json", env=env
    )
    assert built.returncode == 0, built.stdout + built.stderr
    summary = json.loads(built.stdout)
    assert summary["engine"] == "spark" and summary["dbt"].get("error", 0) == 0
    # the same marts on PostgreSQL, at the same moment
    db.dbt("build", *LOAD_AND_RUN, "--selector", "marts", vars_={"marts_as_of": AS_OF})
    yield db, root, lake, spark
    next(clone, None)


def test_the_marts_on_spark_equal_the_marts_on_postgresql_and_so_does_the_report(spark_built):
    db, root, _, spark = spark_built
    with db.connect() as conn:
        counts = {
            m: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(SCHEMA, m))).fetchone()[
                0
            ]
            for m in MART_MODELS
        }
        problems = marts_compare.compare(conn, SCHEMA, spark / "warehouse", 1e-9)
    assert problems == {}
    assert all(n > 0 for n in counts.values()), counts

    # the report from the Spark marts is the report from the PostgreSQL marts (but for when and from where)
    pg_report, spark_report = root / "pg.html", root / "spark.html"
    written = db.cli("report", "--out", str(pg_report))
    assert written.returncode == 0 and "marts on PostgreSQL" in written.stdout, written.stderr
    env = db.env(CSINFRA_SPARK_DIR=str(spark))
    written = db.cli("report", "--engine", "spark", "--out", str(spark_report), env=env)
    assert written.returncode == 0 and "marts on Spark" in written.stdout, written.stderr
    a, b = (_report_without_time_and_source(p) for p in (pg_report, spark_report))
    assert a == b
    assert 'data-metric="funnel.offers_sent"' in a and "(Spark)" in spark_report.read_text()

    # and the comparison bites: the PostgreSQL marts at another moment differ from Spark's, and so does the report
    db.dbt("build", *LOAD_AND_RUN, "--selector", "marts", vars_={"marts_as_of": "2026-10-01"})
    with db.connect() as conn:
        assert marts_compare.compare(conn, SCHEMA, spark / "warehouse", 1e-9) != {}
    assert db.cli("report", "--out", str(pg_report)).returncode == 0
    assert _report_without_time_and_source(pg_report) != b


def _report_without_time_and_source(path: Path) -> str:
    """The report's HTML without its generation time and engine label (as text and in the embedded JSON, whose
    hash the Content-Security-Policy carries)."""
    text = path.read_text()
    text = re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "<time>", text)
    text = re.sub(r"\((PostgreSQL|Spark)\)", "(<engine>)", text)
    return re.sub(r"'sha256-[A-Za-z0-9+/=]+'", "'sha256-<hash>'", text)


def test_incremental_on_spark_equals_a_full_refresh_and_a_failing_test_fails_the_build(spark_built):
    """New events reach PostgreSQL after the first Spark build: late ones inside the lookback (every milestone of
    one day recorded a day earlier, so that day's partition is left empty), duplicates, a later one for a
    milestone of an old partition, a late profile view and a late trust-tier change. The lake export and the
    Spark build run incrementally and must hold the same event models and marts as a --full-refresh of the same
    data. The Spark build runs the data tests, on a lake where one stored blocker list is written with a JSON
    escape: the singular test that counts blockers three ways fails, alone, and so does the command (every
    model is still built: nothing depends on that test)."""
    db, _, lake, spark = spark_built
    warehouse = spark / "warehouse"
    env = db.env(CSINFRA_SPARK_DIR=str(spark))
    events = _rows(db, "analytics_events", EVENT_COLUMNS)
    audits = _rows(db, "audit_logs", AUDIT_COLUMNS)
    newest = max(e["createdAt"] for e in events)
    since_day = (newest - LOOKBACK).replace(hour=0, minute=0, second=0, microsecond=0)

    # the latest day partition of the milestones whose every row an analytics event records at its first time
    _, milestones = marts_compare.warehouse_rows(warehouse, SCHEMA, "int_funnel_milestones_recorded")
    recorders = _milestone_recorders(events)
    by_day: dict[str, list[dict]] = {}
    for m in milestones:
        by_day.setdefault(str(m["first_recorded_on"]), []).append(m)
    moved_day, moved = None, {}
    for day in sorted(by_day, reverse=True):
        rows = by_day[day]
        keys = [(r["subject_type"], r["subject_id"], r["milestone"]) for r in rows]
        picks = [recorders.get((*k, r["first_recorded_at"])) for k, r in zip(keys, rows, strict=True)]
        if min(r["first_recorded_at"] for r in rows) - timedelta(days=1) >= since_day and all(picks):
            moved_day, moved = day, dict(zip(keys, picks, strict=True))
            break
    assert moved_day, "no day partition inside the lookback whose milestones all come from analytics events"

    # late: each event that recorded a milestone of that day again, a day earlier (inside the lookback)
    recorded = {e["id"]: e for e in moved.values()}
    new_events = [_copy(e, createdAt=e["createdAt"] - timedelta(days=1)) for e in recorded.values()]
    # a duplicate: the newest event again; and a later duplicate of the oldest offer_sent (an old partition's)
    new_events.append(_copy(max(events, key=lambda e: e["createdAt"])))
    old_sent = min((e for e in events if e["eventType"] == "offer_sent"), key=lambda e: e["createdAt"])
    new_events.append(_copy(old_sent, createdAt=newest + timedelta(hours=1)))
    view = max((e for e in events if e["eventType"] == "profile_viewed"), key=lambda e: e["createdAt"])
    new_events.append(_copy(view, createdAt=newest - timedelta(days=2)))  # a late view, inside the lookback
    trust = [a for a in audits if a["action"] == "system.trust_updated"]
    newest_audit = max(a["createdAt"] for a in audits)
    new_audits = [_copy(trust[0], createdAt=newest_audit - timedelta(days=1))]  # a late tier change
    _insert(db, "analytics_events", EVENT_COLUMNS, new_events)
    _insert(db, "audit_logs", AUDIT_COLUMNS, new_audits)

    exported = db.cli("lake", "export", "--lake", str(lake), "--json", env=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["tables"]["analytics_events"]["mode"] == "incremental"
    _corrupt_one_blocker_list(lake)

    # the incremental build, with the data tests: the one catching the corrupted value fails, and only it
    built = db.cli("marts", "--engine", "spark", "--lake", str(lake), "--as-of", AS_OF, "--json", env=env)
    assert built.returncode == 1, built.stdout + built.stderr
    summary = json.loads(built.stdout)
    assert summary["tests"] and summary["dataTests"]["failed"] == ["assert_blocker_counts_match_dashboard"]
    assert summary["dataTests"]["pass"] > 150 and summary["dataTests"]["skip"] == 0, summary["dataTests"]
    assert summary["dbt"]["skip"] == 0 and "error" in built.stderr
    assert f"dropped partition first_recorded_on={moved_day}" in Path(summary["log"]).read_text()

    # the late events were read: each moved milestone is now first recorded a day earlier, none on the emptied day
    _, milestones = marts_compare.warehouse_rows(warehouse, SCHEMA, "int_funnel_milestones_recorded")
    held = {(r["subject_type"], r["subject_id"], r["milestone"]): r for r in milestones}
    assert len(held) == len(milestones)
    for key, event in moved.items():
        assert held[key]["first_recorded_at"] == event["createdAt"] - timedelta(days=1), key
    assert all(str(r["first_recorded_on"]) == str(r["first_recorded_at"].date()) for r in milestones)
    assert moved_day not in {str(r["first_recorded_on"]) for r in milestones}

    # equal to a full refresh of the same data (on PostgreSQL, which the first test proves builds what Spark
    # builds): the event models and every mart
    db.dbt("build", *LOAD_AND_RUN, "--selector", "marts", "--full-refresh", vars_={"marts_as_of": AS_OF})
    with db.connect() as conn:
        assert marts_compare.compare(conn, SCHEMA, warehouse, 1e-9, (*INCREMENTAL, *MART_MODELS)) == {}
        assert all(
            conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(SCHEMA, t))).fetchone()[0]
            for t in INCREMENTAL
        )


def _rows(db, table: str, columns: tuple[str, ...]) -> list[dict]:
    query = sql.SQL("select {} from {}").format(
        sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(c))
            if c in ("eventData", "metadata")
            else sql.Identifier(c)
            for c in columns
        ),
        sql.Identifier(table),
    )
    with db.connect(autocommit=True) as conn:
        return [dict(zip(columns, r, strict=True)) for r in conn.execute(query).fetchall()]


def _milestone_recorders(events: list[dict]) -> dict[tuple, dict]:
    """(subject type, subject id, milestone, time) -> an analytics event recording it (as the model reads them)."""
    out = {}
    for e in events:
        data = json.loads(e["eventData"] or "{}")
        t, kind = e["createdAt"], e["eventType"]
        keys = []
        if kind == "offer_sent" and data.get("offerId"):
            keys.append(("offer", data["offerId"], "sent"))
        elif kind == "offer_responded" and data.get("offerId"):
            keys.append(("offer", data["offerId"], "responded"))
            if data.get("response") == "accepted":
                keys.append(("offer", data["offerId"], "accepted"))
        elif kind in ("collab_started", "collab_completed") and data.get("collabId"):
            keys.append(("collaboration", data["collabId"], kind.removeprefix("collab_")))
        for key in keys:
            out.setdefault((*key, t), e)
    return out


def _copy(row: dict, **changes) -> dict:
    return {**row, "id": f"ctestspark{uuid.uuid4().hex[:15]}", **changes}


def _insert(db, table: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    query = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with db.connect() as conn:
        with conn.cursor().copy(query) as copy:
            for r in rows:
                copy.write_row([r[c] for c in columns])
        conn.commit()


def _corrupt_one_blocker_list(lake: Path) -> None:
    """In the lake's creator_profiles, one creator's readinessBlockers with its first code's first letter written as
    a JSON escape (\\u00XX): the same JSON, so every per-column test passes, but a different text."""
    for path in sorted((lake / "creator_profiles").glob("*.parquet")):
        table = pq.read_table(path)
        blockers = table.column("readinessBlockers").to_pylist()
        states = table.column("readinessState").to_pylist()
        for i, (text, state) in enumerate(zip(blockers, states, strict=True)):
            if text and text.startswith('["') and state not in ("READY", "PENDING_OAUTH"):
                blockers[i] = '["\\u%04x%s' % (ord(text[2]), text[3:])  # noqa: UP031 (a JSON escape)
                index = table.schema.get_field_index("readinessBlockers")
                table = table.set_column(index, table.schema.field(index), [blockers])
                pq.write_table(table, path)
                return
    raise AssertionError("no creator with blockers in the lake")
