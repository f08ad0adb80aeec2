"""Fixtures: a real PostgreSQL server (DATABASE_URL / PG* / the embedded one) and one database per test,
cloned from templates built once per session."""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import psycopg
import pytest
from psycopg import sql

from creatorstays_infra import settings
from creatorstays_infra.ops import database, demo, embedded, grants
from creatorstays_infra.ops.dbt import LOAD_AND_RUN, run_dbt
from creatorstays_infra.ops.migrations import Options, Runner, load_migrations

ROOT = Path(__file__).resolve().parents[2]
TEST_CREATORS = int(os.environ.get("CSINFRA_TEST_CREATORS", "300"))

# pytest-xdist (make test runs two workers): each worker is a session of its own, on the same server and in
# the same checkout. What workers would otherwise share is made theirs: the template databases (a random name
# each), dbt's target path and log path (dbt's own DBT_TARGET_PATH and DBT_LOG_PATH, which every dbt and
# csinfra process the tests start inherits; relative, so a scratch copy of the project keeps its own) and the
# roles below (their passwords are set per session).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if WORKER:
    os.environ["DBT_TARGET_PATH"] = f"target/pytest-{WORKER}"
    os.environ["DBT_LOG_PATH"] = f"logs/pytest-{WORKER}"
# where dbt and csinfra write run_results.json, manifest.json and csinfra's dbt logs
TARGET = settings.dbt_target_dir()
# The tests prove what connections do, not how fast a loaded machine opens them: a CI machine once stalled a
# test's first connection past the product's 10 s connect_timeout while the other worker ran Spark. Every
# connection the tests open, in this process and in every csinfra and dbt process they start, waits up to 60 s
# (the tests of the timeout itself set their own).
os.environ.setdefault("PGCONNECT_TIMEOUT", "60")

# The three roles of a real deployment (README "Security"), cluster-wide, with passwords made per session:
# the migration owner builds every template (migrate, backfill); the application role runs the online
# tests; the analyst role reads the marts.
_SUFFIX = f"_{WORKER}" if WORKER else ""
ROLES = {
    "owner": f"csinfra_test_owner{_SUFFIX}",
    "app": f"csinfra_test_app{_SUFFIX}",
    "analyst": f"csinfra_test_analyst{_SUFFIX}",
}
ROLE_PASSWORDS: dict[str, str] = {}
ROLE_ENV = {"CSINFRA_APP_ROLE": ROLES["app"], "CSINFRA_ANALYST_ROLE": ROLES["analyst"]}


@dataclass
class Db:
    """One test database."""

    name: str
    target: database.Target

    @property
    def url(self) -> str:
        p = self.target.effective()
        return psycopg.conninfo.make_conninfo("", **p)

    def connect(self, **kwargs) -> psycopg.Connection:
        return self.target.connect(**kwargs)

    def as_role(self, kind: str) -> Db:
        """This database as the owner, app or analyst role (not superuser)."""
        return Db(name=self.name, target=self.target.as_user(ROLES[kind], ROLE_PASSWORDS[kind]))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in database.SELECTING_PG_VARS}
        env["DATABASE_URL"] = self.url
        env.update(extra)
        return env

    def cli(
        self, *args: str, check: bool = False, env: dict | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        """Run `csinfra` against this database in a separate process (as a user would)."""
        result = subprocess.run(
            [sys.executable, "-m", "creatorstays_infra", *args],
            check=False,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"csinfra {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def dump_schema(self, schema: str = "public") -> str:
        """`pg_dump --schema-only` of one schema, with the wheel's pg_dump (matches the server version)."""
        env = dict(os.environ)
        env.update(self.target.libpq_env())
        result = subprocess.run(
            [
                embedded.pg_tool("pg_dump"),
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                f"--schema={schema}",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        # pg_dump 17+ prints a random \restrict key per run; it is not part of the schema
        return "\n".join(
            ln for ln in result.stdout.splitlines() if not ln.startswith(("\\restrict", "\\unrestrict"))
        )

    def dbt(
        self, *args: str, vars_: dict | None = None, app_schema: str = "public", env: dict | None = None
    ) -> str:
        """Run dbt against this database; returns its log, raises with it on failure."""
        log = TARGET / f"pytest_dbt_{self.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = run_dbt(self.target, app_schema, list(args), vars_, log, env=env)
        rc = proc.wait(timeout=600)
        text = log.read_text()
        log.unlink(missing_ok=True)
        if rc != 0:
            raise AssertionError(f"dbt {' '.join(args)} failed ({rc}):\n{text[-12000:]}")
        return text

    def backfill(self, **vars_) -> str:
        return self.dbt("build", *LOAD_AND_RUN, "--selector", "backfill", vars_=vars_ or None)

    def scalar(self, query, params=None):
        with self.connect(autocommit=True) as conn:
            row = conn.execute(query, params).fetchone()
            return None if row is None else row[0]


@pytest.fixture(scope="session")
def server() -> database.Target:
    target = database.resolve().with_dbname("postgres")
    with target.connect(autocommit=True) as conn:
        for kind, role in ROLES.items():
            password = secrets.token_urlsafe(18)
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            conn.execute(
                sql.SQL("{} role {} login nosuperuser nocreatedb nocreaterole password {}").format(
                    sql.SQL("alter" if exists else "create"), sql.Identifier(role), sql.Literal(password)
                )
            )
            ROLE_PASSWORDS[kind] = password
    return target


def _create_db(server: database.Target, name: str, template: str | None = None) -> Db:
    """A database owned by the migration owner (as the application's database is)."""
    with server.connect(autocommit=True) as conn:
        query = sql.SQL("create database {} owner {}").format(
            sql.Identifier(name), sql.Identifier(ROLES["owner"])
        )
        if template:
            query = query + sql.SQL(" template {}").format(sql.Identifier(template))
        conn.execute(query)
    return Db(name=name, target=server.with_dbname(name))


def _grant_like_the_application(db: Db) -> None:
    """What the application team's setup gives its role: DML on every table of its schema, now and later."""
    app = sql.Identifier(ROLES["app"])
    with db.as_role("owner").connect() as conn:
        conn.execute(
            sql.SQL("grant select, insert, update, delete on all tables in schema public to {}").format(app)
        )
        conn.execute(
            sql.SQL(
                "alter default privileges in schema public grant select, insert, update, delete on tables to {}"
            ).format(app)
        )


def _grant_least_privilege(db: Db) -> None:
    """`csinfra grant --apply`, as the owner."""
    with db.as_role("owner").connect() as conn:
        stmts, _ = grants.plan(conn, "public", "csinfra", ROLES["app"], ROLES["analyst"])
        grants.apply(conn, stmts)


def _drop_db(server: database.Target, name: str) -> None:
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    _TEST_DBS.discard(name)


# Test databases are named per session (a random token, so sessions sharing a server never meet) and reused
# from one test to the next: the lowest number not in use. dbt's partial parse holds only while the profile's
# connection (database name included) is the same as the last run's, so a new name per test made dbt parse the
# whole project again (~5 s) in almost every test; with the names reused, a test's dbt runs parse only when
# its vars or its role differ from the previous run's.
_SESSION = uuid.uuid4().hex[:8]
_TEST_DBS: set[str] = set()


def _test_db_name() -> str:
    n = 0
    while f"csinfra_test_{_SESSION}_{n}" in _TEST_DBS:
        n += 1
    name = f"csinfra_test_{_SESSION}_{n}"
    _TEST_DBS.add(name)
    return name


@pytest.fixture(scope="session")
def template_pre(server):
    """Application tables with demo data, Phase 1 not applied."""
    name = f"csinfra_tpl_pre_{uuid.uuid4().hex[:8]}"
    db = _create_db(server, name)
    with db.as_role("owner").connect() as conn:  # the application's tables belong to the migration owner
        demo.generate(conn, "public", creators=TEST_CREATORS, seed=7)
    _grant_like_the_application(db)
    yield name
    _drop_db(server, name)


@pytest.fixture(scope="session")
def template_applied(server, template_pre):
    """The pre-Phase-1 template with the migration applied."""
    name = f"csinfra_tpl_up_{uuid.uuid4().hex[:8]}"
    db = _create_db(server, name, template=template_pre)
    with db.as_role("owner").connect() as conn:
        runner = Runner(conn, Options(app_schema="public"))
        for m in load_migrations():
            runner.up(m)
    yield name
    _drop_db(server, name)


@pytest.fixture(scope="session")
def template_built(server, template_applied):
    """Phase 1 applied and backfilled: dbt's views and rule functions exist, drift is 0."""
    name = f"csinfra_tpl_built_{uuid.uuid4().hex[:8]}"
    db = _create_db(server, name, template=template_applied)
    # the catalogs (seeds), then every model: the views, the rule functions and the backfill
    db.as_role("owner").dbt("build", *LOAD_AND_RUN, env=ROLE_ENV)
    _grant_least_privilege(db)
    yield name
    _drop_db(server, name)


@pytest.fixture(scope="session")
def template_marts(server, template_applied):
    """Phase 1 applied, the demo's audit and analytics events written, then every model built
    (backfill, incremental event models and marts)."""
    name = f"csinfra_tpl_marts_{uuid.uuid4().hex[:8]}"
    db = _create_db(server, name, template=template_applied)
    with db.as_role("owner").connect() as conn:
        demo.generate_events(conn, "public", seed=7)
    db.as_role("owner").dbt("build", *LOAD_AND_RUN, env=ROLE_ENV)
    _grant_least_privilege(db)
    yield name
    _drop_db(server, name)


def _clone(server, template: str):
    name = _test_db_name()
    db = _create_db(server, name, template=template)
    try:
        yield db
    finally:
        _drop_db(server, name)


@pytest.fixture
def pre_db(server, template_pre):
    """A database of its own: demo application tables, Phase 1 not applied."""
    yield from _clone(server, template_pre)


@pytest.fixture
def applied_db(server, template_applied):
    """A database of its own with Phase 1 applied (no backfill yet)."""
    yield from _clone(server, template_applied)


@pytest.fixture
def built_db(server, template_built):
    """A database of its own, migrated and backfilled (dbt views and rule functions installed)."""
    yield from _clone(server, template_built)


@pytest.fixture
def marts_db(server, template_marts):
    """A database of its own with events, backfill and marts built."""
    yield from _clone(server, template_marts)


@pytest.fixture
def make_db(server):
    """Factory for extra databases cloned from a template (all dropped at the end of the test)."""
    names: list[str] = []

    def make(template: str) -> Db:
        name = _test_db_name()
        names.append(name)
        return _create_db(server, name, template=template)

    yield make
    for name in names:
        _drop_db(server, name)


@pytest.fixture
def empty_db(server):
    name = _test_db_name()
    db = _create_db(server, name)
    try:
        yield db
    finally:
        _drop_db(server, name)


PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "models", "macros", "seeds", "tests/dbt")


def copy_project(dest: Path) -> Path:
    """A scratch copy of the dbt project (point CSINFRA_PROJECT_DIR at it), to change a catalog or a rule
    without touching the repository's."""
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("target", "logs"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def rewrite_seed(project: Path, name: str, change) -> None:
    """Rewrite seeds/<name>.csv of a project copy, calling change(row) on every row (a dict of text)."""
    path = project / "seeds" / f"{name}.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    for row in rows:
        change(row)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# -- hypothesis: every property's example count, named here, scaled by the profile ---------------------------
# HYPOTHESIS_PROFILE=ci (default, what make test runs) or thorough (5 x the examples, for a long run).
PROPERTY_EXAMPLES = {
    "online_path_equals_the_rules": 150,  # one creator per example, about 25 ms each
    "online_and_batch_write_identical_rows": 10,  # 20-40 creators per example and one backfill (~3 s) each
    "offer_validation_equals_the_sql_model": 300,  # one offer per example
}
_PROFILE_SCALE = {"ci": 1, "thorough": 5}
hypothesis.settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow],
    print_blob=True,
)
hypothesis.settings.register_profile("thorough", parent=hypothesis.settings.get_profile("ci"))
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if _PROFILE not in _PROFILE_SCALE:
    raise pytest.UsageError(f"HYPOTHESIS_PROFILE must be one of {sorted(_PROFILE_SCALE)}, not {_PROFILE!r}")
hypothesis.settings.load_profile(_PROFILE)


# batches of 20+ creators per example on purpose: each example costs a backfill, so fewer, larger ones cover more
_LARGE_EXAMPLES = {"online_and_batch_write_identical_rows"}


def property_settings(name: str) -> hypothesis.settings:
    """The settings of the property `name`: its example count (PROPERTY_EXAMPLES, scaled by the profile)."""
    checks = list(hypothesis.settings.default.suppress_health_check)
    if name in _LARGE_EXAMPLES:
        checks.append(hypothesis.HealthCheck.large_base_example)
    return hypothesis.settings(
        max_examples=PROPERTY_EXAMPLES[name] * _PROFILE_SCALE[_PROFILE], suppress_health_check=checks
    )


# The longest test files first: make test's two workers take one file at a time (--dist loadfile), in this
# order, so the longest ones start at once rather than last (the Spark module alone is a quarter of the suite).
_LONGEST_FIRST = ("test_spark.py", "test_marts.py", "test_backfill_safety.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order
