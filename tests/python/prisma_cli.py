"""The application's own ORM CLI (Prisma 6.19, prisma/), run for real against a test database.

`make test` installs it first (`make prisma`: `npm ci` in prisma/, from the npm registry). It runs
offline: the WebAssembly schema engine over @prisma/adapter-pg, with the shims prisma.config.ts
explains. A missing install fails the test that needs it, with the command that fixes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg

from conftest import ROOT

PRISMA_DIR = ROOT / "prisma"
SCHEMA = PRISMA_DIR / "schema.prisma"
CONFIG = PRISMA_DIR / "prisma.config.ts"
MIGRATION = "20260203_infrastructure_phase1"
MIGRATION_SQL = ROOT / "scripts" / "migrations" / MIGRATION / "migration.sql"


def prisma_bin() -> str:
    path = PRISMA_DIR / "node_modules" / ".bin" / "prisma"
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `make prisma` (npm ci in prisma/) first")
    return str(path)


def run(db_url: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """`prisma <args>` with DATABASE_URL set to the test database (a postgresql:// URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(DATABASE_URL=db_url, PRISMA_HIDE_UPDATE_MESSAGE="1", CHECKPOINT_DISABLE="1", NO_COLOR="1")
    result = subprocess.run(
        [prisma_bin(), *args, "--config", str(CONFIG)],
        cwd=PRISMA_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"prisma {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def url(db) -> str:
    """The test database as a postgresql:// URL (what DATABASE_URL holds for Prisma)."""
    # node-postgres reads no passfile given in a URL: the password goes in the URL itself
    return db.target.url(show_password=True)


def pull(db, tmp_path: Path) -> Path:
    """The datamodel Prisma introspects from the database (`prisma db pull --print`), as a file."""
    out = run(url(db), "db", "pull", "--print", "--schema", str(SCHEMA)).stdout
    start = out.find("generator client")
    assert start >= 0, out
    path = tmp_path / f"pulled_{db.name}.prisma"
    path.write_text(out[start:])
    return path


def diff(from_schema: Path, to_schema: Path, db) -> subprocess.CompletedProcess:
    """`prisma migrate diff --exit-code` between two datamodels: exit 0 when the schemas agree, 2 when not."""
    return run(
        url(db),
        "migrate",
        "diff",
        "--from-schema-datamodel",
        str(from_schema),
        "--to-schema-datamodel",
        str(to_schema),
        "--script",
        "--exit-code",
        check=False,
    )


def earlier_migrations(db) -> list[str]:
    with psycopg.connect(db.url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select migration_name from _prisma_migrations where migration_name <> %s order by migration_name",
                (MIGRATION,),
            )
        ]


def app_repository(tmp_path: Path, db, phase1_file: bytes | None = None) -> Path:
    """A copy of the application repository's prisma/ folder: schema.prisma and migrations/, with the
    migrations the database's ledger records before Phase 1 (their content is not replayed by
    deploy/status, which skip a migration whose row is finished) and Phase 1's migration.sql
    (`phase1_file`, by default ours byte for byte)."""
    repo = tmp_path / "app"
    migrations = repo / "migrations"
    migrations.mkdir(parents=True)
    shutil.copy(SCHEMA, repo / "schema.prisma")
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name in earlier_migrations(db):
        (migrations / name).mkdir()
        (migrations / name / "migration.sql").write_text(f"-- {name}: applied before Phase 1\n")
    (migrations / MIGRATION).mkdir()
    (migrations / MIGRATION / "migration.sql").write_bytes(
        phase1_file if phase1_file is not None else MIGRATION_SQL.read_bytes()
    )
    return repo / "schema.prisma"


def status(db, schema: Path) -> subprocess.CompletedProcess:
    return run(url(db), "migrate", "status", "--schema", str(schema), check=False)


def deploy(db, schema: Path) -> subprocess.CompletedProcess:
    return run(url(db), "migrate", "deploy", "--schema", str(schema), check=False)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_code(result: subprocess.CompletedProcess) -> str | None:
    match = re.search(r"\b(P\d{4})\b", result.stdout + result.stderr)
    return match.group(1) if match else None
