"""Which database we talk to, decided the same way everywhere (CLI, dbt, tests).

1. ``DATABASE_URL`` (or an explicit URL given to a command),
2. else the libpq ``PG*`` variables, when any of them is set,
3. else the embedded server kept under ``.csinfra/`` (``CSINFRA_STATE_DIR``), started on demand.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import DatabaseError
from ..settings import project_root
from . import embedded

# Seconds a connection attempt may take, unless the URL or PGCONNECT_TIMEOUT says otherwise.
CONNECT_TIMEOUT = 10

# libpq variables that, when set, select "your own server" (PGPASSWORD alone does not).
SELECTING_PG_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")
# Connection parameters `db url` prints without --show-password: none of them holds a secret.
SHOWABLE_PARAMETERS = frozenset(
    {
        "passfile",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslcrldir",
        "sslnegotiation",
        "connect_timeout",
        "application_name",
        "target_session_attrs",
        "options",
        "service",
        "gssencmode",
        "channel_binding",
        "require_auth",
        "load_balance_hosts",
        "keepalives",
        "keepalives_idle",
    }
)

# conninfo keyword -> libpq environment variable
KEYWORD_TO_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
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
        if "connect_timeout" not in self.effective():
            kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
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

    def password(self) -> str | None:
        """The password libpq would send: the URL's, PGPASSWORD, else the password file's (embedded)."""
        p = self.effective()
        if p.get("password"):
            return p["password"]
        if p.get("passfile") and p.get("user") == embedded.SUPERUSER:
            return embedded.read_secret(Path(p["passfile"]))
        return None

    def url(self, *, show_password: bool = False) -> str:
        """A postgresql:// URL for this database; the password is left out unless asked for."""
        p = self.effective()
        user = quote(p.get("user") or os.environ.get("USER", ""), safe="")
        password = self.password() if show_password else None
        auth = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
        host = p.get("host") or p.get("hostaddr") or "localhost"
        netloc = f"[{host}]" if ":" in host and not host.startswith("/") else host
        if host.startswith("/"):
            netloc = quote(host, safe="")
        query = {k: v for k, v in p.items() if k not in ("user", "password", "host", "port", "dbname")}
        if show_password:
            query.pop("passfile", None)
        else:  # only what is known to hold no secret (sslpassword, say, does)
            query = {k: v for k, v in query.items() if k in SHOWABLE_PARAMETERS}
        tail = ("?" + urlencode(query)) if query else ""
        return f"postgresql://{auth}{netloc}:{p.get('port', '5432')}/{quote(p.get('dbname') or '', safe='')}{tail}"

    def as_user(self, user: str, password: str) -> Target:
        """The same database as another role (a password of its own; no password file)."""
        params = {k: v for k, v in self.effective().items() if k not in ("passfile", "password")}
        params.update(user=user, password=password)
        return Target(conninfo=make_conninfo("", **params), source=self.source, params=params)

    def with_dbname(self, dbname: str) -> Target:
        params = dict(self.effective())
        params["dbname"] = dbname
        return Target(conninfo=make_conninfo("", **params), source=self.source, params=params)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # libpq puts the useful part last ("connection refused", "password authentication failed")
    return lines[-1] if lines else exc.__class__.__name__


def _redacted(message: str, url: str) -> str:
    """The parser's message without the URL's password (libpq quotes the token it could not read)."""
    match = re.search(r"://[^/@:]*:([^@/]*)@", url)
    for secret in ({match.group(1), unquote(match.group(1))} if match else set()) | _conninfo_passwords(url):
        if secret:
            message = message.replace(secret, "***")
    return message


def _conninfo_passwords(text: str) -> set[str]:
    return {m.group(2) for m in re.finditer(r"\b(password|sslpassword)\s*=\s*'?([^'\s]*)", text)}


def resolve(database_url: str | None = None, *, start_embedded: bool = True) -> Target:
    url = database_url or os.environ.get("DATABASE_URL")
    if url:
        try:
            params = {k: str(v) for k, v in conninfo_to_dict(url).items()}
        except psycopg.ProgrammingError as exc:
            raise DatabaseError(
                f"DATABASE_URL is not a valid PostgreSQL URL or conninfo: {_redacted(_first_line(exc), url)}"
            ) from None
        return Target(conninfo=url, source="DATABASE_URL", params=params)
    if any(os.environ.get(v) for v in SELECTING_PG_VARS):
        return Target(conninfo="", source="PG* variables", params={})
    server = embedded_server()
    info = server.start() if start_embedded else server.info()
    params = {
        "host": embedded.HOST,
        "port": str(info.port),
        "user": embedded.SUPERUSER,
        "dbname": embedded.DEFAULT_DBNAME,
        "passfile": str(info.passfile),
    }
    return Target(conninfo=make_conninfo("", **params), source="embedded", params=params)
