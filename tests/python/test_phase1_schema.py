"""The migration's objects, compared whole with docs/rules.md §3 (the product's schema change), from the catalog:
every new column with its type, nullability and default, the enums with their labels in order, the two new
tables column for column, their primary keys and indexes. The expectation is written here from the spec, not read
from the migration's files."""

from __future__ import annotations

import pytest

# docs/rules.md §3, column by column: (type as format_type prints it, NOT NULL, default as pg_get_expr prints it)
ENUMS = {
    "TrustTier": ["NEW", "VERIFIED", "PROVEN"],
    "ReadinessState": ["INCOMPLETE", "PENDING_OAUTH", "READY"],
}
TS = "timestamp(3) without time zone"
NEW_COLUMNS = {
    "creator_profiles": {
        "trustTier": ('"TrustTier"', True, """'NEW'::"TrustTier\""""),
        "readinessState": ('"ReadinessState"', True, """'INCOMPLETE'::"ReadinessState\""""),
        "readinessBlockers": ("jsonb", True, "'[]'::jsonb"),
        "profileCompleteness": ("double precision", True, "0"),
        "firstOfferReceivedAt": (TS, False, None),
        "firstOfferRespondedAt": (TS, False, None),
        "firstCollabCompletedAt": (TS, False, None),
    },
    "offers": {
        "originalTermsSnapshot": ("jsonb", False, None),
        "statusHistory": ("jsonb", True, "'[]'::jsonb"),
        "totalValueCents": ("integer", False, None),
        "isValid": ("boolean", True, "true"),
        "validationErrors": ("jsonb", True, "'[]'::jsonb"),
    },
}
NEW_TABLES = {
    "audit_logs": {
        "id": ("text", True, None),
        "action": ("text", True, None),
        "actorType": ("text", True, None),
        "actorId": ("text", True, None),
        "actorEmail": ("text", False, None),
        "targetType": ("text", True, None),
        "targetId": ("text", True, None),
        "metadata": ("jsonb", True, "'{}'::jsonb"),
        "ipAddress": ("text", False, None),
        "userAgent": ("text", False, None),
        "createdAt": (TS, True, "CURRENT_TIMESTAMP"),
    },
    "analytics_events": {
        "id": ("text", True, None),
        "actorType": ("text", True, None),
        "actorId": ("text", True, None),
        "eventType": ("text", True, None),
        "eventData": ("jsonb", True, "'{}'::jsonb"),
        "sessionId": ("text", False, None),
        "createdAt": (TS, True, "CURRENT_TIMESTAMP"),
    },
}
# the indexes §3 names (column lists, in order), besides each table's primary key on id
INDEXES = {
    "audit_logs": {("targetType", "targetId"), ("actorId",), ("action",), ("createdAt",)},
    "analytics_events": {("actorType", "actorId", "createdAt"), ("eventType", "createdAt"), ("createdAt",)},
}

COLUMNS = """
    select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
    from pg_attribute a
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
    order by a.attnum"""
INDEX_COLUMNS = """
    select i.indisprimary, i.indisunique,
           array(select a.attname from unnest(i.indkey) with ordinality k (attnum, n)
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum order by k.n)
    from pg_index i where i.indrelid = %s::regclass"""


def columns(conn, table: str) -> dict[str, tuple]:
    return {name: (typ, notnull, default) for name, typ, notnull, default in conn.execute(COLUMNS, (table,))}


ENUM_LABELS = """select t.typname, array_agg(e.enumlabel order by e.enumsortorder)
                 from pg_type t join pg_enum e on e.enumtypid = t.oid
                 where t.typnamespace = 'public'::regnamespace group by t.typname"""


def test_the_new_enums_are_the_specs(pre_db, applied_db):
    with pre_db.connect() as before, applied_db.connect() as after:
        old = dict(before.execute(ENUM_LABELS).fetchall())
        new = dict(after.execute(ENUM_LABELS).fetchall())
    assert {name: labels for name, labels in new.items() if name not in old} == ENUMS
    assert {name: new[name] for name in old} == old  # the application's own enums are untouched


@pytest.mark.parametrize("table", sorted(NEW_COLUMNS))
def test_the_new_columns_are_the_specs(pre_db, applied_db, table):
    """The columns the migration adds are exactly §3's, with its types, nullability and defaults."""
    with pre_db.connect() as before, applied_db.connect() as after:
        old, new = columns(before, table), columns(after, table)
    added = {name: spec for name, spec in new.items() if name not in old}
    assert added == NEW_COLUMNS[table]
    assert {name: new[name] for name in old} == old  # the application's own columns are untouched


@pytest.mark.parametrize("table", sorted(NEW_TABLES))
def test_the_new_tables_are_the_specs(applied_db, table):
    with applied_db.connect() as conn:
        assert columns(conn, table) == NEW_TABLES[table]
        indexes = conn.execute(INDEX_COLUMNS, (table,)).fetchall()
    primary = [tuple(cols) for is_primary, _unique, cols in indexes if is_primary]
    others = {tuple(cols) for is_primary, unique, cols in indexes if not is_primary and not unique}
    assert primary == [("id",)]
    assert others == INDEXES[table]
    assert not [cols for is_primary, unique, cols in indexes if unique and not is_primary]


def test_the_check_bites_on_a_drifted_column(applied_db):
    """The comparison fails when one column's nullability, type or default drifts from §3 (shown on a copy)."""
    with applied_db.connect() as conn:
        conn.execute('alter table audit_logs alter column "actorId" drop not null')
        conn.execute('alter table offers alter column "isValid" set default false')
        drifted_audit = columns(conn, "audit_logs")
        drifted_offers = columns(conn, "offers")
        conn.rollback()
    assert drifted_audit != NEW_TABLES["audit_logs"]
    assert drifted_audit["actorId"] == ("text", False, None)
    assert drifted_offers["isValid"] == ("boolean", True, "false") != NEW_COLUMNS["offers"]["isValid"]
