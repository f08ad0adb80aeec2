"""Analytics writes (docs/rules.md §8). An analytics write never breaks the caller: it runs in a savepoint, and
any failure (bad input included) is logged on the `creatorstays_infra.analytics` logger and counted
(`analytics_stats()`), never raised. `AnalyticsBatchWriter` writes high volumes with COPY."""

from __future__ import annotations

import logging
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
from ._payload import SYSTEM_ACTOR_ID, actor_id_for, json_text, text_field
from .errors import ValidationError
from .ids import new_id
from .timeouts import timeouts

log = logging.getLogger("creatorstays_infra.analytics")

ANALYTICS_ACTOR_TYPES = ("creator", "host", "visitor", "system")
ANALYTICS_EVENT_TYPES = (
    "offer_sent",
    "offer_responded",
    "collab_started",
    "collab_completed",
    "profile_viewed",
)
OFFER_RESPONSES = ("accepted", "declined", "countered")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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
        text_field("event_type", event_type, max_len=100)
        if not _EVENT_NAME.match(event_type):
            raise ValidationError("event_type", f"{event_type!r} is not a snake_case event name")
        if actor_type == "visitor" and actor_id is None:
            raise ValidationError(
                "actor_id",
                "is required (analytics_events.actorId is NOT NULL): pass the visitor's "
                "anonymous id, e.g. its session id",
            )
        actor_id = actor_id_for(actor_type, actor_id)
        text_field("session_id", session_id, required=False)
        data, text = json_text("event_data", event_data)
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
    """Two events, one for each side (docs/rules.md §8); returns both ids (None where a write failed)."""
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
