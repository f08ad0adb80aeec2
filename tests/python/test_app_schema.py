"""The application's real schema is the test schema, and nothing the project creates pins it.

* demo data creates exactly scripts/app_schema/pre_phase1.sql (every column, key, index, the ORM's ledger);
* every column a model reads is declared in the sources, exists in that schema (or Phase 1), and the
  models read nothing else;
* after `dbt run`, the application can drop, retype and rename its own columns and tables; the next
  run works, or stops with one line naming what is missing;
* destructive demo commands refuse a database that is not ours.
"""

from __future__ import annotations

import re

import psycopg
import pytest
import yaml
from psycopg import sql

from conftest import ROOT

APP_SCHEMA_SQL = ROOT / "scripts" / "app_schema" / "pre_phase1.sql"
SOURCES = ROOT / "models" / "staging" / "app" / "_app__sources.yml"
PHASE1_TABLES = ("audit_logs", "analytics_events")


def declared_columns() -> dict[str, list[str]]:
    tables = yaml.safe_load(SOURCES.read_text())["sources"][0]["tables"]
    return {t["name"]: [c["name"] for c in t.get("columns", [])] for t in tables}


def columns_of(db, schema: str = "public") -> dict[str, set[str]]:
    with db.connect(autocommit=True) as conn:
        rows = conn.execute(
            """select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid
               where c.relnamespace = %s::regnamespace and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped""",
            (schema,),
        ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


# -- demo data is the application's schema -------------------------------------------------------------------
def test_demo_data_creates_exactly_the_application_schema(empty_db, make_db, template_pre):
    with empty_db.connect() as conn:
        conn.execute(APP_SCHEMA_SQL.read_text())
        conn.commit()
    demo = make_db(template_pre)
    assert demo.dump_schema() == empty_db.dump_schema()
    ledger = "select migration_name, checksum, applied_steps_count from _prisma_migrations order by 1"
    with demo.connect(autocommit=True) as a, empty_db.connect(autocommit=True) as b:
        assert a.execute(ledger).fetchall() == b.execute(ledger).fetchall()
        assert len(a.execute(ledger).fetchall()) == 4


def test_the_file_is_the_application_schema_as_the_spec_describes_it():
    """A guard against editing the vendored file: the columns docs/rules.md §2 names are there, and the
    column the last round invented is not."""
    text = APP_SCHEMA_SQL.read_text()
    users = text[text.index('CREATE TABLE "users"') : text.index(");", text.index('CREATE TABLE "users"'))]
    assert '"role"' not in users and '"email" TEXT NOT NULL' in users
    for column in (
        '"cashCents" INTEGER NOT NULL DEFAULT 0',
        '"tiktokRefreshToken" TEXT',
        '"minimumFlatFee" INTEGER',
        '"completedAt" TIMESTAMP(3)',
        '"propertyId" TEXT NOT NULL',
    ):
        assert column in text


# -- the models read only columns the application has ------------------------------------------------------
def test_every_declared_column_exists_in_the_application_schema_or_phase1(applied_db, empty_db):
    from test_orm_ledger import COLUMNS as PHASE1_COLUMNS  # docs/rules.md §3, written out by hand

    actual = columns_of(applied_db)
    missing = [
        f"{t}.{c}" for t, cols in declared_columns().items() for c in cols if c not in actual.get(t, set())
    ]
    assert missing == []
    # what is declared but not in the application's own file is Phase 1's, nothing else
    with empty_db.connect() as conn:
        conn.execute(APP_SCHEMA_SQL.read_text())
        conn.commit()
    pre = columns_of(empty_db)
    beyond = {(t, c) for t, cols in declared_columns().items() for c in cols if c not in pre.get(t, set())}
    assert beyond and beyond <= set(PHASE1_COLUMNS)


def test_the_models_read_no_column_the_sources_do_not_declare(applied_db):
    """Every column and table the sources do not declare is dropped; the whole project still builds,
    its tests pass and verify finds no drift. A model reading anything else would fail here."""
    declared = declared_columns()
    with applied_db.connect() as conn:
        for table, columns in columns_of(applied_db).items():
            if table == "_prisma_migrations":
                continue
            if table not in declared:
                conn.execute(sql.SQL("drop table {} cascade").format(sql.Identifier(table)))
                continue
            for column in sorted(columns - set(declared[table])):
                conn.execute(
                    sql.SQL("alter table {} drop column {} cascade").format(
                        sql.Identifier(table), sql.Identifier(column)
                    )
                )
        conn.commit()
    remaining = columns_of(applied_db)
    assert {t: sorted(c) for t, c in remaining.items() if t != "_prisma_migrations"} == {
        t: sorted(c) for t, c in declared.items()
    }
    applied_db.dbt("build")
    result = applied_db.cli("verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_model_reading_an_undeclared_column_is_caught(applied_db, tmp_path):
    """The check above bites: a staging model that reads users.email (undeclared) fails the build."""
    model = ROOT / "models" / "staging" / "app" / "stg_app__users.sql"
    original = model.read_text()
    with applied_db.connect() as conn:
        conn.execute("alter table users drop column email cascade")
        conn.commit()
    try:
        model.write_text(
            original.replace(
                '"lastLoginAt" as last_login_at,', '"lastLoginAt" as last_login_at,\n        email,'
            )
        )
        with pytest.raises(AssertionError, match='column "email" does not exist'):
            applied_db.dbt("run", "--select", "stg_app__users")
    finally:
        model.write_text(original)


# -- nothing we create pins the application's schema -----------------------------------------------------
PINNING_CHANGES = {
    "drop a column the pipeline does not read": ['alter table creator_profiles drop column "youtubeUrl"'],
    "drop a column the pipeline reads": ['alter table collaborations drop column "completedAt"'],
    "retype columns the pipeline reads": [
        'alter table offers alter column "cashCents" type bigint',
        'alter table creator_profiles alter column "minimumFlatFee" type bigint',
        'alter table offers alter column "requirements" type varchar(5000)',
    ],
    "rename a table": ["alter table offers rename to offers_renamed"],
    "rename a column": ['alter table creator_profiles rename column "bio" to "about"'],
    "drop Phase 1's tables": ["drop table audit_logs", "drop table analytics_events"],
}


@pytest.mark.parametrize("change", list(PINNING_CHANGES), ids=list(PINNING_CHANGES))
def test_the_application_can_change_its_tables_with_every_pipeline_object_in_place(marts_db, change):
    """marts_db holds every object the project creates: staging views and their functions, intermediate
    views, the write-back's work tables and apply function, incremental models and marts."""
    with marts_db.connect() as conn:
        conn.execute("set lock_timeout = '5s'")
        for statement in PINNING_CHANGES[change]:
            conn.execute(
                statement
            )  # "cannot drop/alter … because other objects depend on it" would raise here
        conn.rollback()


def test_the_pinning_check_bites_on_a_plain_view(marts_db):
    """The check above, shown failing: with one ordinary view over the same columns (what staging used to
    be), the drops and retypes are refused. (Renames never are: PostgreSQL views follow a rename.)"""
    with marts_db.connect() as conn:
        conn.execute(
            'create view public.plain_view as select c."youtubeUrl", c."minimumFlatFee", o."cashCents", '
            'o.requirements, k."completedAt", a.id from creator_profiles c, offers o, collaborations k, audit_logs a'
        )
        conn.commit()
        for change in (
            "drop a column the pipeline does not read",
            "drop a column the pipeline reads",
            "retype columns the pipeline reads",
            "drop Phase 1's tables",
        ):
            with pytest.raises(
                (psycopg.errors.DependentObjectsStillExist, psycopg.errors.FeatureNotSupported)
            ):
                conn.execute(PINNING_CHANGES[change][0])
            conn.rollback()


def test_after_a_retype_the_pipeline_works_and_after_a_rename_it_names_what_is_missing(built_db):
    with built_db.connect() as conn:
        conn.execute('alter table offers alter column "cashCents" type bigint')
        conn.execute('alter table creator_profiles alter column "minimumFlatFee" type bigint')
        conn.commit()
    # the views built before the retype still answer (the cast absorbs it); the next run rebuilds them
    assert built_db.scalar("select count(*) from csinfra.int_offers_validated") > 0
    built_db.dbt("run")
    assert built_db.cli("verify").returncode == 0
    assert (
        built_db.scalar("""select format_type(atttypid, atttypmod) from pg_attribute
                              where attrelid = 'csinfra.stg_app__offers'::regclass and attname = 'cash_cents'""")
        == "bigint"
    )
    with built_db.connect() as conn:
        conn.execute('alter table creator_profiles rename column "bio" to "about"')
        conn.execute("alter table collaborations rename to collabs")
        conn.commit()
    with pytest.raises(AssertionError) as failure:
        built_db.dbt("run")
    lines = [ln.strip() for ln in str(failure.value).splitlines() if "lacks what the models read" in ln]
    assert lines == [
        (
            "the application's schema lacks what the models read: column public.creator_profiles.bio, "
            "table public.collaborations is missing (has the application changed its schema? "
            "is the app_schema var right?)"
        )
    ]
    backfill = built_db.cli("backfill")
    assert backfill.returncode == 1
    assert (
        backfill.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "csinfra: error: dbt build failed: the application's schema lacks what the models read: "
            "column public.creator_profiles.bio, table public.collaborations is missing"
        )
    )
    with built_db.connect() as conn:
        conn.execute('alter table creator_profiles rename column "about" to "bio"')
        conn.execute("alter table collabs rename to collaborations")
        conn.commit()
    built_db.dbt("run")
    assert built_db.cli("verify").returncode == 0


def test_the_online_path_still_reads_one_creator_through_the_indexes(built_db):
    """The staging functions are inlined: a lookup of one creator is an index scan of the application's tables."""
    with built_db.connect(autocommit=True) as conn:
        cid = conn.execute("select min(id) from creator_profiles").fetchone()[0]
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "explain select * from csinfra.int_creators_derived where creator_profile_id = %s", (cid,)
            )
        )
    assert re.search(r"Index Scan using creator_profiles_pkey on creator_profiles", plan), plan
    assert re.search(r'Index Cond: \("creatorProfileId" = ', plan), plan
    assert "Function Scan on stg_app__" not in plan


# -- destructive demo commands refuse a database that is not ours ----------------------------------------------
def _production_like(db) -> None:
    """The application's schema with one real-looking row, not created by demo data."""
    with db.connect() as conn:
        conn.execute(APP_SCHEMA_SQL.read_text())
        conn.execute(
            """insert into users (id, email, "updatedAt") values ('u_real', 'someone@real.example', now())"""
        )
        conn.commit()


def test_reset_refuses_a_database_demo_data_did_not_create(empty_db):
    _production_like(empty_db)
    result = empty_db.cli("demo-data", "--creators", "10", "--reset")
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("csinfra: error: refusing to drop the application tables")
    assert f"'{empty_db.name}'" in error and f"--confirm-database {empty_db.name}" in error
    assert empty_db.scalar("select count(*) from users where id = 'u_real'") == 1
    wrong = empty_db.cli("demo-data", "--creators", "10", "--reset", "--confirm-database", "production")
    assert wrong.returncode == 1 and "does not name this database" in wrong.stderr
    assert empty_db.scalar("select count(*) from users where id = 'u_real'") == 1
    named = empty_db.cli("demo-data", "--creators", "10", "--reset", "--confirm-database", empty_db.name)
    assert named.returncode == 0, named.stderr
    assert empty_db.scalar("select count(*) from users where id = 'u_real'") == 0


def test_reset_works_on_a_database_demo_data_created(pre_db):
    with pre_db.connect(autocommit=True) as conn:
        conn.execute("update creator_profiles set bio = 'changed by hand'")
    result = pre_db.cli("demo-data", "--creators", "20", "--reset")
    assert result.returncode == 0, result.stderr
    assert pre_db.scalar("select count(*) from creator_profiles") == 20
    assert pre_db.scalar("select count(*) from creator_profiles where bio = 'changed by hand'") == 0


def test_events_only_refuses_application_rows_it_did_not_create(empty_db):
    _production_like(empty_db)
    empty_db.cli("migrate", "up", check=True)
    result = empty_db.cli("demo-data", "--events-only")
    assert result.returncode == 1 and "--events-only" in result.stderr and empty_db.name in result.stderr
    assert empty_db.scalar("select count(*) from audit_logs") == 0
    assert empty_db.scalar("select count(*) from analytics_events") == 0


def test_db_reset_touches_only_the_embedded_server(pre_db):
    result = pre_db.cli("db", "reset", "--yes")
    assert result.returncode == 2 and "only resets the embedded server" in result.stderr
    assert pre_db.scalar("select count(*) from creator_profiles") > 0


def test_demo_data_on_some_application_tables_but_not_all_is_refused(empty_db):
    with empty_db.connect() as conn:
        conn.execute("create table users (id text primary key)")
        conn.commit()
    result = empty_db.cli("demo-data", "--creators", "5")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("csinfra: error: schema public has some application tables")
    )
    assert "Traceback" not in result.stderr
    with psycopg.connect(empty_db.url) as conn:
        assert conn.execute("select count(*) from users").fetchone()[0] == 0


def test_a_database_error_no_command_explains_is_still_one_line(applied_db):
    """restore-archive while a session holds audit_logs: the lock timeout is a psycopg error that reaches the
    CLI's top level; it prints one line, never a traceback."""
    down = applied_db.cli("migrate", "down", check=True)
    archive_id = re.search(r" as (r\w+); restore with", down.stdout).group(1)
    applied_db.cli("migrate", "up", check=True)
    holder = applied_db.connect()
    holder.execute("lock table audit_logs in access exclusive mode")
    try:
        result = applied_db.cli("migrate", "restore-archive", archive_id, "--lock-timeout", "200ms")
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("csinfra: error: the database refused: ") and "LockNotAvailable" in lines[0]
