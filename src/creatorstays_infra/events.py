"""Audit and analytics writes (SPEC section 8).

* An audit write is never silently lost: it is validated first (a specific ValidationError naming
  the field) and any database error propagates to the caller, inside the caller's transaction.
* An analytics write never breaks the caller: it runs in a savepoint, and any failure (bad input
  included) is logged and counted (`analytics_stats()`), never raised. `AnalyticsBatchWriter`
  writes high volumes with COPY.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import settings
from .errors import ValidationError
from .ids import new_id
from .timeouts import timeouts

log = logging.getLogger("creatorstays_infra.events")

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
ANALYTICS_ACTOR_TYPES = ("creator", "host", "visitor", "system")
ANALYTICS_EVENT_TYPES = (
    "offer_sent",
    "offer_responded",
    "collab_started",
    "collab_completed",
    "profile_viewed",
)
OFFER_RESPONSES = ("accepted", "declined", "countered")
MAX_METADATA_BYTES = 64 * 1024
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


# -- validation --------------------------------------------------------------------------------------
def _text(name: str, value: Any, *, required: bool = True, max_len: int = 512) -> str | None:
    if value is None:
        if required:
            raise ValidationError(name, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(name, f"must be a string, not {type(value).__name__}")
    if required and not value.strip():
        raise ValidationError(name, "must not be empty or blank")
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL characters")
    if len(value) > max_len:
        raise ValidationError(name, f"is {len(value)} characters long; at most {max_len}")
    return value


_FLAT_TYPES = (str, int, bool, type(None))


def _json_text(name: str, value: Any) -> tuple[dict, str]:
    """A JSON object of bounded size, strictly JSON (no NaN/Infinity, string keys, no custom objects),
    and its serialised text. Flat objects of plain values (the common case) take a fast path."""
    if value is None:
        return {}, "{}"
    if not isinstance(value, Mapping):
        raise ValidationError(name, f"must be a JSON object (a mapping), not {type(value).__name__}")
    flat = all(type(k) is str for k in value) and all(type(v) in _FLAT_TYPES for v in value.values())
    if not flat:
        _check_json(value, name)
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    if "\\u0000" in text:
        _check_json(value, name)  # names the field holding the NUL
    size = len(text.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ValidationError(name, f"is {size:,} bytes as JSON; at most {MAX_METADATA_BYTES:,}")
    return dict(value), text


def _check_json(v: Any, path: str) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValidationError(path, f"{v} is not valid JSON")
    if isinstance(v, str) and "\x00" in v:
        raise ValidationError(path, "must not contain NUL characters (jsonb cannot hold \\u0000)")
    if isinstance(v, Mapping):
        for k, item in v.items():
            if not isinstance(k, str):
                raise ValidationError(f"{path}.{k!r}", "JSON object keys must be strings")
            _check_json(item, f"{path}.{k}")
    elif isinstance(v, list | tuple):
        for i, item in enumerate(v):
            _check_json(item, f"{path}[{i}]")
    elif not isinstance(v, str | int | float | bool | type(None)):
        raise ValidationError(path, f"{type(v).__name__} is not JSON-serialisable")


def _json(name: str, value: Any) -> dict:
    return _json_text(name, value)[0]


def _audit_action(action: Any) -> str:
    _text("action", action, max_len=100)
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
    actor_id = _actor_id(actor_type, actor_id)
    _text("target_type", target_type, max_len=100)
    _text("target_id", target_id)
    _text("actor_email", actor_email, required=False)
    _text("ip_address", ip_address, required=False, max_len=64)
    _text("user_agent", user_agent, required=False, max_len=1024)
    meta = _json("metadata", metadata)
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


SYSTEM_ACTOR_ID = "system"


def _actor_id(actor_type: str, actor_id: Any) -> str:
    """`"actorId"` is NOT NULL in the application's schema: system and cron writers use 'system' (SPEC section 8)."""
    if actor_id is None and actor_type in ("system", "cron"):
        return SYSTEM_ACTOR_ID
    _text("actor_id", actor_id)
    return actor_id


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
    _text("offer_id", offer_id)
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
    _text("collab_id", collab_id)
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
    _text("admin_id", admin_id)
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
    _text("target_type", target_type)
    _text("target_id", target_id)
    return _read(
        conn, sql.SQL('"targetType" = %s and "targetId" = %s'), (target_type, target_id), limit, app_schema
    )


def get_actor_activity(
    conn: psycopg.Connection, actor_id: str, limit: int = 100, *, app_schema: str | None = None
) -> list[AuditEntry]:
    """Everything one actor did, newest first (uses the actorId index)."""
    _text("actor_id", actor_id)
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


# -- analytics --------------------------------------------------------------------------------------------
_stats: Counter[str] = Counter()
_stats_lock = threading.Lock()


def analytics_stats() -> dict[str, int]:
    """Counts since start (or reset): written, failed, and failed by reason."""
    with _stats_lock:
        return dict(_stats)


def reset_analytics_stats() -> None:
    with _stats_lock:
        _stats.clear()


def _count(key: str, n: int = 1) -> None:
    with _stats_lock:
        _stats[key] += n


@dataclass(frozen=True)
class AnalyticsEvent:
    actor_type: str
    actor_id: str | None
    event_type: str
    event_data: dict
    session_id: str | None = None
    event_data_json: str = "{}"

    @classmethod
    def build(
        cls, actor_type: Any, actor_id: Any, event_type: Any, event_data: Any = None, session_id: Any = None
    ) -> AnalyticsEvent:
        if actor_type not in ANALYTICS_ACTOR_TYPES:
            raise ValidationError(
                "actor_type",
                f"unknown analytics actor type {actor_type!r} (known: {', '.join(ANALYTICS_ACTOR_TYPES)})",
            )
        _text("event_type", event_type, max_len=100)
        if not _EVENT_NAME.match(event_type):
            raise ValidationError("event_type", f"{event_type!r} is not a snake_case event name")
        if actor_type == "visitor" and actor_id is None:
            raise ValidationError(
                "actor_id",
                "is required (analytics_events.actorId is NOT NULL): pass the visitor's "
                "anonymous id, e.g. its session id",
            )
        actor_id = _actor_id(actor_type, actor_id)
        _text("session_id", session_id, required=False)
        data, text = _json_text("event_data", event_data)
        return cls(actor_type, actor_id, event_type, data, session_id, text)


def _failed(exc: BaseException, event_type: Any) -> None:
    reason = f"field {exc.field}" if isinstance(exc, ValidationError) else type(exc).__name__
    _count("failed")
    _count(f"failed: {reason}")
    log.warning("analytics event %r not written: %s", event_type, exc)


def log_analytics_event(
    conn: psycopg.Connection,
    actor_type: str,
    actor_id: str | None,
    event_type: str,
    event_data: Mapping[str, Any] | None = None,
    session_id: str | None = None,
    *,
    app_schema: str | None = None,
    lock_timeout: str | None = None,
    statement_timeout: str | None = None,
) -> str | None:
    """Write one analytics event in a savepoint of the caller's transaction. Never raises: on any failure
    (bad input, database error, `lock_timeout` / `statement_timeout` exceeded) the caller's transaction is
    intact, the failure is logged and counted, and None is returned; otherwise the event's id."""
    try:
        event = AnalyticsEvent.build(actor_type, actor_id, event_type, event_data, session_id)
        event_id = new_id()
        with (
            conn.transaction(),
            timeouts(conn, lock_timeout=lock_timeout, statement_timeout=statement_timeout),
        ):
            conn.execute(
                sql.SQL(
                    """insert into {} (id, "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt")
                       values (%s, %s, %s, %s, %s, %s, (now() at time zone 'UTC')::timestamp(3))"""
                ).format(sql.Identifier(app_schema or settings.app_schema(), "analytics_events")),
                (
                    event_id,
                    event.actor_type,
                    event.actor_id,
                    event.event_type,
                    Jsonb(event.event_data),
                    event.session_id,
                ),
            )
        _count("written")
        return event_id
    except Exception as exc:  # noqa: BLE001 — by contract an analytics write never breaks the caller
        _failed(exc, event_type)
        return None


def log_offer_sent(
    conn, host_profile_id: str, offer_id: str, creator_profile_id: str, total_value_cents: int | None, **kw
):
    return log_analytics_event(
        conn,
        "host",
        host_profile_id,
        "offer_sent",
        {"offerId": offer_id, "creatorProfileId": creator_profile_id, "totalValueCents": total_value_cents},
        **kw,
    )


def log_offer_responded(
    conn, creator_profile_id: str, offer_id: str, response: str, host_profile_id: str, **kw
):
    if response not in OFFER_RESPONSES:
        _failed(
            ValidationError("response", f"must be one of {', '.join(OFFER_RESPONSES)}, not {response!r}"),
            "offer_responded",
        )
        return None
    return log_analytics_event(
        conn,
        "creator",
        creator_profile_id,
        "offer_responded",
        {"offerId": offer_id, "response": response, "hostProfileId": host_profile_id},
        **kw,
    )


def log_collab_started(
    conn, collab_id: str, creator_profile_id: str, host_profile_id: str, total_value_cents: int | None, **kw
):
    """Two events, one for each side (SPEC section 8); returns both ids (None where a write failed)."""
    creator = log_analytics_event(
        conn,
        "creator",
        creator_profile_id,
        "collab_started",
        {
            "collabId": collab_id,
            "hostProfileId": host_profile_id,
            "totalValueCents": total_value_cents,
            "role": "creator",
        },
        **kw,
    )
    host = log_analytics_event(
        conn,
        "host",
        host_profile_id,
        "collab_started",
        {
            "collabId": collab_id,
            "creatorProfileId": creator_profile_id,
            "totalValueCents": total_value_cents,
            "role": "host",
        },
        **kw,
    )
    return creator, host


def log_collab_completed(
    conn, collab_id: str, creator_profile_id: str, host_profile_id: str, total_value_cents: int | None, **kw
):
    return log_analytics_event(
        conn,
        "system",
        SYSTEM_ACTOR_ID,
        "collab_completed",
        {
            "collabId": collab_id,
            "creatorProfileId": creator_profile_id,
            "hostProfileId": host_profile_id,
            "totalValueCents": total_value_cents,
        },
        **kw,
    )


def log_profile_viewed(conn, host_profile_id: str, creator_profile_id: str, source: str = "search", **kw):
    return log_analytics_event(
        conn,
        "host",
        host_profile_id,
        "profile_viewed",
        {"creatorProfileId": creator_profile_id, "source": source},
        **kw,
    )


class AnalyticsBatchWriter:
    """High-volume analytics writes with COPY, in batches, on a connection of its own.

        with AnalyticsBatchWriter(target.connect(autocommit=True)) as writer:
            writer.add("host", host_id, "profile_viewed", {"creatorProfileId": cid, "source": "search"})

    Bad events are rejected on `add` (logged and counted, never raised). A batch that COPY cannot
    write is retried event by event, so one bad row loses only itself. `flush()` returns the number
    of events written; `close()` flushes and closes the connection.
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        batch_size: int = 10_000,
        *,
        app_schema: str | None = None,
        close_connection: bool = True,
    ):
        if batch_size < 1:
            raise ValidationError("batch_size", "must be at least 1")
        self.conn = conn
        self.batch_size = batch_size
        self.close_connection = close_connection
        self.table = sql.Identifier(app_schema or settings.app_schema(), "analytics_events")
        self._rows: list[tuple] = []
        self.written = 0
        self.failed = 0

    def add(
        self,
        actor_type: str,
        actor_id: str | None,
        event_type: str,
        event_data: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        created_at: datetime | None = None,
    ) -> bool:
        try:
            e = AnalyticsEvent.build(actor_type, actor_id, event_type, event_data, session_id)
        except ValidationError as exc:
            self.failed += 1
            _failed(exc, event_type)
            return False
        self._rows.append(
            (new_id(), e.actor_type, e.actor_id, e.event_type, e.event_data_json, e.session_id, created_at)
        )
        if len(self._rows) >= self.batch_size:
            self.flush()
        return True

    def add_many(self, events: Iterable[Mapping[str, Any]]) -> None:
        for e in events:
            self.add(**e)

    def flush(self) -> int:
        rows, self._rows = self._rows, []
        if not rows:
            return 0
        copy_sql = sql.SQL(
            'copy {} (id, "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt") from stdin'
        ).format(self.table)
        try:
            with self.conn.transaction(), self.conn.cursor() as cur, cur.copy(copy_sql) as copy:
                now = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, like the ORM's TIMESTAMP(3)
                for r in rows:
                    copy.write_row((*r[:6], r[6] or now))
            self.written += len(rows)
            _count("written", len(rows))
            return len(rows)
        except Exception as exc:  # noqa: BLE001 — salvage row by row, never raise
            log.warning("COPY of %d analytics events failed (%s); retrying one by one", len(rows), exc)
            return self._one_by_one(rows)

    def _one_by_one(self, rows: list[tuple]) -> int:
        ok = 0
        for r in rows:
            try:
                with self.conn.transaction():
                    self.conn.execute(
                        sql.SQL(
                            'insert into {} (id, "actorType", "actorId", "eventType", "eventData", "sessionId", "createdAt") '
                            "values (%s, %s, %s, %s, %s::jsonb, %s, coalesce(%s, (now() at time zone 'UTC')::timestamp(3)))"
                        ).format(self.table),
                        r,
                    )
                ok += 1
            except Exception as exc:  # noqa: BLE001
                self.failed += 1
                _failed(exc, r[3])
        self.written += ok
        _count("written", ok)
        return ok

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.close_connection:
                self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
