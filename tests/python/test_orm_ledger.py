"""The ORM agrees, in every order (without Node.js: the ORM's rows are written here exactly as
`prisma migrate deploy` writes them; test_orm_cli.py runs the real CLI).

* after `csinfra migrate up`, what the ORM models is exactly what docs/rules.md §3 declares;
* Phase 1 applied by the ORM itself, from the application's own file: adopted, extras added;
* a schema that only partly matches: refused, with the list of differences;
* a failed ORM attempt: named by `status`, resolved by `up` as `prisma migrate resolve --rolled-back`;
* `down`: the ORM sees the migration as pending, never failed.
"""

from __future__ import annotations

import json

import pytest

from prisma_cli import MIGRATION, MIGRATION_SQL, sha256

# -- docs/rules.md §3, written out by hand: the oracle for what the ORM must find ---------------------------
ENUMS = {
    "TrustTier": ["NEW", "VERIFIED", "PROVEN"],
    "ReadinessState": ["INCOMPLETE", "PENDING_OAUTH", "READY"],
}
TS = "timestamp(3) without time zone"
# (table, column) -> (type, NOT NULL, default)
COLUMNS = {
    ("creator_profiles", "trustTier"): ('"TrustTier"', True, "'NEW'::\"TrustTier\""),
    ("creator_profiles", "readinessState"): ('"ReadinessState"', True, "'INCOMPLETE'::\"ReadinessState\""),
    ("creator_profiles", "readinessBlockers"): ("jsonb", True, "'[]'::jsonb"),
    ("creator_profiles", "profileCompleteness"): ("double precision", True, "0"),
    ("creator_profiles", "firstOfferReceivedAt"): (TS, False, None),
    ("creator_profiles", "firstOfferRespondedAt"): (TS, False, None),
    ("creator_profiles", "firstCollabCompletedAt"): (TS, False, None),
    ("offers", "originalTermsSnapshot"): ("jsonb", False, None),
    ("offers", "statusHistory"): ("jsonb", True, "'[]'::jsonb"),
    ("offers", "totalValueCents"): ("integer", False, None),
    ("offers", "isValid"): ("boolean", True, "true"),
    ("offers", "validationErrors"): ("jsonb", True, "'[]'::jsonb"),
    ("audit_logs", "id"): ("text", True, None),
    ("audit_logs", "action"): ("text", True, None),
    ("audit_logs", "actorType"): ("text", True, None),
    ("audit_logs", "actorId"): ("text", True, None),
    ("audit_logs", "actorEmail"): ("text", False, None),
    ("audit_logs", "targetType"): ("text", True, None),
    ("audit_logs", "targetId"): ("text", True, None),
    ("audit_logs", "metadata"): ("jsonb", True, "'{}'::jsonb"),
    ("audit_logs", "ipAddress"): ("text", False, None),
    ("audit_logs", "userAgent"): ("text", False, None),
    ("audit_logs", "createdAt"): (TS, True, "CURRENT_TIMESTAMP"),
    ("analytics_events", "id"): ("text", True, None),
    ("analytics_events", "actorType"): ("text", True, None),
    ("analytics_events", "actorId"): ("text", True, None),
    ("analytics_events", "eventType"): ("text", True, None),
    ("analytics_events", "eventData"): ("jsonb", True, "'{}'::jsonb"),
    ("analytics_events", "sessionId"): ("text", False, None),
    ("analytics_events", "createdAt"): (TS, True, "CURRENT_TIMESTAMP"),
}
# index -> (table, columns, unique)
INDEXES = {
    "audit_logs_pkey": ("audit_logs", ["id"], True),
    "audit_logs_targetType_targetId_idx": ("audit_logs", ["targetType", "targetId"], False),
    "audit_logs_actorId_idx": ("audit_logs", ["actorId"], False),
    "audit_logs_action_idx": ("audit_logs", ["action"], False),
    "audit_logs_createdAt_idx": ("audit_logs", ["createdAt"], False),
    "analytics_events_pkey": ("analytics_events", ["id"], True),
    "analytics_events_actorType_actorId_createdAt_idx": (
        "analytics_events",
        ["actorType", "actorId", "createdAt"],
        False,
    ),
    "analytics_events_eventType_createdAt_idx": ("analytics_events", ["eventType", "createdAt"], False),
    "analytics_events_createdAt_idx": ("analytics_events", ["createdAt"], False),
}
PRE_PHASE1_COLUMNS = {"creator_profiles": 56, "offers": 26}


def orm_view(db) -> tuple[dict, dict, dict, dict]:
    """Enums, the Phase 1 columns, the indexes of the two new tables and the column counts, as the catalog has them."""
    with db.connect(autocommit=True) as conn:
        conn.execute("set search_path to public")
        enums = {}
        for name, label in conn.execute(
            "select t.typname, e.enumlabel from pg_type t join pg_enum e on e.enumtypid = t.oid "
            "where t.typnamespace = 'public'::regnamespace order by t.typname, e.enumsortorder"
        ):
            enums.setdefault(name, []).append(label)
        columns = {
            (t, c): (typ, notnull, default)
            for t, c, typ, notnull, default in conn.execute(
                """select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
                   from pg_attribute a join pg_class c on c.oid = a.attrelid
                   left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
                   where c.relnamespace = 'public'::regnamespace and c.relname = any(%s) and a.attnum > 0 and not a.attisdropped""",
                (["creator_profiles", "offers", "audit_logs", "analytics_events"],),
            )
            if (t, c) in COLUMNS or t in ("audit_logs", "analytics_events")
        }
        indexes = {
            name: (table, cols, unique)
            for name, table, cols, unique in conn.execute(
                """select i.relname, t.relname, array_agg(a.attname order by k.n), x.indisunique
                   from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
                   cross join lateral unnest(x.indkey) with ordinality as k(attnum, n)
                   join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum
                   where t.relnamespace = 'public'::regnamespace and t.relname in ('audit_logs', 'analytics_events')
                   group by i.relname, t.relname, x.indisunique"""
            )
        }
        counts = dict(
            conn.execute(
                """select c.relname, count(*) from pg_attribute a join pg_class c on c.oid = a.attrelid
               where c.relnamespace = 'public'::regnamespace and c.relname in ('creator_profiles', 'offers')
               and a.attnum > 0 and not a.attisdropped group by c.relname"""
            )
        )
    return enums, columns, indexes, counts


def test_what_the_orm_models_is_exactly_spec_section_3(applied_db):
    enums, columns, indexes, counts = orm_view(applied_db)
    assert {k: v for k, v in enums.items() if k in ENUMS} == ENUMS
    assert columns == COLUMNS
    assert indexes == INDEXES
    assert counts == {t: n + sum(1 for (tt, _) in COLUMNS if tt == t) for t, n in PRE_PHASE1_COLUMNS.items()}


def test_the_spec_oracle_catches_a_nullable_actor_column(applied_db):
    """The check above fails on the drift the ORM found before (a NULL-able actorId)."""
    with applied_db.connect(autocommit=True) as conn:
        conn.execute('alter table audit_logs alter column "actorId" drop not null')
    _, columns, _, _ = orm_view(applied_db)
    assert columns != COLUMNS
    assert {k for k in COLUMNS if columns[k] != COLUMNS[k]} == {("audit_logs", "actorId")}


# -- the ORM's rows, as prisma migrate deploy writes them ----------------------------------------------------
APP_FILE = (
    b"-- generated by prisma migrate dev on the application team's machine\n" + MIGRATION_SQL.read_bytes()
)


def orm_deploy(db, script: bytes, *, fail_with: str | None = None) -> str:
    """What `prisma migrate deploy` does for one migration: a started row, the script as one simple query
    (one implicit transaction), then the row finished, or left failed with the error in `logs`."""
    with db.connect(autocommit=True) as conn:
        row_id = conn.execute(
            "insert into _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) "
            "values (gen_random_uuid()::text, %s, %s, now(), 0) returning id",
            (sha256(script), MIGRATION),
        ).fetchone()[0]
        if fail_with is None:
            conn.execute(script.decode())
            conn.execute(
                "update _prisma_migrations set finished_at = now(), applied_steps_count = 1 where id = %s",
                (row_id,),
            )
        else:
            conn.execute("update _prisma_migrations set logs = %s where id = %s", (fail_with, row_id))
    return row_id


def prisma_rows(db) -> list[tuple]:
    with db.connect(autocommit=True) as conn:
        return conn.execute(
            "select id, checksum, finished_at is not null, rolled_back_at is not null, applied_steps_count "
            "from _prisma_migrations where migration_name = %s order by started_at",
            (MIGRATION,),
        ).fetchall()


def status(db) -> tuple[int, dict]:
    result = db.cli("migrate", "status", "--json")
    return result.returncode, json.loads(result.stdout)["migrations"][0]


def test_phase1_applied_by_the_orm_is_adopted_with_only_the_extras_added(pre_db, make_db, template_pre):
    row_id = orm_deploy(pre_db, APP_FILE)
    rc, s = status(pre_db)
    assert (
        rc == 1
        and s["state"] == "applied by the ORM"
        and s["prismaState"] == "applied (another file's checksum)"
    )
    assert any("not adopted" in p and "csinfra migrate up" in p for p in s["problems"]), s["problems"]
    assert not pre_db.scalar(
        "select exists (select from pg_trigger where tgname = 'offers_guard_terms_and_history')"
    )

    result = pre_db.cli("migrate", "up")
    assert result.returncode == 0, result.stderr
    assert (
        "adopted" in result.stdout
        and "csinfra's extras added" in result.stdout
        and "another file" in result.stdout
    )
    # exactly the schema csinfra builds itself
    reference = make_db(template_pre)
    reference.cli("migrate", "up", check=True)
    assert pre_db.dump_schema() == reference.dump_schema()
    # the ORM's row is the ORM's: untouched
    assert prisma_rows(pre_db) == [(row_id, sha256(APP_FILE), True, False, 1)]
    assert pre_db.scalar("select prisma_checksum from csinfra_meta.schema_migrations") == sha256(APP_FILE)
    rc, s = status(pre_db)
    assert rc == 0 and s["state"] == "applied" and s["problems"] == []
    assert "already applied" in pre_db.cli("migrate", "up", check=True).stdout


def test_a_schema_that_only_partly_matches_is_refused_with_the_differences(pre_db):
    partial = (
        MIGRATION_SQL.read_text()
        .replace('"actorId" TEXT NOT NULL,', '"actorId" TEXT,', 1)
        .replace('CREATE INDEX "analytics_events_createdAt_idx" ON "analytics_events"("createdAt");', "")
    )
    orm_deploy(pre_db, partial.encode())
    before = pre_db.dump_schema()
    result = pre_db.cli("migrate", "up")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "nothing changed" in message
    assert "index public.analytics_events_createdAt_idx is missing" in message
    assert "column public.audit_logs.actorId is 'text', expected 'text not null'" in message
    assert pre_db.dump_schema() == before
    rc, s = status(pre_db)
    assert rc == 1 and s["state"] == "ORM ledger disagrees with the schema"


def test_a_failed_orm_attempt_is_named_then_resolved_like_prisma_migrate_resolve(pre_db):
    failed_id = orm_deploy(pre_db, APP_FILE, fail_with="Database error code: 55P03\nlock timeout")
    rc, s = status(pre_db)
    assert rc == 1 and s["prismaState"] == "failed attempt"
    assert any(failed_id in p and "P3009" in p for p in s["problems"]), s["problems"]
    result = pre_db.cli("migrate", "up")
    assert result.returncode == 0, result.stderr
    assert (
        f"the failed ORM attempt {failed_id}" in result.stdout
        and "prisma migrate resolve --rolled-back" in result.stdout
    )
    rows = prisma_rows(pre_db)
    # the failed row rolled back (as `prisma migrate resolve --rolled-back` leaves it), a new finished row beside it
    assert rows[0] == (failed_id, sha256(APP_FILE), False, True, 0)
    assert rows[1][1:] == (sha256(MIGRATION_SQL.read_bytes()), True, False, 1) and len(rows) == 2
    rc, s = status(pre_db)
    assert rc == 0 and s["prismaState"] == "applied" and s["problems"] == []


def test_a_failed_attempt_over_a_partly_applied_schema_is_refused(pre_db):
    orm_deploy(pre_db, APP_FILE, fail_with="interrupted")
    with pre_db.connect(autocommit=True) as conn:
        conn.execute("create type \"TrustTier\" as enum ('NEW', 'VERIFIED', 'PROVEN')")
    result = pre_db.cli("migrate", "up")
    assert result.returncode == 1 and "TrustTier" in result.stderr and "nothing changed" in result.stderr
    assert [r[2:4] for r in prisma_rows(pre_db)] == [(False, False)]  # still failed: nothing resolved


@pytest.mark.parametrize(
    "adopted", [False, True], ids=["applied by csinfra after a failed ORM attempt", "applied by the ORM"]
)
def test_down_leaves_the_orm_seeing_phase1_as_pending(pre_db, adopted):
    if adopted:
        orm_deploy(pre_db, APP_FILE)
    else:
        orm_deploy(pre_db, APP_FILE, fail_with="an earlier failure")
    pre_db.cli("migrate", "up", check=True)
    down = pre_db.cli("migrate", "down", check=True)
    assert "the ORM sees 20260203_infrastructure_phase1 as pending" in down.stdout
    # pending for the ORM: no finished row and no failed one (a failed one would block every deploy)
    assert prisma_rows(pre_db) == []
    rc, s = status(pre_db)
    assert rc == 0 and s["state"] == "not applied" and s["prismaState"] == "pending"


def test_the_application_repository_file_gives_the_checksum(pre_db, tmp_path):
    app_file = tmp_path / "migration.sql"
    app_file.write_bytes(APP_FILE)
    result = pre_db.cli("migrate", "up", "--prisma-migration-file", str(app_file))
    assert result.returncode == 0, result.stderr
    assert [r[1] for r in prisma_rows(pre_db)] == [sha256(APP_FILE)]


def test_an_application_file_creating_another_schema_is_refused(pre_db, tmp_path):
    app_file = tmp_path / "migration.sql"
    app_file.write_text(
        MIGRATION_SQL.read_text().replace(
            'CREATE INDEX "audit_logs_action_idx" ON "audit_logs"("action");', ""
        )
    )
    before = pre_db.dump_schema()
    result = pre_db.cli("migrate", "up", "--prisma-migration-file", str(app_file))
    assert result.returncode == 1
    assert "does not create what" in result.stderr and "audit_logs_action_idx" in result.stderr
    assert pre_db.dump_schema() == before
    missing = pre_db.cli("migrate", "up", "--prisma-migration-file", str(tmp_path / "nope.sql"))
    assert missing.returncode == 1 and "nope.sql" in missing.stderr


def test_adoption_also_resolves_a_failed_attempt_left_beside_the_finished_row(pre_db):
    failed_id = orm_deploy(pre_db, APP_FILE, fail_with="first try: lock timeout")
    finished_id = orm_deploy(pre_db, APP_FILE)
    result = pre_db.cli("migrate", "up")
    assert result.returncode == 0 and "adopted" in result.stdout and failed_id in result.stdout, (
        result.stdout + result.stderr
    )
    assert prisma_rows(pre_db) == [
        (failed_id, sha256(APP_FILE), False, True, 0),
        (finished_id, sha256(APP_FILE), True, False, 1),
    ]
    rc, s = status(pre_db)
    assert (
        rc == 0 and s["prismaState"] == "applied" and s["problems"] == []
    )  # the checksum csinfra recorded: the ORM's


def test_up_repairs_the_orm_ledger_when_ours_says_applied(applied_db):
    """csinfra applied Phase 1, then the ORM's row went missing (deleted by hand) or a failed attempt appeared
    beside it (`prisma migrate deploy` rerun after a delete): `status` says so, `up` repairs it."""
    with applied_db.connect(autocommit=True) as conn:
        conn.execute("delete from _prisma_migrations where migration_name = %s", (MIGRATION,))
    rc, s = status(applied_db)
    assert rc == 1 and any("`prisma migrate deploy` would run it again" in p for p in s["problems"]), s[
        "problems"
    ]
    result = applied_db.cli("migrate", "up")
    assert result.returncode == 0 and "already applied" in result.stdout and "recorded" in result.stdout, (
        result.stdout
    )
    assert [r[1:] for r in prisma_rows(applied_db)] == [(sha256(MIGRATION_SQL.read_bytes()), True, False, 1)]
    with applied_db.connect(autocommit=True) as conn:
        conn.execute(
            "update _prisma_migrations set finished_at = null, logs = 'P3018' where migration_name = %s",
            (MIGRATION,),
        )
    assert status(applied_db)[0] == 1
    applied_db.cli("migrate", "up", check=True)
    rows = prisma_rows(applied_db)
    assert [r[2:4] for r in rows] == [(False, True), (True, False)]
    rc, s = status(applied_db)
    assert rc == 0 and s["problems"] == []


def test_status_expects_the_checksum_of_the_file_csinfra_recorded(pre_db, tmp_path):
    app_file = tmp_path / "migration.sql"
    app_file.write_bytes(APP_FILE)
    pre_db.cli("migrate", "up", "--prisma-migration-file", str(app_file), check=True)
    rc, s = status(pre_db)
    assert rc == 0 and s["prismaState"] == "applied" and s["prisma"][0]["checksumOk"] is True


def test_an_application_file_with_transaction_control_is_refused(pre_db, tmp_path):
    """Prisma writes BEGIN/COMMIT into some migrations; inside csinfra's probe transaction a COMMIT would make the
    probe's DDL stick, so such a file is refused before anything runs."""
    app_file = tmp_path / "migration.sql"
    app_file.write_text("BEGIN;\n" + MIGRATION_SQL.read_text() + "COMMIT;\n")
    before = pre_db.dump_schema()
    result = pre_db.cli("migrate", "up", "--prisma-migration-file", str(app_file))
    assert result.returncode == 1 and "contains BEGIN" in result.stderr
    assert pre_db.dump_schema() == before
    assert not pre_db.scalar("select exists (select from pg_namespace where nspname like 'csinfra_probe_%')")
