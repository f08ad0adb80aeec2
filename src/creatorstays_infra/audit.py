"""Audit writes and reads (docs/rules.md §8). An audit write is never silently lost: it is validated first (a
specific ValidationError naming the field) and any database error propagates to the caller, inside the caller's
transaction. `audit_logs` is append-only: nothing here updates or deletes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import settings
from ._payload import SYSTEM_ACTOR_ID, actor_id_for, json_object, text_field
from .errors import ValidationError
from .ids import new_id
from .timeouts import timeouts

AUDIT_ACTIONS = frozenset(
    {
        "offer.created",
        "offer.status_changed",
        "offer.expired",
        "offer.viewed",
        "collab.started",
        "collab.completed",
        "collab.cancelled",
        "collab.status_changed",
        "payment.initiated",
        "payment.completed",
        "payment.failed",
    }
)
AUDIT_PREFIXES = ("admin.", "system.")
AUDIT_ACTOR_TYPES = ("user", "admin", "system", "cron")
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _audit_action(action: Any) -> str:
    text_field("action", action, max_len=100)
    if action in AUDIT_ACTIONS:
        return action
    if action.startswith(AUDIT_PREFIXES) and _NAME.match(action):
        return action
    raise ValidationError(
        "action",
        f"unknown audit action {action!r} (known: {', '.join(sorted(AUDIT_ACTIONS))}, admin.*, system.*)",
    )


# -- audit ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditEntry:
    id: str
    action: str
    actor_type: str
    actor_id: str
    actor_email: str | None
    target_type: str
    target_id: str
    metadata: dict
    ip_address: str | None
    user_agent: str | None
    created_at: datetime


def log_audit_event(
    conn: psycopg.Connection,
    action: str,
    actor_type: str,
    actor_id: str | None,
    target_type: str,
    target_id: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    actor_email: str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    app_schema: str | None = None,
    lock_timeout: str | None = None,
    statement_timeout: str | None = None,
) -> str:
    """Append one audit row (in the caller's transaction); returns its id. Raises ValidationError on bad
    input and lets any database error propagate: an audit write is never silently lost. `lock_timeout` /
    `statement_timeout` bound its wait (creatorstays_infra.timeouts): past them it raises LockNotAvailable /
    QueryCanceled, e.g. while a rollback archives the table."""
    action = _audit_action(action)
    if actor_type not in AUDIT_ACTOR_TYPES:
        raise ValidationError(
            "actor_type", f"unknown actor type {actor_type!r} (known: {', '.join(AUDIT_ACTOR_TYPES)})"
        )
    actor_id = actor_id_for(actor_type, actor_id)
    text_field("target_type", target_type, max_len=100)
    text_field("target_id", target_id)
    text_field("actor_email", actor_email, required=False)
    text_field("ip_address", ip_address, required=False, max_len=64)
    text_field("user_agent", user_agent, required=False, max_len=1024)
    meta = json_object("metadata", metadata)
    audit_id = new_id()
    with timeouts(conn, lock_timeout=lock_timeout, statement_timeout=statement_timeout):
        conn.execute(
            sql.SQL(
                """insert into {} (id, action, "actorType", "actorId", "actorEmail", "targetType", "targetId", metadata,
                       "ipAddress", "userAgent", "createdAt")
                   values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, (now() at time zone 'UTC')::timestamp(3))"""
            ).format(sql.Identifier(app_schema or settings.app_schema(), "audit_logs")),
            (
                audit_id,
                action,
                actor_type,
                actor_id,
                actor_email,
                target_type,
                target_id,
                Jsonb(meta),
                ip_address,
                user_agent,
            ),
        )
    return audit_id


def _require_prefix(action: Any, prefix: str) -> None:
    if not isinstance(action, str) or not action.startswith(prefix + "."):
        raise ValidationError("action", f"{action!r} is not a {prefix}.* action")


def _prefixed(action: Any, prefix: str) -> str:
    """`user_suspended` → `admin.user_suspended`, as the application's helpers add it; `admin.x` stays as given."""
    if isinstance(action, str) and action.strip() and "." not in action:
        action = f"{prefix}.{action}"
    _require_prefix(action, prefix)
    return action


def log_offer_event(
    conn: psycopg.Connection,
    action: str,
    offer_id: str,
    actor_type: str,
    actor_id: str | None,
    metadata: Mapping[str, Any] | None = None,
    **kwargs,
) -> str:
    """An `offer.*` audit row about one offer."""
    _require_prefix(action, "offer")
    text_field("offer_id", offer_id)
    return log_audit_event(conn, action, actor_type, actor_id, "Offer", offer_id, metadata, **kwargs)


def log_collab_event(
    conn: psycopg.Connection,
    action: str,
    collab_id: str,
    actor_type: str,
    actor_id: str | None,
    metadata: Mapping[str, Any] | None = None,
    **kwargs,
) -> str:
    """A `collab.*` audit row about one collaboration."""
    _require_prefix(action, "collab")
    text_field("collab_id", collab_id)
    return log_audit_event(conn, action, actor_type, actor_id, "Collaboration", collab_id, metadata, **kwargs)


def log_admin_action(
    conn: psycopg.Connection,
    action: str,
    admin_id: str,
    target_type: str,
    target_id: str,
    metadata: Mapping[str, Any] | None = None,
    **kwargs,
) -> str:
    """An `admin.*` audit row (e.g. admin.impersonate, admin.user_suspended, admin.offer_flagged); the prefix is
    added when missing (`"user_suspended"`). The admin's e-mail goes in `actor_email=`."""
    action = _prefixed(action, "admin")
    text_field("admin_id", admin_id)
    return log_audit_event(conn, action, "admin", admin_id, target_type, target_id, metadata, **kwargs)


def log_system_event(
    conn: psycopg.Connection,
    action: str,
    target_type: str,
    target_id: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    actor_type: str = "system",
    **kwargs,
) -> str:
    """A `system.*` audit row written by the platform itself (actor type system, or cron for scheduled jobs)."""
    action = _prefixed(action, "system")
    if actor_type not in ("system", "cron"):
        raise ValidationError("actor_type", "must be system or cron for a system event")
    return log_audit_event(
        conn, action, actor_type, SYSTEM_ACTOR_ID, target_type, target_id, metadata, **kwargs
    )


_AUDIT_COLUMNS = sql.SQL(
    'id, action, "actorType", "actorId", "actorEmail", "targetType", "targetId", metadata, "ipAddress", "userAgent", "createdAt"'
)


def _read(
    conn: psycopg.Connection, where: sql.Composable, params: tuple, limit: int, app_schema: str | None
) -> list[AuditEntry]:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
        raise ValidationError("limit", "must be an integer from 1 to 10000")
    rows = conn.execute(
        sql.SQL('select {} from {} where {} order by "createdAt" desc, id desc limit %s').format(
            _AUDIT_COLUMNS, sql.Identifier(app_schema or settings.app_schema(), "audit_logs"), where
        ),
        (*params, limit),
    ).fetchall()
    return [AuditEntry(*r) for r in rows]


def get_audit_trail(
    conn: psycopg.Connection,
    target_type: str,
    target_id: str,
    limit: int = 100,
    *,
    app_schema: str | None = None,
) -> list[AuditEntry]:
    """Everything that happened to one target, newest first (uses the (targetType, targetId) index)."""
    text_field("target_type", target_type)
    text_field("target_id", target_id)
    return _read(
        conn, sql.SQL('"targetType" = %s and "targetId" = %s'), (target_type, target_id), limit, app_schema
    )


def get_actor_activity(
    conn: psycopg.Connection, actor_id: str, limit: int = 100, *, app_schema: str | None = None
) -> list[AuditEntry]:
    """Everything one actor did, newest first (uses the actorId index)."""
    text_field("actor_id", actor_id)
    return _read(conn, sql.SQL('"actorId" = %s'), (actor_id,), limit, app_schema)


def get_recent_by_action(
    conn: psycopg.Connection,
    action: str,
    since: datetime | None = None,
    limit: int = 100,
    *,
    app_schema: str | None = None,
) -> list[AuditEntry]:
    """The latest rows of one action (e.g. admin.impersonate), optionally since a moment (UTC)."""
    _audit_action(action)
    if since is None:
        return _read(conn, sql.SQL("action = %s"), (action,), limit, app_schema)
    return _read(conn, sql.SQL('action = %s and "createdAt" >= %s'), (action, since), limit, app_schema)
