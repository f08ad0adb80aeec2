"""The online path for one creator (docs/rules.md §4 and §10).

No rule is written here. Each function calls `<CSINFRA_SCHEMA>.wb_creator_profiles__apply(id)`,
the function dbt generates (with the batch write-back) from the same models and macros: it derives
the creator's state fresh from the database, writes it back only when it differs, guarded exactly
like a backfill batch, and audits a trust-tier change. The caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from . import settings
from .errors import ConflictError, CsinfraError, NotFoundError, ValidationError

APPLY_FUNCTION = "wb_creator_profiles__apply"
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class CreatorState:
    creator_profile_id: str
    trust_tier: str
    readiness_state: str
    readiness_blockers: list[str]
    profile_completeness: float
    first_offer_received_at: datetime | None
    first_offer_responded_at: datetime | None
    first_collab_completed_at: datetime | None
    previous_trust_tier: str
    changed: bool  # whether this call wrote the row


def _ts(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _require_id(creator_profile_id: Any) -> str:
    if not isinstance(creator_profile_id, str) or not creator_profile_id.strip():
        raise ValidationError("creator_profile_id", "must be a non-empty string")
    return creator_profile_id


def _apply(conn: psycopg.Connection, creator_profile_id: str, dbt_schema: str | None = None) -> CreatorState:
    schema = dbt_schema or settings.dbt_schema()
    query = sql.SQL("select r from {}(%s, 'online') as r").format(sql.Identifier(schema, APPLY_FUNCTION))
    for _ in range(MAX_ATTEMPTS):
        try:
            with conn.transaction():  # a savepoint inside the caller's transaction
                rows = conn.cursor(row_factory=tuple_row).execute(query, (creator_profile_id,)).fetchall()
        except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName):
            raise CsinfraError(
                f"{schema}.{APPLY_FUNCTION} does not exist: run the backfill once "
                "(`csinfra backfill` or `dbt run`) to install the rule functions"
            ) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise CsinfraError(
                f"the role {conn.info.user!r} may not call {schema}.{APPLY_FUNCTION} ({exc.diag.message_primary}): "
                "as the migration owner run `csinfra grant --app-role <this role> --apply`, and set CSINFRA_APP_ROLE "
                "for the backfill so every rebuild keeps the grant"
            ) from None
        if not rows:
            raise NotFoundError(f"creator_profile_id {creator_profile_id!r}: no such creator profile")
        r = rows[0][0]
        # has_changes but not written: the row changed between derivation and write; derive again
        if r["written"] or not r["has_changes"]:
            return CreatorState(
                creator_profile_id=r["creator_profile_id"],
                trust_tier=r["trust_tier"],
                readiness_state=r["readiness_state"],
                readiness_blockers=list(r["readiness_blockers"]),
                profile_completeness=float(r["profile_completeness"]),
                first_offer_received_at=_ts(r["first_offer_received_at"]),
                first_offer_responded_at=_ts(r["first_offer_responded_at"]),
                first_collab_completed_at=_ts(r["first_collab_completed_at"]),
                previous_trust_tier=r["stored_trust_tier"],
                changed=bool(r["written"]),
            )
    raise ConflictError(
        f"creator_profile_id {creator_profile_id!r}: the profile kept changing under us ({MAX_ATTEMPTS} attempts); nothing written"
    )


def update_creator_readiness(
    conn: psycopg.Connection, creator_profile_id: str, *, dbt_schema: str | None = None
) -> CreatorState:
    """After a profile save: readiness state, blockers, completeness and trust tier recomputed and stored."""
    return _apply(conn, _require_id(creator_profile_id), dbt_schema)


def update_creator_trust(
    conn: psycopg.Connection, creator_profile_id: str, *, dbt_schema: str | None = None
) -> CreatorState:
    """Recompute the trust tier (with everything it depends on); a change is audited (system.trust_updated)."""
    return _apply(conn, _require_id(creator_profile_id), dbt_schema)


def _mark(
    conn: psycopg.Connection,
    creator_profile_id: str,
    column: str,
    at: datetime | None,
    dbt_schema: str | None,
    app_schema: str | None,
) -> CreatorState:
    """Derive the first-time moment from the data; when the data does not show it (yet), record `at` (default now).

    A stored first-time is never cleared and never moved later."""
    state = _apply(conn, _require_id(creator_profile_id), dbt_schema)
    field = {
        "firstOfferReceivedAt": state.first_offer_received_at,
        "firstOfferRespondedAt": state.first_offer_responded_at,
        "firstCollabCompletedAt": state.first_collab_completed_at,
    }[column]
    if field is not None and (at is None or field <= at):
        return state
    conn.execute(
        sql.SQL(
            "update {} set {} = least({}, coalesce(%s::timestamp(3), (now() at time zone 'UTC')::timestamp(3))) where id = %s"
        ).format(
            sql.Identifier(app_schema or settings.app_schema(), "creator_profiles"),
            sql.Identifier(column),
            sql.Identifier(column),
        ),
        (at, creator_profile_id),
    )
    return _apply(conn, creator_profile_id, dbt_schema)


def mark_first_offer_received(
    conn: psycopg.Connection,
    creator_profile_id: str,
    at: datetime | None = None,
    *,
    dbt_schema: str | None = None,
    app_schema: str | None = None,
) -> CreatorState:
    """After an offer is sent to the creator."""
    return _mark(conn, creator_profile_id, "firstOfferReceivedAt", at, dbt_schema, app_schema)


def mark_first_offer_responded(
    conn: psycopg.Connection,
    creator_profile_id: str,
    at: datetime | None = None,
    *,
    dbt_schema: str | None = None,
    app_schema: str | None = None,
) -> CreatorState:
    """After the creator accepts, declines or counters an offer."""
    return _mark(conn, creator_profile_id, "firstOfferRespondedAt", at, dbt_schema, app_schema)


def mark_first_collab_completed(
    conn: psycopg.Connection,
    creator_profile_id: str,
    at: datetime | None = None,
    *,
    dbt_schema: str | None = None,
    app_schema: str | None = None,
) -> CreatorState:
    """After a collaboration is completed: the creator becomes PROVEN (audited)."""
    return _mark(conn, creator_profile_id, "firstCollabCompletedAt", at, dbt_schema, app_schema)
