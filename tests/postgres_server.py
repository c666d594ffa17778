"""A real PostgreSQL server (Debian's binaries) in a temporary folder, reached on a unix socket only.

Use it from a test module with ``pytest_plugins = ["postgres_server"]`` and the ``postgres`` fixture (one server
for the session), or call ``running_postgres()`` directly. ``make test`` installs Debian's ``postgresql``;
the fixture skips, saying so, only when the server's binaries are absent.

PostgreSQL refuses to run as root, and tests run as root in CI: then initdb and the server run as the
``postgres`` system user (created when missing), which owns the temporary folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_ROOT = Path("/usr/lib/postgresql")  # Debian's layout: /usr/lib/postgresql/<major>/bin
RUN_AS = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    socket_dir: Path
    port: int

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}&port={self.port}"

    def new_database(self) -> str:
        """The URL of a new, empty database on this server."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.url(name)


def server_binaries() -> Path | None:
    """The newest installed major version's bin folder (the one holding initdb and pg_ctl)."""
    found = [p.parent for p in SERVER_ROOT.glob("*/bin/pg_ctl") if (p.parent / "initdb").exists()]
    return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0, default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> list[str]:
    """The command prefix that runs PostgreSQL's programs as a user it accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_AS],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", RUN_AS, "--"]


def _run(command: list[str], log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        raise RuntimeError(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}{server_log}"
        )


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A fresh cluster (trust authentication, no TCP listener) until the block ends, then stopped and deleted,
    also when the block fails."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(
            f"PostgreSQL's server is not installed (no {SERVER_ROOT}/*/bin/pg_ctl): "
            "apt-get install postgresql, which `make test` does"
        )
    as_user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="qa-pg-"))  # under /tmp: short enough for a socket path
    data, log = root / "data", root / "server.log"
    if as_user:
        shutil.chown(root, RUN_AS, RUN_AS)
    port = _free_port()
    started = False
    try:
        _run(
            [
                *as_user,
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = ''\nunix_socket_directories = '{root}'\nport = {port}\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        _run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"],
            log,
        )
        started = True
        yield PostgresServer(root, port)
    finally:
        if started:
            subprocess.run(
                [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session."""
    with running_postgres() as server:
        yield server
