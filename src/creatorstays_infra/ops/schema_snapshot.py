"""A comparable fingerprint of the objects in one schema, and the objects a migration creates.

`expected_objects` applies a migration's files to an empty probe schema inside a transaction that
is always rolled back, and reads back what appeared: the SQL files are the only definition of
what "applied" looks like, so `status` and the preflight checks cannot drift from them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import psycopg
from psycopg import sql

# Every definition is read with search_path set to the inspected schema, so names come out
# unqualified and two schemas holding the same objects give identical fingerprints.
CATALOG_QUERY = """
with ns as (select oid from pg_namespace where nspname = %(schema)s)
select 'type:' || t.typname,
       'enum(' || string_agg(e.enumlabel, ',' order by e.enumsortorder) || ')'
from pg_type t join pg_enum e on e.enumtypid = t.oid
where t.typnamespace = (select oid from ns)
group by t.typname
union all
select 'table:' || c.relname, 'table'
from pg_class c
where c.relnamespace = (select oid from ns) and c.relkind in ('r', 'p')
union all
select 'column:' || c.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod)
       || case when a.attnotnull then ' not null' else '' end
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
from pg_attribute a
join pg_class c on c.oid = a.attrelid and c.relnamespace = (select oid from ns) and c.relkind in ('r', 'p')
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attnum > 0 and not a.attisdropped
union all
select 'index:' || i.relname, pg_get_indexdef(i.oid)
from pg_index x
join pg_class i on i.oid = x.indexrelid
where i.relnamespace = (select oid from ns)
union all
select 'constraint:' || c.relname || '.' || k.conname,
       pg_get_constraintdef(k.oid) || case when k.convalidated then '' else ' (not validated)' end
from pg_constraint k
join pg_class c on c.oid = k.conrelid and c.relnamespace = (select oid from ns)
union all
select 'trigger:' || c.relname || '.' || g.tgname, pg_get_triggerdef(g.oid)
from pg_trigger g
join pg_class c on c.oid = g.tgrelid and c.relnamespace = (select oid from ns)
where not g.tgisinternal
union all
select 'function:' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       'returns ' || pg_get_function_result(p.oid) || ' language ' || l.lanname || ' body md5 ' || md5(p.prosrc)
from pg_proc p
join pg_language l on l.oid = p.prolang
where p.pronamespace = (select oid from ns)
"""


def catalog_objects(conn: psycopg.Connection, schema: str) -> dict[str, str]:
    """Fingerprint of every type, table, column, index, constraint, trigger and function in `schema`."""
    with conn.transaction():
        conn.execute(sql.SQL("set local search_path to {}, pg_catalog").format(sql.Identifier(schema)))
        rows = conn.execute(CATALOG_QUERY, {"schema": schema}).fetchall()
        prefix = conn.execute("select quote_ident(%s) || '.'", (schema,)).fetchone()[0]
    # index and trigger definitions always qualify their table: drop this schema's prefix
    return {key: definition.replace(prefix, "") for key, definition in rows}


@dataclass(frozen=True)
class ObjectDiff:
    key: str
    expected: str | None
    actual: str | None

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(":", 1)[1]

    def describe(self, schema: str) -> str:
        where = f"{schema}.{self.name}"
        if self.actual is None:
            return f"{self.kind} {where} is missing"
        if self.expected is None:
            return f"{self.kind} {where} exists but should not"
        return f"{self.kind} {where} is {self.actual!r}, expected {self.expected!r}"


def expected_objects(
    conn: psycopg.Connection, scripts: list[str], existing_tables: dict[str, list[str]]
) -> list[dict[str, str]]:
    """Objects each of `scripts` creates or changes, applied in order to a throw-away probe schema.

    `existing_tables` maps each application table the scripts alter to the columns they need to see
    (only names matter: the probe tables are text columns with a primary key on id). Returns one
    dict per script: what appeared or changed when it ran.
    """
    probe = f"csinfra_probe_{secrets.token_hex(6)}"
    found: list[dict[str, str]] = []
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(probe)))
        for table, columns in existing_tables.items():
            cols = [sql.SQL("{} text").format(sql.Identifier(c)) for c in columns if c != "id"]
            conn.execute(
                sql.SQL("create table {} ({})").format(
                    sql.Identifier(probe, table),
                    sql.SQL(", ").join([sql.SQL("id text primary key"), *cols]),
                )
            )
        before = catalog_objects(conn, probe)
        for script in scripts:
            conn.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(probe)))
            if script.strip():
                conn.execute(script)
            after = catalog_objects(conn, probe)
            found.append({k: v for k, v in after.items() if before.get(k) != v})
            before = after
    return found


def compare(expected: dict[str, str], actual: dict[str, str]) -> list[ObjectDiff]:
    """Expected objects that are missing or defined differently."""
    return [
        ObjectDiff(key, definition, actual.get(key))
        for key, definition in sorted(expected.items())
        if actual.get(key) != definition
    ]


def present(expected: dict[str, str], actual: dict[str, str]) -> list[ObjectDiff]:
    """Expected objects that already exist (with whatever definition they have)."""
    return [
        ObjectDiff(key, definition, actual[key])
        for key, definition in sorted(expected.items())
        if key in actual
    ]
