"""Bounded waits for the online library: `lock_timeout` / `statement_timeout` around any call.

Every online function runs in the caller's transaction with the caller's settings, so a connection
configured with `options='-c lock_timeout=2s'` (or `SET lock_timeout`) already bounds them. For one
call, `with timeouts(conn, lock_timeout="2s"): …` sets the values and puts the previous ones back.
The audit and analytics writers also take `lock_timeout=` / `statement_timeout=` directly.

Why it matters: a rollback (`csinfra migrate down`) copies audit_logs and analytics_events into its
archive under a lock that blocks inserts for the length of the copy. Without a timeout an application
write waits that long; with one, an audit write raises (psycopg.errors.LockNotAvailable, the caller's
transaction is then aborted and must be rolled back) and an analytics write is dropped and counted,
never raising, as analytics writes always are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import pq

from . import settings
from .errors import ConfigurationError, ValidationError


def _checked(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return settings.duration(value, name)
    except ConfigurationError as exc:
        raise ValidationError(name, str(exc).split(": ", 1)[1]) from None


@contextlib.contextmanager
def timeouts(
    conn: psycopg.Connection, *, lock_timeout: str | None = None, statement_timeout: str | None = None
) -> Iterator[None]:
    """Set lock_timeout / statement_timeout (durations like '2s', '500ms') for the block, then restore them.
    None leaves a setting as it is. A bad value raises ValidationError naming it, before anything runs."""
    wanted = {
        name: value
        for name, value in (
            ("lock_timeout", _checked("lock_timeout", lock_timeout)),
            ("statement_timeout", _checked("statement_timeout", statement_timeout)),
        )
        if value is not None
    }
    if not wanted:
        yield
        return
    previous = {name: conn.execute("select current_setting(%s)", (name,)).fetchone()[0] for name in wanted}
    for name, value in wanted.items():
        conn.execute("select set_config(%s, %s, false)", (name, value))
    try:
        yield
    finally:
        # in a failed transaction the rollback undoes the SET anyway (and nothing else may run)
        if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.INERROR:
            for name, value in previous.items():
                conn.execute("select set_config(%s, %s, false)", (name, value))
