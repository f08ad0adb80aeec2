"""Names that are configurable, read from the environment with documented defaults."""

from __future__ import annotations

import os
import re

from .errors import ConfigurationError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def _schema_name(env: str, default: str) -> str:
    value = os.environ.get(env, default)
    if not _IDENT.match(value):
        raise ConfigurationError(f"{env}={value!r} is not a plain PostgreSQL schema name")
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
    if not _IDENT.match(value):
        raise ConfigurationError(f"{what} {value!r} is not a plain PostgreSQL schema name")
    return value
