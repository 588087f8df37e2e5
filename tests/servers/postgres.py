"""A throw-away PostgreSQL 15 cluster (initdb + pg_ctl) on a free loopback port, for tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmd(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run its binaries as the `postgres` system user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PostgresServer:
    """Handle of a running cluster: `url(db)` gives a SQLAlchemy URL; `create_database(name)` makes one."""

    def __init__(self, datadir: Path, port: int) -> None:
        self.datadir = datadir
        self.port = port

    def url(self, db: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3) of database `db`."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """Create database `name` and return its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh cluster in a temp dir; stop it and delete the directory on exit."""
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            raise RuntimeError(f"PostgreSQL binary {PG_BIN / tool} is missing: install postgresql-15")
    base = Path(tempfile.mkdtemp(prefix="pgtest-"))
    datadir = base / "data"
    try:
        if os.geteuid() == 0:
            shutil.chown(base, user="postgres")
        subprocess.run(
            _cmd([str(PG_BIN / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True,
            capture_output=True,
        )
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} -c fsync=off"
        subprocess.run(
            _cmd([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l", str(base / "log"), "-w", "start"]),
            check=True,
            capture_output=True,
        )
        try:
            yield PostgresServer(datadir, port)
        finally:
            subprocess.run(
                _cmd([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
                check=False,
                capture_output=True,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
