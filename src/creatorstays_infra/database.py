"""Which database we talk to, decided the same way everywhere (CLI, dbt, tests).

1. ``DATABASE_URL`` (or an explicit URL given to a command),
2. else the libpq ``PG*`` variables, when any of them is set,
3. else the embedded server kept under ``.csinfra/`` (``CSINFRA_STATE_DIR``), started on demand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import embedded
from .errors import DatabaseError

# libpq variables that, when set, select "your own server" (PGPASSWORD alone does not).
SELECTING_PG_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")
# conninfo keyword -> libpq environment variable
KEYWORD_TO_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


def project_root() -> Path:
    """The repository root: `CSINFRA_PROJECT_DIR`, else two levels above this package's `src/`."""
    env = os.environ.get("CSINFRA_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    env = os.environ.get("CSINFRA_STATE_DIR")
    return Path(env).resolve() if env else project_root() / ".csinfra"


def embedded_server() -> embedded.EmbeddedServer:
    return embedded.EmbeddedServer(state_dir())


@dataclass(frozen=True)
class Target:
    """A resolved database: a libpq conninfo plus where it came from."""

    conninfo: str
    source: str  # "DATABASE_URL", "PG* variables" or "embedded"
    params: dict[str, str] = field(default_factory=dict)

    def connect(self, **kwargs) -> psycopg.Connection:
        try:
            return psycopg.connect(self.conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"cannot connect to {self.describe()}: {_first_line(exc)}") from None

    def effective(self) -> dict[str, str]:
        """Connection parameters with the libpq environment folded in (for display and env export)."""
        merged = {kw: os.environ[var] for kw, var in KEYWORD_TO_ENV.items() if var in os.environ}
        merged.update(self.params)
        return merged

    def describe(self) -> str:
        """Where we connect, never with the password."""
        p = self.effective()
        host = p.get("host") or p.get("hostaddr") or "localhost"
        user = p.get("user") or os.environ.get("USER", "")
        port = p.get("port", "5432")
        db = p.get("dbname") or user
        return f"postgresql://{user}@{host}:{port}/{db} ({self.source})"

    def libpq_env(self) -> dict[str, str]:
        """The PG* variables that make plain `dbt`, `psql` and `pg_dump` reach this database."""
        return {KEYWORD_TO_ENV[k]: v for k, v in self.effective().items() if k in KEYWORD_TO_ENV}

    def with_dbname(self, dbname: str) -> Target:
        params = dict(self.effective())
        params["dbname"] = dbname
        return Target(conninfo=make_conninfo("", **params), source=self.source, params=params)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # libpq puts the useful part last ("connection refused", "password authentication failed")
    return lines[-1] if lines else exc.__class__.__name__


def resolve(database_url: str | None = None, *, start_embedded: bool = True) -> Target:
    url = database_url or os.environ.get("DATABASE_URL")
    if url:
        try:
            params = {k: str(v) for k, v in conninfo_to_dict(url).items()}
        except psycopg.ProgrammingError as exc:
            raise DatabaseError(f"DATABASE_URL is not a valid PostgreSQL URL or conninfo: {_first_line(exc)}") from None
        return Target(conninfo=url, source="DATABASE_URL", params=params)
    if any(os.environ.get(v) for v in SELECTING_PG_VARS):
        return Target(conninfo="", source="PG* variables", params={})
    server = embedded_server()
    info = server.start() if start_embedded else server.info()
    params = {"host": "127.0.0.1", "port": str(info.port), "user": embedded.SUPERUSER, "dbname": embedded.DEFAULT_DBNAME}
    return Target(conninfo=make_conninfo("", **params), source="embedded", params=params)
