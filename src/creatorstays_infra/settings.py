"""Names that are configurable, read from the environment with documented defaults."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from .errors import ConfigurationError


def project_root() -> Path:
    """The repository root: `CSINFRA_PROJECT_DIR`, else two levels above this package's `src/`."""
    env = os.environ.get("CSINFRA_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def dbt_target_dir() -> Path:
    """dbt's target path (run_results.json, manifest.json, csinfra's dbt logs): dbt's own `DBT_TARGET_PATH`
    (relative to the project), else `target/` in the project."""
    env = os.environ.get("DBT_TARGET_PATH")
    return (project_root() / env).resolve() if env else project_root() / "target"


# The schema names we accept, here and in the dbt macros (macros/utils/sql_safety.sql): plain identifiers.
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_IDENT_RULE = "letters, digits, _ and $, starting with a letter or _, at most 63 bytes"


def _plain(value: str) -> bool:
    return bool(_IDENT.fullmatch(value)) and len(value.encode()) <= 63


def _schema_name(env: str, default: str) -> str:
    value = os.environ.get(env, default)
    if not _plain(value):
        raise ConfigurationError(f"{env}={value!r} is not a plain PostgreSQL schema name ({_IDENT_RULE})")
    return value


def app_schema() -> str:
    """Schema of the application's tables (CSINFRA_APP_SCHEMA, default public)."""
    return _schema_name("CSINFRA_APP_SCHEMA", "public")


def dbt_schema() -> str:
    """Schema where dbt builds its views, marts and rule functions (CSINFRA_SCHEMA, default csinfra)."""
    return _schema_name("CSINFRA_SCHEMA", "csinfra")


def meta_schema() -> str:
    """Schema of the project's own ledger and run logs (CSINFRA_META_SCHEMA, default csinfra_meta)."""
    return _schema_name("CSINFRA_META_SCHEMA", "csinfra_meta")


def archive_schema() -> str:
    """Schema holding rows archived by rollbacks (CSINFRA_ARCHIVE_SCHEMA, default csinfra_archive)."""
    return _schema_name("CSINFRA_ARCHIVE_SCHEMA", "csinfra_archive")


def check_schema_name(value: str, what: str = "schema") -> str:
    if not isinstance(value, str) or not _plain(value):
        raise ConfigurationError(f"{what} {value!r} is not a plain PostgreSQL schema name ({_IDENT_RULE})")
    return value


# -- values that reach SQL as settings: parsed where they enter, refused with the option's name --------------
_DURATION = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,6})? ?(us|ms|s|min|h|d)?$")
_UNIT = r"(microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?|months?|years?)"
_INTERVAL = re.compile(rf"^[0-9]{{1,6}}(\.[0-9]{{1,6}})? ?{_UNIT}( [0-9]{{1,6}}(\.[0-9]{{1,6}})? ?{_UNIT})*$")


def duration(value: str, what: str) -> str:
    """A PostgreSQL duration setting (lock_timeout, statement_timeout): `500ms`, `5s`, `1min`, `0`."""
    text = str(value).strip()
    if not _DURATION.fullmatch(text):
        raise ConfigurationError(f"{what}: expected a duration like 5s or 500ms, got {value!r}")
    return text


def interval(value: str, what: str) -> str:
    """An interval: `3 days`, `12 hours`, `1 week 2 days`."""
    text = str(value).strip()
    if not _INTERVAL.fullmatch(text):
        raise ConfigurationError(f"{what}: expected an interval like '3 days' or '12 hours', got {value!r}")
    return text


def number(value: float, what: str, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite number within [minimum, maximum] (NaN and infinities are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{what}: expected a number, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"from {minimum:g}" if minimum is not None else ""
        bounds += (" " if bounds else "") + (f"up to {maximum:g}" if maximum is not None else "")
        raise ConfigurationError(f"{what}: expected a number {bounds}, got {value!r}")
    return value
