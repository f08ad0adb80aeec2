"""ORM-compatible text ids: cuid-shaped ('c' + 12 hex digits of epoch milliseconds + 12 random hex),
25 lowercase characters, roughly time-ordered. The SQL macro csinfra_new_id() writes the same shape."""

from __future__ import annotations

import secrets
import time


def new_id() -> str:
    return "c" + f"{time.time_ns() // 1_000_000:012x}" + secrets.token_hex(6)
