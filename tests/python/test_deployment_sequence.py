"""The deployment guide's sequence, in its order, on the application's real schema, with the tools the
guide names (the csinfra CLI and plain dbt):

    csinfra migrate up → dbt run → dbt test → dbt run (writes nothing) → csinfra migrate down (exact
    restore, archives) → csinfra migrate up → csinfra migrate restore-archive → dbt run → dbt test

The last `dbt run` is `csinfra backfill` (the guide allows either): a plain `dbt test` right after it
must pass too.
"""

from __future__ import annotations

import json
import re

from psycopg import sql

from conftest import ROLE_ENV
from creatorstays_infra import log_offer_sent, record_offer_status_change, update_creator_readiness
from test_app_schema import columns_of

APP_TABLES = ("users", "host_profiles", "properties", "creator_profiles", "offers", "collaborations")


def fingerprint(db, columns: dict[str, set[str]]) -> dict[str, tuple]:
    """Count and content hash of every application table, over the given (pre-Phase-1) columns only."""
    out = {}
    with db.connect(autocommit=True) as conn:
        for table in APP_TABLES:
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in sorted(columns[table]))
            out[table] = conn.execute(
                sql.SQL(
                    "select count(*), md5(coalesce(string_agg(row({})::text, '|' order by id), '')) from {}"
                ).format(cols, sql.Identifier(table))
            ).fetchone()
    return out


def row_versions(db) -> tuple:
    with db.connect(autocommit=True) as conn:
        return tuple(
            conn.execute(
                sql.SQL("select md5(string_agg(xmin::text || id, ',' order by id)) from {}").format(
                    sql.Identifier(t)
                )
            ).fetchone()[0]
            for t in ("creator_profiles", "offers", "audit_logs", "analytics_events")
        )


def written_last_run(db) -> dict[str, int]:
    with db.connect(autocommit=True) as conn:
        return dict(
            conn.execute("""select model, written from csinfra.writeback_log
                                    where invocation_id = (select invocation_id from csinfra.writeback_log
                                                           order by started_at desc limit 1)""")
        )


def test_the_guides_sequence_on_the_real_schema(pre_db):
    """Every step as the role production uses: the migration owner migrates, builds and tests (not a superuser),
    with the application's and the analysts' roles configured; the application at work runs as its own role."""
    db = pre_db.as_role("owner")
    roles = db.env(**ROLE_ENV)
    schema_before = db.dump_schema()
    pre_columns = columns_of(db)

    # 1. the migration, then the backfill and the verification with plain dbt
    db.cli("migrate", "up", check=True, env=roles)
    assert "Completed successfully" in db.dbt("seed", env=ROLE_ENV)  # the rules' catalogs
    assert "Completed successfully" in db.dbt("run", env=ROLE_ENV)
    assert written_last_run(db)["wb_creator_profiles"] > 0
    test_log = db.dbt("test", env=ROLE_ENV)
    assert "ERROR=0" in test_log and re.search(r"PASS=\d{3}", test_log)

    # 2. a second run on unchanged data writes nothing, anywhere in the application's tables
    versions = row_versions(db)
    db.dbt("run", env=ROLE_ENV)
    assert row_versions(db) == versions
    assert set(written_last_run(db).values()) == {0}

    # 3. the application at work, as the application's role: status changes (history), funnel events, audit rows
    with pre_db.as_role("app").connect() as conn:
        offers = conn.execute("""select id, "hostProfileId", "creatorProfileId" from offers where status = 'pending'
                                 order by id limit 5""").fetchall()
        for oid, host, creator in offers:
            record_offer_status_change(conn, oid, "pending", "accepted", "creator")
            log_offer_sent(conn, host, oid, creator, 20000)
            update_creator_readiness(conn, creator)
        conn.commit()
    with db.connect(autocommit=True) as conn:
        histories = dict(
            conn.execute("""select id, "statusHistory" from offers where "statusHistory" <> '[]'""")
        )
        events = conn.execute("select count(*) from analytics_events").fetchone()[0]
    assert len(histories) >= 5 and events == 5
    data_before_down = fingerprint(db, pre_columns)

    # 4. the way back: exact restore of the schema, the application's data untouched, everything archived
    down = db.cli("migrate", "down", check=True, env=roles)
    assert db.dump_schema() == schema_before
    assert fingerprint(db, pre_columns) == data_before_down
    assert re.search(r"archived \d+ audit_logs, 5 analytics_events, \d+ offers' statusHistory", down.stdout)
    archive_id = re.search(r" as (r\w+); restore with", down.stdout).group(1)

    # 5. forward again, archive restored before the backfill, then the pipeline
    db.cli("migrate", "up", check=True, env=roles)
    restored = db.cli("migrate", "restore-archive", archive_id, check=True, env=roles)
    assert re.search(rf"\b{len(histories)} offers' statusHistory", restored.stdout), restored.stdout
    with db.connect(autocommit=True) as conn:
        assert (
            dict(conn.execute("""select id, "statusHistory" from offers where "statusHistory" <> '[]'"""))
            == histories
        )
        assert conn.execute("select count(*) from analytics_events").fetchone()[0] == events
    backfill = db.cli("backfill", "--json", env=roles)
    assert backfill.returncode == 0, backfill.stderr
    assert json.loads(backfill.stdout)["dbt"].get("success", 0) >= 20
    test_log = db.dbt("test", env=ROLE_ENV)
    assert "ERROR=0" in test_log and "WARN=0" in test_log
    verify = db.cli("verify", "--json", env=roles)
    assert verify.returncode == 0 and json.loads(verify.stdout)["drift"]["total"] == 0
    status = json.loads(db.cli("migrate", "status", "--json", check=True).stdout)["migrations"][0]
    assert status["state"] == "applied" and status["prismaState"] == "applied" and status["problems"] == []


def test_write_back_only_builds_just_the_write_back(applied_db):
    result = applied_db.cli("backfill", "--write-back-only", "--json")
    assert result.returncode == 0, result.stderr
    assert not applied_db.scalar("select to_regclass('csinfra.fct_offer_funnel') is not null")
    assert applied_db.cli("verify").returncode == 0
