"""Catalog lookups shared by the migration runner, demo data and verification: does a table, column or schema exist."""

from __future__ import annotations

import psycopg

# The application's tables this project reads, in creation order (parents first).
APP_TABLES = ("users", "host_profiles", "properties", "creator_profiles", "offers", "collaborations")


def table_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    row = conn.execute(
        """
        select exists (
            select from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = %s and c.relname = %s and c.relkind in ('r', 'p')
        )
        """,
        (schema, table),
    ).fetchone()
    return bool(row[0])


def column_type(conn: psycopg.Connection, schema: str, table: str, column: str) -> str | None:
    """`format_type` of a column (e.g. 'timestamp(3) without time zone'), or None when absent."""
    row = conn.execute(
        """
        select format_type(a.atttypid, a.atttypmod)
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relname = %s and a.attname = %s and a.attnum > 0 and not a.attisdropped
        """,
        (schema, table, column),
    ).fetchone()
    return row[0] if row else None


def column_exists(conn: psycopg.Connection, schema: str, table: str, column: str) -> bool:
    return column_type(conn, schema, table, column) is not None


def schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return bool(
        conn.execute("select exists (select from pg_namespace where nspname = %s)", (schema,)).fetchone()[0]
    )
