"""`csinfra migrate up/down --dry-run` prints exactly the statements a real run executes, and changes nothing.

For each path a step can take (apply; resolve a failed ORM attempt and apply; adopt what the ORM applied;
repair the ORM's ledger; roll back with an archive; roll back with --discard-data):

* the database (schema and data, every schema: pg_dump) is the same after the dry runs as before;
* what `migrate … --dry-run` prints is, statement for statement, the transcript of a real run of the same
  step on the same database: every statement the real run executed, in order, with the same text (values
  known only as it runs are bind parameters $1, $2, … in both);
* everything else the real run sent to the server, the dry run sent too (the reads that decide what to
  do): nothing is executed behind the printed statements' back.
"""

from __future__ import annotations

import os
import re
import subprocess

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus

from creatorstays_infra.ops import embedded
from creatorstays_infra.ops.migrations import MIGRATIONS_DIR, Options, Runner, load_migrations, sha256_hex

NAME = "20260203_infrastructure_phase1"
APP_FILE = b"-- the application repository's copy\n" + (MIGRATIONS_DIR / NAME / "migration.sql").read_bytes()
PROBE = re.compile(r"csinfra_probe_[0-9a-f]+")
ARCHIVE_ID = re.compile(r"r\d{8}T\d{6}Z_[0-9a-f]{6}")


def database_dump(db) -> str:
    """`pg_dump` of the whole database, schema and data."""
    env = dict(os.environ)
    env.update(db.target.libpq_env())
    result = subprocess.run(
        [embedded.pg_tool("pg_dump"), "--no-owner", "--no-privileges"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # pg_dump 17+ prints a random \restrict key per run
    return "\n".join(
        ln for ln in result.stdout.splitlines() if not ln.startswith(("\\restrict", "\\unrestrict"))
    )


def recording_cursor(sent: list[str]) -> type[psycopg.Cursor]:
    """A cursor class recording every query run through the connection's own cursors (the runner's reads;
    its statements go through `Runner._run`, on a raw cursor, and into the transcript)."""

    class Recording(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            text = query.as_string(self.connection) if isinstance(query, sql.Composable) else str(query)
            sent.append(PROBE.sub("csinfra_probe_*", f"{text} {params!r}"))
            return super().execute(query, params, **kwargs)

    return Recording


def run(db, direction: str, *, dry_run: bool, **options) -> tuple[str, list[str], list]:
    """The steps as `csinfra migrate <direction>` runs them (lock, each migration, unlock), in this process:
    the runner's transcript, the other queries sent, the step results."""
    transcript: list[str] = []
    sent: list[str] = []
    with db.connect() as conn:
        conn.cursor_factory = recording_cursor(sent)
        runner = Runner(
            conn, Options(app_schema="public", dry_run=dry_run, **options), transcript=transcript.append
        )
        steps = load_migrations() if direction == "up" else list(reversed(load_migrations()))
        runner.acquire()
        try:
            results = [runner.up(m) if direction == "up" else runner.down(m) for m in steps]
        finally:
            runner.release()
        # nothing left in a transaction (a dry run has nothing to commit)
        assert conn.info.transaction_status == TransactionStatus.IDLE
    return ARCHIVE_ID.sub("<archive id>", "".join(transcript)), sent, results


# -- the states each path starts from ------------------------------------------------------------------------
def orm_deploy(db, script: bytes, *, fail: bool = False) -> None:
    """What `prisma migrate deploy` writes for the migration: its row, the script, the row finished (or left
    failed)."""
    with db.connect(autocommit=True) as conn:
        row_id = conn.execute(
            "insert into _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) "
            "values (gen_random_uuid()::text, %s, %s, now(), 0) returning id",
            (sha256_hex(script), NAME),
        ).fetchone()[0]
        if fail:
            conn.execute("update _prisma_migrations set logs = 'lock timeout' where id = %s", (row_id,))
            return
        conn.execute(script.decode())
        conn.execute(
            "update _prisma_migrations set finished_at = now(), applied_steps_count = 1 where id = %s",
            (row_id,),
        )


def _failed_orm_attempt(db) -> None:
    orm_deploy(db, APP_FILE, fail=True)


def _applied_by_the_orm(db) -> None:
    orm_deploy(db, APP_FILE)


def _orm_row_deleted(db) -> None:
    with db.connect(autocommit=True) as conn:
        conn.execute("delete from _prisma_migrations where migration_name = %s", (NAME,))


CASES = {
    # id: (database, prepare, direction, CLI flags, Options, the real run's action, statements it must hold)
    "up": ("pre_db", None, "up", [], {}, "applied", ["migration.sql", "extras.sql", '"_prisma_migrations"']),
    "up after a failed ORM attempt": (
        "pre_db",
        _failed_orm_attempt,
        "up",
        [],
        {},
        "applied",
        ["set rolled_back_at = now()", "migration.sql"],
    ),
    "adopt what the ORM applied": (
        "pre_db",
        _applied_by_the_orm,
        "up",
        [],
        {},
        "adopted",
        ["extras.sql", "'adopt'"],
    ),
    "repair the ORM's ledger": (
        "applied_db",
        _orm_row_deleted,
        "up",
        [],
        {},
        "already applied",
        ['insert into "public"."_prisma_migrations"'],
    ),
    "down": (
        "applied_db",
        None,
        "down",
        [],
        {},
        "rolled back",
        ["lock table", "create table", "rollback_archives", "down.sql", 'delete from "public"."_prisma'],
    ),
    "down --discard-data": (
        "applied_db",
        None,
        "down",
        ["--discard-data"],
        {"discard_data": True},
        "rolled back",
        ["select count(*)", "down.sql"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_dry_run_prints_exactly_what_the_run_executes_and_changes_nothing(case, request):
    fixture, prepare, direction, flags, options, action, needles = CASES[case]
    db = request.getfixturevalue(fixture)
    if prepare:
        prepare(db)
    before = database_dump(db)

    printed = db.cli("migrate", direction, "--dry-run", *flags, check=True).stdout
    dry_transcript, dry_sent, dry_results = run(db, direction, dry_run=True, **options)
    assert [r.action for r in dry_results] == ["dry run"]
    assert database_dump(db) == before, "the dry run changed the database"

    real_transcript, real_sent, real_results = run(db, direction, dry_run=False, **options)
    assert [r.action for r in real_results] == [action]
    assert database_dump(db) != before

    header, _, statements = printed.partition("\n")
    assert header.startswith("-- ") and "dry run: nothing was executed" in header
    statements = ARCHIVE_ID.sub("<archive id>", statements)
    # what the CLI printed is the runner's dry run, and that is what the real run executed
    assert statements == dry_transcript
    assert statements == real_transcript
    # and the real run sent nothing else the dry run did not send too (the reads)
    assert real_sent == dry_sent
    for needle in [
        "select pg_try_advisory_lock(",
        "BEGIN;\n",
        "select set_config('lock_timeout', '3s', true), set_config('statement_timeout', '5min', true);",
        'set local search_path to "public";',
        'insert into "csinfra_meta"."migration_log"',
        "COMMIT;\n",
        "select pg_advisory_unlock(",
        *needles,
    ]:
        assert needle in statements, needle
