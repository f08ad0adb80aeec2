"""The GRANTs of a least-privilege deployment: `csinfra grant` prints or applies them.

Three roles, as a real deployment has them:

* the migration owner (whoever runs this): runs `csinfra migrate` and the backfill, owns the
  application's tables (as the ORM's migrations do) and the schemas csinfra creates;
* the application role: runs the online library. It keeps the rights the application already has on
  its own tables, may SELECT and INSERT audit and analytics rows but never UPDATE, DELETE or TRUNCATE
  them, and may call the online rule function (SECURITY DEFINER, EXECUTE revoked from PUBLIC), so it
  needs no right on csinfra's views;
* the analyst role: reads the marts and nothing else: no staging or intermediate view, no
  application table, no run log, no rollback archive.

dbt keeps the csinfra-side grants through rebuilds (also `--full-refresh`): the marts' `grants`
config, the schema's USAGE (on-run-start) and the function's EXECUTE (macros/grants.sql), from the
`app_role` / `analyst_role` vars or CSINFRA_APP_ROLE / CSINFRA_ANALYST_ROLE. The statements here are
the same, plus the application tables' part, which dbt never touches.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from ..errors import ConfigurationError
from .marts import MART_MODELS

APPEND_ONLY_TABLES = ("audit_logs", "analytics_events")
APPLY_FUNCTION = "wb_creator_profiles__apply"


def statements(
    app_schema: str,
    dbt_schema: str,
    app_role: str | None,
    analyst_role: str | None,
    existing_marts: tuple[str, ...] = MART_MODELS,
    function_exists: bool = True,
    dbt_schema_exists: bool = True,
) -> list[sql.Composed]:
    """The GRANT/REVOKE statements, every name quoted."""
    out: list[sql.Composed] = []
    ours = sql.Identifier(dbt_schema)
    function = sql.SQL("{}(text, text)").format(sql.Identifier(dbt_schema, APPLY_FUNCTION))
    append_only = sql.SQL(", ").join(sql.Identifier(app_schema, t) for t in APPEND_ONLY_TABLES)
    if function_exists:
        out.append(sql.SQL("revoke all on function {} from public").format(function))
    # nobody but the owner creates objects where the owner's views and functions look: a function planted there
    # (say public.to_jsonb(record)) would be bound into them and run with the owner's rights
    out.append(sql.SQL("revoke create on schema {} from public").format(sql.Identifier(app_schema)))
    if app_role:
        role = sql.Identifier(app_role)
        out += [
            sql.SQL("revoke create on schema {} from {}").format(sql.Identifier(app_schema), role),
            sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(app_schema), role),
            # whatever the application's default privileges gave it (UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES,
            # MAINTAIN): audit and analytics rows are append-only, so all of it goes, then SELECT and INSERT come back
            sql.SQL("revoke all on {} from {}").format(append_only, role),
            sql.SQL("grant select, insert on {} to {}").format(append_only, role),
        ]
        if dbt_schema_exists:
            out.append(sql.SQL("grant usage on schema {} to {}").format(ours, role))
        if function_exists:
            out.append(sql.SQL("grant execute on function {} to {}").format(function, role))
    if analyst_role:
        role = sql.Identifier(analyst_role)
        out += [
            sql.SQL("revoke create on schema {} from {}").format(sql.Identifier(app_schema), role),
            sql.SQL("revoke all on all tables in schema {} from {}").format(sql.Identifier(app_schema), role),
        ]
        if dbt_schema_exists:
            out += [
                sql.SQL("revoke all on all tables in schema {} from {}").format(ours, role),
                sql.SQL("grant usage on schema {} to {}").format(ours, role),
            ]
        out += [
            sql.SQL("grant select on {} to {}").format(sql.Identifier(dbt_schema, m), role)
            for m in existing_marts
        ]
    return out


RESERVED_ROLES = ("public", "current_user", "session_user", "current_role")


def check_role(role: str | None, what: str, current_user: str) -> str | None:
    """PUBLIC (even quoted), pg_* roles, the session keywords and the owner itself are never what is meant."""
    if role is None:
        return None
    if not role or role.lower() in RESERVED_ROLES or role.lower().startswith("pg_") or "\x00" in role:
        raise ConfigurationError(
            f"{what} {role!r} is not a role to grant to: name the application's or the analysts' own role"
        )
    if role == current_user:
        raise ConfigurationError(
            f"{what} {role!r} is the role running this (the migration owner): grants to it would "
            "revoke the owner's own rights; name the application's or the analysts' role"
        )
    return role


def plan(
    conn: psycopg.Connection, app_schema: str, dbt_schema: str, app_role: str | None, analyst_role: str | None
) -> tuple[list[sql.Composed], list[str]]:
    """The statements for this database, and notes on what is not there yet (roles, marts, the function)."""
    current_user = conn.execute("select current_user").fetchone()[0]
    app_role = check_role(app_role, "--app-role", current_user)
    analyst_role = check_role(analyst_role, "--analyst-role", current_user)
    if app_role is not None and app_role == analyst_role:
        raise ConfigurationError(
            "--app-role and --analyst-role name the same role: they hold different rights"
        )
    notes: list[str] = []
    for kind, role in (("application role", app_role), ("analyst role", analyst_role)):
        if role and conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone() is None:
            notes.append(f"the {kind} {role!r} does not exist: create it first (create role … login)")
    marts = tuple(
        m
        for m in MART_MODELS
        if conn.execute(
            "select to_regclass(format('%%I.%%I', %s::text, %s::text))", (dbt_schema, m)
        ).fetchone()[0]
        is not None
    )
    if len(marts) < len(MART_MODELS):
        notes.append(
            f"{len(MART_MODELS) - len(marts)} marts are not built yet: dbt grants them when it builds them "
            "(set CSINFRA_ANALYST_ROLE)"
        )
    function = (
        conn.execute(
            "select to_regprocedure(format('%%I.%%I(text, text)', %s::text, %s::text))",
            (dbt_schema, APPLY_FUNCTION),
        ).fetchone()[0]
        is not None
    )
    if not function:
        notes.append(
            f"{dbt_schema}.{APPLY_FUNCTION} is not installed yet: the backfill grants it (set CSINFRA_APP_ROLE)"
        )
    ours = conn.execute(
        "select exists (select from pg_namespace where nspname = %s)", (dbt_schema,)
    ).fetchone()[0]
    if not ours:
        notes.append(
            f"schema {dbt_schema} has not been created yet (no dbt run so far): dbt grants USAGE on it when it "
            "creates it (set CSINFRA_APP_ROLE / CSINFRA_ANALYST_ROLE)"
        )
    return statements(app_schema, dbt_schema, app_role, analyst_role, marts, function, ours), notes


def apply(conn: psycopg.Connection, stmts: list[sql.Composed]) -> None:
    """All statements in one transaction: all or nothing."""
    with conn.transaction():
        for stmt in stmts:
            conn.execute(stmt)
