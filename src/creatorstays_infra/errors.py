"""Exceptions. Every message names the thing that is wrong."""

from __future__ import annotations


class CsinfraError(Exception):
    """Base class: a failure we can explain in one line."""


class DatabaseError(CsinfraError):
    """The database cannot be reached or used."""


class ConfigurationError(CsinfraError):
    """A setting (environment variable, option, dbt var) is wrong."""


class MigrationError(CsinfraError):
    """A migration step refused to run or failed; the database is unchanged."""


class LockTimeout(MigrationError):
    """A lock could not be obtained within lock_timeout, after every retry."""


class ValidationError(CsinfraError, ValueError):
    """Bad input to a library function; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class NotFoundError(CsinfraError, LookupError):
    """A row the caller named does not exist."""


class ConflictError(CsinfraError):
    """Someone else changed the row first (a stale read); nothing was written."""
