"""Validation shared by the audit and analytics writers: text fields and JSON metadata (docs/rules.md §8).
A bad value raises ValidationError naming the field."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError

MAX_METADATA_BYTES = 64 * 1024


def text_field(name: str, value: Any, *, required: bool = True, max_len: int = 512) -> str | None:
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


def json_text(name: str, value: Any) -> tuple[dict, str]:
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


def json_object(name: str, value: Any) -> dict:
    return json_text(name, value)[0]


SYSTEM_ACTOR_ID = "system"


def actor_id_for(actor_type: str, actor_id: Any) -> str:
    """`"actorId"` is NOT NULL in the application's schema: system and cron writers use 'system' (docs/rules.md §8)."""
    if actor_id is None and actor_type in ("system", "cron"):
        return SYSTEM_ACTOR_ID
    text_field("actor_id", actor_id)
    return actor_id
