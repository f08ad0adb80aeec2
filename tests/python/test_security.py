"""Security: the embedded server lets no one in, no value reaches SQL unquoted or unchecked, and the three
roles of a deployment (migration owner, application, analyst) hold exactly what they need.

Expectations come from outside the code under test: the server's own answers (pg_hba_file_rules,
pg_stat_statements, permission errors), the OS (file modes, /proc), and the hostile values we feed in."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import ROLE_ENV, ROLES, copy_project, rewrite_seed
from creatorstays_infra import (
    CsinfraError,
    ValidationError,
    analytics_stats,
    log_analytics_event,
    log_audit_event,
    reset_analytics_stats,
    timeouts,
    update_creator_readiness,
)
from creatorstays_infra.errors import ConfigurationError, DatabaseError
from creatorstays_infra.ops import database as database_module
from creatorstays_infra.ops import embedded
from creatorstays_infra.ops.dbt import LOAD_AND_RUN
from creatorstays_infra.ops.marts import MART_MODELS
from creatorstays_infra.ops.migrations import Options

ROOT = Path(__file__).resolve().parents[2]
INJECTION = "5s', true); drop table offers; --"
# a statement that IS the payload (pg_stat_statements keeps each statement of a multi-statement string apart;
# the payload may legitimately appear inside a string literal of a view's text)
DROP_OFFERS = r"^\s*drop\s+table\s+offers"
AS_ROOT = os.geteuid() == 0


def csinfra(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "creatorstays_infra", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def own_server_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """An environment that selects the embedded server kept in `state_dir` (no PG*, no DATABASE_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["CSINFRA_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env


def modes_of_parents(path: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mode for p in path.parents}


# -- the embedded server, locked down ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked_server():
    """A server of its own under a fresh state directory, started with a secret in the caller's environment."""
    parent = Path(tempfile.mkdtemp(prefix="csinfra-sec-"))
    parent.chmod(0o711)  # ours (the test's): the server's OS user may pass through it
    state = parent / "state"
    canary = "canary-" + os.urandom(8).hex()
    watched = [state.parent, embedded.bin_dir()]
    before = {str(w): modes_of_parents(w / "x") for w in watched}
    # first use from two processes at once (two test workers, two commands on a new machine): one initialises
    # and starts the server, the other waits for it
    env = own_server_env(state, CSINFRA_CANARY=canary)
    racing = [
        subprocess.Popen(
            [sys.executable, "-m", "creatorstays_infra", "db", "start"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    outputs = []
    for proc in racing:
        out, err = proc.communicate(timeout=300)
        outputs.append((proc.returncode, out, err))
    started = outputs[0]
    assert started[0] == 0, started[2]
    info = embedded.EmbeddedServer(state).info()
    yield {
        "state": state,
        "info": info,
        "canary": canary,
        "before": before,
        "watched": watched,
        "url": started[1].strip(),
        "racing": outputs,
    }
    csinfra("db", "stop", env=own_server_env(state))
    subprocess.run(["rm", "-rf", str(parent)], check=False)


def _connect(info: embedded.ServerInfo, **kwargs) -> psycopg.Connection:
    return psycopg.connect(
        host=embedded.HOST,
        port=info.port,
        user=embedded.SUPERUSER,
        dbname="postgres",
        connect_timeout=10,
        autocommit=True,
        **kwargs,
    )


def test_two_first_starts_at_once_both_succeed_with_one_server(locked_server):
    """Two `csinfra db start` at once on a state directory that does not exist yet: both succeed and print the
    same server (the second found the directory made under its feet and waited for the first's initdb)."""
    (rc_a, url_a, err_a), (rc_b, url_b, err_b) = locked_server["racing"]
    assert (rc_a, rc_b) == (0, 0), err_a + err_b
    assert url_a.strip() == url_b.strip() == locked_server["url"]
    assert f"port={locked_server['info'].port}" in url_a or f":{locked_server['info'].port}/" in url_a


def test_the_secret_is_the_callers_alone_and_every_rule_wants_a_password(locked_server):
    info = locked_server["info"]
    mode = info.passfile.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.geteuid()
    with _connect(info, passfile=str(info.passfile)) as conn:
        rules = conn.execute(
            "select type, auth_method, address from pg_hba_file_rules where error is null"
        ).fetchall()
        sockets = conn.execute("show unix_socket_directories").fetchone()[0]
        listen = conn.execute("show listen_addresses").fetchone()[0]
    assert rules == [("host", "scram-sha-256", "127.0.0.1")]
    assert sockets == "" and listen == "127.0.0.1"


def test_no_password_and_a_wrong_password_are_refused(locked_server):
    info = locked_server["info"]
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _connect(info, passfile=os.devnull)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(info, password="not-the-secret", passfile=os.devnull)


def test_another_os_user_is_refused(locked_server):
    info = locked_server["info"]
    psql = embedded.pg_tool("psql")
    env = {"PATH": "/usr/bin:/bin", "PGPASSFILE": str(info.passfile), "PGCONNECT_TIMEOUT": "10"}
    conninfo = f"host={embedded.HOST} port={info.port} user={embedded.SUPERUSER} dbname=postgres"
    if AS_ROOT:
        # nobody knows the port and where the secret is, and still cannot read it or connect
        result = subprocess.run(
            [psql, conninfo, "-Atc", "select 1"],
            user="nobody",
            group="nogroup",
            extra_groups=[],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0
        assert "no password supplied" in result.stderr or "password authentication failed" in result.stderr, (
            result.stderr
        )
        reading = subprocess.run(
            ["cat", str(info.passfile)],
            user="nobody",
            group="nogroup",
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert reading.returncode != 0 and "Permission denied" in reading.stderr
    else:
        # the server runs as us: what keeps others out is the file mode (no read for group or others)
        assert stat.S_IMODE(info.passfile.stat().st_mode) & 0o077 == 0
        result = subprocess.run(
            [psql, conninfo, "-Atc", "select 1"],
            env={**env, "PGPASSFILE": os.devnull},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0 and "no password supplied" in result.stderr


def test_the_server_cannot_read_the_callers_environment(locked_server):
    info, canary = locked_server["info"], locked_server["canary"]
    with _connect(info, passfile=str(info.passfile)) as conn:
        conn.execute("create temp table seen (line text)")
        conn.execute("copy seen from program 'env'")  # what a superuser's COPY … PROGRAM would see
        lines = [r[0] for r in conn.execute("select line from seen").fetchall()]
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        # the postmaster's and this backend's environment, read while the connection keeps the backend alive
        postmaster = int((info.pgdata / "postmaster.pid").read_text().splitlines()[0])
        environs = [Path(f"/proc/{p}").joinpath("environ") for p in (postmaster, pid)]
        seen = [e.read_bytes() for e in environs if e.exists()]
    assert any(line.startswith("PATH=") for line in lines)  # the COPY did read the environment
    assert not any(canary in line for line in lines)
    assert all(canary.encode() not in environ for environ in seen)


def test_nothing_outside_the_state_directory_changed_permissions(locked_server):
    for w in locked_server["watched"]:
        assert modes_of_parents(Path(w) / "x") == locked_server["before"][str(w)]


def test_url_and_env_hide_the_password_and_still_work(locked_server):
    state, info = locked_server["state"], locked_server["info"]
    secret = embedded.read_secret(info.passfile)
    env = own_server_env(state)
    url = csinfra("db", "url", env=env)
    shown = csinfra("db", "url", "--show-password", env=env)
    exported = csinfra("db", "env", env=env)
    assert url.returncode == shown.returncode == exported.returncode == 0
    assert secret not in url.stdout and secret not in exported.stdout and secret not in locked_server["url"]
    assert f":{secret}@" in shown.stdout
    assert f"PGPASSFILE={info.passfile}" in exported.stdout
    script = f'eval "$({sys.executable} -m creatorstays_infra db env)" && psql -Atc "select 41 + 1"'
    works = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert works.stdout.strip() == "42", works.stderr
    with psycopg.connect(url.stdout.strip(), connect_timeout=10) as conn:  # the URL names the passfile
        assert conn.execute("select current_user").fetchone()[0] == embedded.SUPERUSER


def test_a_cluster_from_before_is_locked_down_on_start_and_keeps_its_data(locked_server):
    """A server an older csinfra made (trust authentication, no password file) is given a password on start."""
    state, info = locked_server["state"], locked_server["info"]
    with _connect(info, passfile=str(info.passfile)) as conn:
        conn.execute("create table if not exists kept (v int)")
        conn.execute("insert into kept values (7)")
    assert csinfra("db", "stop", env=own_server_env(state)).returncode == 0
    # as an older csinfra left it: no password file, no hba file of ours, and pgdata's pg_hba.conf (a file the
    # server's OS user may replace) is a link to a file of ours: the launcher must not write through it
    info.passfile.unlink()
    (state / "pg_hba.conf").unlink()
    victim = state.parent / "victim.txt"
    victim.write_text("untouched\n")
    (info.pgdata / "pg_hba.conf").unlink()
    (info.pgdata / "pg_hba.conf").symlink_to(victim)
    started = csinfra("db", "start", env=own_server_env(state))
    assert started.returncode == 0, started.stderr
    assert (state / "pg_hba.conf").read_text() == embedded.HBA
    assert victim.read_text() == "untouched\n" and victim.stat().st_uid == os.geteuid()
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _connect(info, passfile=os.devnull)
    with _connect(info, passfile=str(info.passfile)) as conn:
        assert conn.execute("select v from kept").fetchone()[0] == 7


def test_a_state_directory_another_process_made_meanwhile_is_taken_as_it_is(tmp_path, monkeypatch):
    """Two first starts at once (two test workers, two commands on a new machine) both find no state directory;
    one makes it, and the other's mkdir then finds it there. That one goes on to wait for the lock (it stopped
    on FileExistsError before). The interleaving is forced: the directory exists, but this process saw none."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    seen = os.path.lexists
    monkeypatch.setattr(embedded.os.path, "lexists", lambda p: False if Path(p) == state else seen(p))
    with embedded.EmbeddedServer(state)._lock():
        assert (state / ".lock").exists()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700  # the maker's mode stands


def test_a_state_directory_others_may_write_to_is_refused(tmp_path):
    """Everything the launcher writes lives in the state directory: one that others can write to, or that is not
    ours, is refused before anything is written."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = csinfra("db", "start", env=own_server_env(shared), timeout=60)
    assert result.returncode == 1 and "writable by you only" in result.stderr
    assert list(shared.iterdir()) == []


def test_a_state_directory_the_server_cannot_reach_is_named(tmp_path):
    """tmp_path's parents are 0700: as root the server's OS user cannot pass; we say so and change nothing."""
    state = tmp_path / "state"
    before = modes_of_parents(state)
    result = csinfra("db", "start", env=own_server_env(state), timeout=180)
    try:
        if AS_ROOT:
            assert result.returncode == 1
            assert "cannot reach" in result.stderr and "CSINFRA_STATE_DIR" in result.stderr
        else:  # the server runs as us: a private directory is exactly right
            assert result.returncode == 0, result.stderr
        assert modes_of_parents(state) == before
    finally:
        csinfra("db", "stop", env=own_server_env(state))


# -- no value reaches SQL unchecked ----------------------------------------------------------------------------
@pytest.fixture
def watched_db(built_db):
    """built_db, with every statement (nested ones too) counted by pg_stat_statements."""
    with built_db.connect(autocommit=True) as conn:
        conn.execute("create extension if not exists pg_stat_statements")
        conn.execute(
            sql.SQL("alter database {} set pg_stat_statements.track = 'all'").format(
                sql.Identifier(built_db.name)
            )
        )
    return built_db


def ran(db, pattern: str) -> list[str]:
    """Statements pg_stat_statements saw in this database whose text matches `pattern`."""
    with db.connect(autocommit=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select s.query from pg_stat_statements as s join pg_database as d on d.oid = s.dbid "
                "where d.datname = %s and s.query ~* %s",
                (db.name, pattern),
            ).fetchall()
        ]


def dbt_fails(
    db, *args: str, vars_: dict | None = None, env: dict | None = None, app_schema: str = "public"
) -> str:
    with pytest.raises(AssertionError) as failed:
        db.as_role("owner").dbt(*args, vars_=vars_, env=env, app_schema=app_schema)
    return str(failed.value)


def test_hostile_settings_are_refused_where_they_enter_and_run_nothing(watched_db):
    db = watched_db
    assert ran(db, DROP_OFFERS) == []
    # the CLI: refused before any connection, exit 2, named
    for args, option in (
        (("backfill", "--lock-timeout", INJECTION), "--lock-timeout"),
        (("migrate", "up", "--lock-timeout", INJECTION), "--lock-timeout"),
        (("migrate", "down", "--statement-timeout", "1s; drop table offers"), "--statement-timeout"),
    ):
        result = db.cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert f"{option}: expected a duration like 5s or 500ms" in result.stderr
    for args, option in (
        (("--batch-size", "-5"), "--batch-size"),
        (("--batch-size", "100000000000"), "--batch-size"),
        (("--pause", "nan"), "--pause"),
        (("--batch-target-ms", "inf"), "--batch-target-ms"),
    ):
        result = db.cli("backfill", *args)
        assert result.returncode == 2 and option in result.stderr, (args, result.stderr)
    # plain dbt, past the CLI: the macros refuse, naming the setting
    log = dbt_fails(
        db,
        "run",
        "-s",
        "wb_offers",
        env={"CSINFRA_WRITEBACK_SETTINGS": json.dumps({"writeback_lock_timeout": INJECTION})},
    )
    assert "writeback_lock_timeout: expected a duration like 5s or 500ms" in log
    log = dbt_fails(
        db,
        "run",
        "-s",
        "wb_offers",
        env={"CSINFRA_WRITEBACK_SETTINGS": json.dumps({"writeback_batch_size": -5})},
    )
    assert "writeback_batch_size: expected a whole number from 1" in log
    log = dbt_fails(
        db,
        "run",
        "-s",
        "int_funnel_milestones_recorded",
        vars_={"events_lookback": "3 days'::interval; drop table offers; --"},
    )
    assert "var events_lookback: expected an interval" in log
    windows = {
        "viewed": "3 days' + interval '1",
        "responded": 7,
        "accepted": 7,
        "collab_started": 14,
        "completed": 60,
    }
    log = dbt_fails(
        db, "run", "-s", "rpt_offer_funnel_by_sent_week", vars_={"offer_funnel_windows_days": windows}
    )
    assert "var offer_funnel_windows_days.viewed: expected a number" in log
    log = dbt_fails(db, "run", "-s", "dim_creators", vars_={"marts_work_mem": "1GB'; drop table offers; --"})
    assert "var marts_work_mem: expected a size" in log
    # nothing of the payloads ever ran, and the table is there
    assert ran(db, DROP_OFFERS) == []
    assert db.scalar("select to_regclass('public.offers') is not null")


def test_a_schema_name_with_a_quote_is_refused_by_name_or_quoted_right(watched_db):
    db = watched_db
    weird = 'we"ird'
    result = db.cli("--app-schema", weird, "verify")
    assert (
        result.returncode == 2
        and "--app-schema 'we\"ird' is not a plain PostgreSQL schema name" in result.stderr
    )
    log = dbt_fails(db, "run", "-s", "stg_app__offers", app_schema=weird)
    assert "app_schema" in log and "is not a plain PostgreSQL schema name" in log
    assert ran(db, r'we"ird|we""ird') == []
    with pytest.raises(ConfigurationError, match="app_schema"):
        Options(app_schema=weird)
    # the Python library quotes whatever it is given: a schema named we"ird works as such
    with db.connect() as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(weird)))
        conn.execute(
            sql.SQL("create table {} (like public.audit_logs including all)").format(
                sql.Identifier(weird, "audit_logs")
            )
        )
        audit_id = log_audit_event(conn, "offer.created", "user", "u1", "Offer", "o1", app_schema=weird)
        rows = conn.execute(
            sql.SQL("select id from {}").format(sql.Identifier(weird, "audit_logs"))
        ).fetchall()
        conn.rollback()
    assert rows == [(audit_id,)]


def test_messages_with_quotes_and_backslashes_reach_the_data_exactly(watched_db, tmp_path, monkeypatch):
    """Rule messages are configuration (a catalog seed): with ' and \\ in them, loaded by dbt seed and rendered
    into the rules, the SQL still returns them byte for byte."""
    db = watched_db
    hostile = {
        "no_deliverables": "It's required: one \\ deliverable '); drop table offers; --",
        "min_total_value": "Value \\' must be >= $100 \\n",
    }
    project = copy_project(tmp_path / "project")
    rewrite_seed(
        project,
        "offer_validation_errors",
        lambda row: row.update(message=hostile.get(row["error_code"], row["message"])),
    )
    monkeypatch.setenv("CSINFRA_PROJECT_DIR", str(project))
    with db.connect(autocommit=True) as conn:  # where a backslash in '…' is an escape: E'…' must be used
        conn.execute(
            sql.SQL("alter database {} set standard_conforming_strings = off").format(sql.Identifier(db.name))
        )
        conn.execute(
            sql.SQL("alter database {} set escape_string_warning = off").format(sql.Identifier(db.name))
        )
    db.as_role("owner").dbt("build", *LOAD_AND_RUN, "-s", "offer_validation_errors", "int_offers_validated")
    with db.connect() as conn:
        conn.execute("""insert into offers (id, "hostProfileId", "creatorProfileId", "offerType", "cashCents", "stayNights",
                        deliverables, "trafficBonusEnabled", "updatedAt")
                        select 'hostile_1', "hostProfileId", "creatorProfileId", 'cash', 100, 0, '{}', false, now()
                        from offers limit 1""")
        errors = conn.execute(
            "select validation_errors from csinfra.int_offers_validated where offer_id = 'hostile_1'"
        ).fetchone()[0]
        conn.rollback()
    assert hostile["min_total_value"] in errors and hostile["no_deliverables"] in errors
    assert ran(db, DROP_OFFERS) == []


def test_library_settings_are_checked_where_they_enter():
    with pytest.raises(ConfigurationError, match="lock_timeout: expected a duration like 5s or 500ms"):
        Options(lock_timeout=INJECTION)
    with pytest.raises(ConfigurationError, match="retries"):
        Options(retries=-1)
    for good in ("3s", "500ms", "0", "1.5 s", "2min"):
        assert Options(lock_timeout=good).lock_timeout == good


# -- least privilege: three roles -------------------------------------------------------------------------------
def test_grant_prints_the_statements_and_wants_a_role(built_db):
    none = built_db.cli("grant", env={**built_db.env(), "CSINFRA_APP_ROLE": "", "CSINFRA_ANALYST_ROLE": ""})
    assert none.returncode == 2 and "--app-role" in none.stderr
    printed = built_db.cli("grant", "--app-role", ROLES["app"], "--analyst-role", ROLES["analyst"])
    assert printed.returncode == 0, printed.stderr
    text = printed.stdout
    assert f'revoke all on "public"."audit_logs", "public"."analytics_events" from "{ROLES["app"]}";' in text
    assert (
        f'grant select, insert on "public"."audit_logs", "public"."analytics_events" to "{ROLES["app"]}";'
        in text
    )
    assert 'revoke create on schema "public" from public;' in text
    assert (
        f'grant execute on function "csinfra"."wb_creator_profiles__apply"(text, text) to "{ROLES["app"]}";'
        in text
    )
    assert 'revoke all on function "csinfra"."wb_creator_profiles__apply"(text, text) from public;' in text
    applied = built_db.cli("grant", "--app-role", ROLES["app"], "--analyst-role", ROLES["analyst"], "--apply")
    assert applied.returncode == 0, applied.stderr
    missing = built_db.cli("grant", "--app-role", "no_such_role_here", "--apply")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    for role in ("public", "PUBLIC", "pg_monitor", "current_user", "postgres"):
        refused = built_db.cli("grant", "--app-role", role)
        assert refused.returncode == 2, (role, refused.stderr)
        assert "not a role to grant to" in refused.stderr or "the migration owner" in refused.stderr, role
    with built_db.connect(autocommit=True) as conn:
        app = ROLES["app"]
        held = conn.execute(
            """select has_table_privilege(%(r)s, 'public.audit_logs', 'UPDATE'),
                                      has_table_privilege(%(r)s, 'public.audit_logs', 'TRIGGER'),
                                      has_table_privilege(%(r)s, 'public.analytics_events', 'REFERENCES'),
                                      has_table_privilege(%(r)s, 'public.analytics_events', 'MAINTAIN'),
                                      has_schema_privilege(%(r)s, 'public', 'CREATE'),
                                      has_function_privilege(%(r)s, 'csinfra.wb_offers__apply(text, text)', 'EXECUTE'),
                                      has_function_privilege(%(r)s, 'csinfra.wb_creator_profiles__apply(text, text)', 'EXECUTE'),
                                      has_table_privilege(%(r)s, 'public.audit_logs', 'INSERT')""",
            {"r": app},
        ).fetchone()
    assert held == (False, False, False, False, False, False, True, True)


def test_the_online_function_binds_nothing_another_role_can_plant(built_db):
    """Its search_path is pg_catalog, pg_temp: a public.to_jsonb(record) (an exact match, which would beat
    pg_catalog's polymorphic to_jsonb were public on the path) is never called with the owner's rights."""
    with built_db.connect(autocommit=True) as conn:
        config = conn.execute(
            "select proconfig, prosecdef from pg_proc where oid = "
            "'csinfra.wb_creator_profiles__apply(text, text)'::regprocedure"
        ).fetchone()
        conn.execute("""create function public.to_jsonb(r record) returns jsonb language plpgsql as $$
                        begin raise exception 'hijacked by a planted function'; end $$""")
    with built_db.as_role("app").connect() as conn:
        cid = conn.execute("select min(id) from creator_profiles").fetchone()[0]
        assert update_creator_readiness(conn, cid).creator_profile_id == cid
    assert config == (["search_path=pg_catalog, pg_temp"], True)


def test_dbt_refuses_a_schema_everyone_may_create_in_and_a_role_that_is_everyone(built_db):
    with built_db.connect(autocommit=True) as conn:
        conn.execute(
            "grant create on schema public to public"
        )  # as a database upgraded from PostgreSQL 14 has it
    log = dbt_fails(built_db, "run", "-s", "stg_app__offers")
    assert "PUBLIC may CREATE in schema public" in log
    with built_db.connect(autocommit=True) as conn:
        conn.execute("revoke create on schema public from public")
    log = dbt_fails(built_db, "run", "-s", "stg_app__offers", env={"CSINFRA_APP_ROLE": "public"})
    assert "is not a role to grant to" in log


def test_migrate_up_grants_again_what_default_privileges_gave_back(built_db):
    """down, then up: the recreated audit and analytics tables get the application's default privileges (DML)
    again; with CSINFRA_APP_ROLE set, `migrate up` takes UPDATE and DELETE away again."""
    down = built_db.cli("migrate", "down", "--discard-data")
    assert down.returncode == 0, down.stderr
    up = built_db.cli("migrate", "up", env={**built_db.env(), **ROLE_ENV})
    assert up.returncode == 0 and "grants:" in up.stdout, up.stderr
    held = built_db.scalar(
        "select has_table_privilege(%s, 'public.analytics_events', 'UPDATE') "
        "or has_table_privilege(%s, 'public.audit_logs', 'DELETE')",
        (ROLES["app"], ROLES["app"]),
    )
    assert held is False


def test_the_application_role_appends_audit_rows_and_nothing_more(built_db):
    app = built_db.as_role("app")
    with app.connect(autocommit=True) as conn:
        log_audit_event(conn, "offer.created", "user", "u1", "Offer", "o1")
        assert log_analytics_event(conn, "host", "h1", "offer_sent", {"offerId": "o1"}) is not None
        for statement in (
            "update audit_logs set action = 'x'",
            "delete from audit_logs",
            "truncate audit_logs",
            "update analytics_events set \"actorId\" = 'x'",
            "delete from analytics_events",
            "truncate analytics_events",
            "select * from csinfra.int_creators_derived limit 1",
            "select * from csinfra.stg_app__users limit 1",
            "select * from csinfra.writeback_log limit 1",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement)
        cid = conn.execute("select min(id) from creator_profiles").fetchone()[0]
        assert update_creator_readiness(conn, cid).creator_profile_id == cid  # the one thing it may call


def test_the_analyst_reads_the_marts_and_nothing_that_carries_secrets(marts_db):
    analyst = marts_db.as_role("analyst")
    with analyst.connect(autocommit=True) as conn:
        for mart in MART_MODELS:
            conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier("csinfra", mart))
            ).fetchone()
        forbidden = [
            "public.users",
            "public.creator_profiles",
            "public.audit_logs",
            "public.analytics_events",
            "public.offers",
            "csinfra.stg_app__users",
            "csinfra.stg_app__audit_logs",
            "csinfra.int_creators_derived",
            "csinfra.writeback_log",
            "csinfra.view_fingerprints",
        ]
        for relation in forbidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("select 1 from {} limit 1").format(sql.Identifier(*relation.split("."))))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from csinfra.wb_creator_profiles__apply('x')")


def test_the_online_path_works_as_the_application_role_during_and_after_rebuilds(marts_db):
    """dbt run --full-refresh and dbt run, as the owner, while the application role keeps calling the online
    function: no call fails, and afterwards every grant (function, schema, marts) is still there."""
    app = marts_db.as_role("app")
    with app.connect(autocommit=True) as conn:
        cid = conn.execute("select min(id) from creator_profiles").fetchone()[0]
    stop = threading.Event()
    calls: list[float] = []
    errors: list[BaseException] = []

    def online():
        try:
            with app.connect(autocommit=True) as conn:
                while not stop.is_set():
                    update_creator_readiness(conn, cid)
                    calls.append(time.monotonic())
                    time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 — collected and re-raised by the test
            errors.append(exc)

    thread = threading.Thread(target=online)
    thread.start()
    try:
        windows = []
        for args in (("run", "--full-refresh"), ("run",)):
            t0 = time.monotonic()
            marts_db.as_role("owner").dbt(*args, env=ROLE_ENV)
            windows.append((t0, time.monotonic()))
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == []
    for t0, t1 in windows:  # the calls overlapped each rebuild
        assert sum(t0 <= t <= t1 for t in calls) >= 10
    with app.connect() as conn:
        assert update_creator_readiness(conn, cid).creator_profile_id == cid
    with marts_db.as_role("analyst").connect() as conn:
        assert conn.execute("select count(*) from csinfra.dim_creators").fetchone()[0] > 0


def test_a_missing_grant_is_explained(built_db):
    with built_db.as_role("owner").connect(autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "revoke execute on function csinfra.wb_creator_profiles__apply(text, text) from {}"
            ).format(sql.Identifier(ROLES["app"]))
        )
    with built_db.as_role("app").connect() as conn:
        cid = conn.execute("select min(id) from creator_profiles").fetchone()[0]
        with pytest.raises(CsinfraError, match="csinfra grant --app-role"):
            update_creator_readiness(conn, cid)


# -- bounded waits ------------------------------------------------------------------------------------------------
def test_audit_and_analytics_writes_give_way_during_a_rollbacks_archive_copy(built_db):
    """A rollback copies the two tables under LOCK … IN EXCLUSIVE MODE; with a lock_timeout the application's
    audit write raises instead of waiting for the whole copy, and its analytics write is dropped, counted."""
    reset_analytics_stats()
    with built_db.as_role("owner").connect() as archive, built_db.as_role("app").connect() as conn:
        archive.execute("lock table audit_logs, analytics_events in exclusive mode")
        before = conn.execute("show lock_timeout").fetchone()[0]
        with pytest.raises(psycopg.errors.LockNotAvailable):
            log_audit_event(conn, "offer.created", "user", "u1", "Offer", "o1", lock_timeout="200ms")
        conn.rollback()
        assert (
            log_analytics_event(conn, "host", "h1", "offer_sent", {"offerId": "o1"}, lock_timeout="200ms")
            is None
        )
        assert analytics_stats()["failed: LockNotAvailable"] == 1
        assert conn.execute("show lock_timeout").fetchone()[0] == before  # put back after the call
        archive.rollback()
        with timeouts(conn, lock_timeout="2s", statement_timeout="5s"):
            assert conn.execute("show lock_timeout").fetchone()[0] == "2s"
            log_audit_event(conn, "offer.created", "user", "u1", "Offer", "o1")
        assert conn.execute("show lock_timeout").fetchone()[0] == before
        conn.rollback()
    with built_db.as_role("app").connect() as conn, pytest.raises(ValidationError) as bad:
        log_audit_event(conn, "offer.created", "user", "u1", "Offer", "o1", lock_timeout=INJECTION)
    assert bad.value.field == "lock_timeout"


def test_a_server_that_never_answers_times_out(monkeypatch):
    """connect_timeout on every connection: a port that accepts and then says nothing does not hang us."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    monkeypatch.setattr(database_module, "CONNECT_TIMEOUT", 2)
    try:
        target = database_module.resolve(f"postgresql://nobody@127.0.0.1:{port}/x")
        with pytest.raises(DatabaseError, match="timeout expired"):
            target.connect()
    finally:
        listener.close()


def test_dbt_takes_the_same_connect_timeout_as_csinfra(empty_db):
    """dbt's profile reads PGCONNECT_TIMEOUT (which csinfra exports from a URL's connect_timeout), so a
    slow or silent server is given the same time by every process of a run."""
    log = empty_db.dbt("debug", env={"PGCONNECT_TIMEOUT": "37"})
    assert re.search(r"connect_timeout:\s+37\b", log), log[-3000:]
    assert "All checks passed" in log
