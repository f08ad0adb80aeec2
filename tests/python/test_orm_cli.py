"""The application's own ORM CLI (Prisma 6.19, run offline: see prisma/prisma.config.ts) against the result.

What it needed: Node.js and npm on the machine, `npm ci` of prisma/ (prisma, @prisma/adapter-pg, pg; the
Makefile's `prisma` target, part of `make test`), and the shims in prisma.config.ts. `prisma migrate dev`
is not run: with the WebAssembly engine it fails on its shadow database ("PostgreSQL shadow DB must be
provided through an external factory"); what it would compare (the checksum of the application's file)
is proven below against the checksum `prisma migrate deploy` itself writes.
"""

from __future__ import annotations

import hashlib

import prisma_cli as prisma
from prisma_cli import MIGRATION, MIGRATION_SQL


def test_migration_sql_is_byte_for_byte_what_prisma_generates(pre_db, tmp_path):
    """`prisma migrate diff` from the live pre-Phase-1 database's datamodel to prisma/schema.prisma generates
    exactly the migration.sql the application repository ships (Prisma writes the file with one newline
    less than it prints)."""
    before = prisma.pull(pre_db, tmp_path)
    generated = prisma.run(
        prisma.url(pre_db),
        "migrate",
        "diff",
        "--from-schema-datamodel",
        str(before),
        "--to-schema-datamodel",
        str(prisma.SCHEMA),
        "--script",
    ).stdout
    generated = generated[generated.index("-- CreateEnum") :]
    assert generated.endswith(";\n\n")
    assert generated[:-1].encode() == MIGRATION_SQL.read_bytes()


def test_after_migrate_up_the_orm_finds_exactly_its_datamodel(applied_db, tmp_path):
    """The ORM introspects the database after `csinfra migrate up` and finds no difference from the datamodel
    (csinfra's triggers, functions and CHECK are invisible to it); a NULL-able actorId would be drift."""
    clean = prisma.diff(prisma.pull(applied_db, tmp_path), prisma.SCHEMA, applied_db)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    with applied_db.connect(autocommit=True) as conn:
        conn.execute('alter table audit_logs alter column "actorId" drop not null')
    drift = prisma.diff(prisma.pull(applied_db, tmp_path), prisma.SCHEMA, applied_db)
    assert drift.returncode == 2
    assert 'ALTER COLUMN "actorId" SET NOT NULL' in drift.stdout


def test_prisma_sees_csinfras_migration_as_applied(applied_db, tmp_path):
    schema = prisma.app_repository(tmp_path, applied_db)
    status = prisma.status(applied_db, schema)
    assert status.returncode == 0 and "Database schema is up to date!" in status.stdout, (
        status.stdout + status.stderr
    )
    deploy = prisma.deploy(applied_db, schema)
    assert deploy.returncode == 0 and "No pending migrations to apply." in deploy.stdout, (
        deploy.stdout + deploy.stderr
    )


def test_prisma_applies_phase1_from_the_apps_own_file_and_csinfra_adopts_it(pre_db, tmp_path):
    app_file = b"-- Phase 1 (application repository)\n" + MIGRATION_SQL.read_bytes()
    schema = prisma.app_repository(tmp_path, pre_db, app_file)
    deploy = prisma.deploy(pre_db, schema)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    # Prisma's checksum is the sha256 of the file's bytes: what csinfra computes for --prisma-migration-file
    assert (
        pre_db.scalar("select checksum from _prisma_migrations where migration_name = %s", (MIGRATION,))
        == hashlib.sha256(app_file).hexdigest()
    )
    status = pre_db.cli("migrate", "status")
    assert status.returncode == 1 and "applied by the ORM" in status.stdout
    up = pre_db.cli("migrate", "up")
    assert up.returncode == 0 and "adopted" in up.stdout, up.stdout + up.stderr
    assert (
        pre_db.scalar(
            "select count(*) from pg_trigger where tgname in "
            "('offers_guard_terms_and_history', 'audit_logs_no_update_delete')"
        )
        == 2
    )
    after = prisma.status(pre_db, schema)
    assert after.returncode == 0 and "Database schema is up to date!" in after.stdout
    # the way back: the ORM sees Phase 1 as pending (not failed), and deploys it again without complaint
    pre_db.cli("migrate", "down", check=True)
    pending = prisma.status(pre_db, schema)
    assert (
        pending.returncode == 1
        and "have not yet been applied" in pending.stdout
        and MIGRATION in pending.stdout
    )
    assert prisma.error_code(pending) is None, pending.stdout
    again = prisma.deploy(pre_db, schema)
    assert again.returncode == 0 and MIGRATION in again.stdout, again.stdout + again.stderr


def test_a_failed_prisma_attempt_blocks_deploy_until_csinfra_resolves_it(pre_db, tmp_path):
    broken = MIGRATION_SQL.read_bytes() + b"\nSELECT 1 / 0;\n"
    schema = prisma.app_repository(tmp_path, pre_db, broken)
    first = prisma.deploy(pre_db, schema)
    assert first.returncode == 1 and "division by zero" in first.stderr, first.stdout + first.stderr
    assert (
        pre_db.scalar(
            "select count(*) from _prisma_migrations where migration_name = %s "
            "and finished_at is null and rolled_back_at is null",
            (MIGRATION,),
        )
        == 1
    )
    blocked = prisma.deploy(pre_db, schema)
    assert blocked.returncode == 1 and prisma.error_code(blocked) == "P3009", blocked.stdout + blocked.stderr
    # the failed attempt ran in one transaction: nothing of it is left (the shim sends the script whole)
    assert not pre_db.scalar("select to_regclass('public.audit_logs') is not null")
    status = pre_db.cli("migrate", "status")
    assert status.returncode == 1 and "P3009" in status.stdout
    up = pre_db.cli("migrate", "up")
    assert up.returncode == 0 and "marked rolled back" in up.stdout, up.stdout + up.stderr
    # the application's repository gets the fixed file: Prisma sees everything applied, deploys nothing
    fixed = prisma.app_repository(tmp_path / "fixed", pre_db)
    deploy = prisma.deploy(pre_db, fixed)
    assert deploy.returncode == 0 and "No pending migrations to apply." in deploy.stdout, (
        deploy.stdout + deploy.stderr
    )
    assert prisma.status(pre_db, fixed).returncode == 0


def test_the_orms_own_migration_can_change_a_table_after_dbt_run(built_db, tmp_path):
    """An application migration dropping and retyping columns, deployed by the ORM while every pipeline
    object is in place."""
    schema = prisma.app_repository(tmp_path, built_db)
    later = schema.parent / "migrations" / "20261201_drop_youtube_retype_fee"
    later.mkdir()
    (later / "migration.sql").write_text(
        '-- AlterTable\nALTER TABLE "creator_profiles" DROP COLUMN "youtubeUrl",\n'
        'ALTER COLUMN "minimumFlatFee" SET DATA TYPE BIGINT;\n'
    )
    deploy = prisma.deploy(built_db, schema)
    assert deploy.returncode == 0 and "20261201_drop_youtube_retype_fee" in deploy.stdout, (
        deploy.stdout + deploy.stderr
    )
    built_db.dbt("run")
    assert built_db.cli("verify").returncode == 0
