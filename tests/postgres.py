"""A real PostgreSQL server for the tests, from Debian's postgresql package (15 on bookworm).

Import the fixtures into a test module (or a conftest) to use them:

    from tests.postgres import postgres_database, postgres_server  # noqa: F401

`postgres_server` starts one server per pytest worker, in a temporary folder, on a
free loopback port and with its unix socket in that folder, and stops it at the
end of the session. `postgres_database()` creates a database and a role with a
password (allowed to create databases, as Django's test runner needs) and returns
its DATABASE_URL.

initdb refuses to run as root, so as root the server runs as Debian's `postgres`
system user, in a folder that user owns; as anyone else it runs as that user.
Administration goes through the unix socket, where the superuser is trusted; TCP
connections, like the project's, must give their password (scram-sha-256).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support.binaries import PG_BIN
from .support.ports import free_port

# The superuser role initdb creates, whichever system user runs the server.
SUPERUSER = "postgres"
AS_ROOT = os.geteuid() == 0


@dataclass(frozen=True)
class PostgresServer:
    root: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket; return unaligned, tuples-only output."""
        result = subprocess.run(
            [
                PG_BIN / "psql", "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
                "--set=ON_ERROR_STOP=1", f"--host={self.socket_dir}", f"--port={self.port}",
                f"--username={SUPERUSER}", f"--dbname={database}", f"--command={sql}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def stop(self) -> None:
        """Stop the server (fast mode: open connections are closed); start() brings it back."""
        _check(
            _as_server_user(
                [PG_BIN / "pg_ctl", "stop", "--mode=fast", "--wait", f"--pgdata={self.data_dir}"],
                cwd=self.root,
            ),
            "pg_ctl stop",
        )

    def start(self) -> None:
        # Durability is irrelevant to a throwaway server: skip the fsyncs.
        options = (
            f"-c port={self.port} -c listen_addresses={self.host}"
            f" -c unix_socket_directories={self.socket_dir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c log_connections=on"
        )
        _check(
            _as_server_user(
                [
                    PG_BIN / "pg_ctl", "start", "--wait", "--timeout=60",
                    f"--pgdata={self.data_dir}", f"--log={self.log_file}", f"--options={options}",
                ],
                cwd=self.root,
            ),
            "pg_ctl start",
        )  # fmt: skip

    def create_database(self, prefix: str = "shipshape") -> str:
        """A fresh database owned by a fresh role with a password; its DATABASE_URL."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(18)
        self.psql(f"CREATE ROLE {name} LOGIN CREATEDB PASSWORD '{password}'")
        self.psql(f"CREATE DATABASE {name} OWNER {name}")
        return f"postgres://{name}:{password}@{self.host}:{self.port}/{name}"


def _as_server_user(args: list, cwd: Path) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if AS_ROOT else []
    return subprocess.run(
        [*prefix, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A server of its own, started here and stopped on leaving: one a test may stop."""
    # Not under pytest's tmp_path: its folders are 0700 root, closed to the postgres user.
    root = Path(tempfile.mkdtemp(prefix="shipshape-postgres-"))
    if AS_ROOT:
        shutil.chown(root, "postgres", "postgres")
    server = PostgresServer(root=root, port=free_port())
    try:
        _check(
            _as_server_user(
                [
                    PG_BIN / "initdb", f"--pgdata={server.data_dir}", f"--username={SUPERUSER}",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                    "--no-locale", "--no-sync",
                ],
                cwd=root,
            ),
            "initdb",
        )  # fmt: skip
        _as_server_user(["mkdir", server.socket_dir], cwd=root)
        server.start()
        yield server
    finally:
        if (server.data_dir / "postmaster.pid").exists():
            _as_server_user(
                [PG_BIN / "pg_ctl", "stop", "--mode=fast", "--wait", f"--pgdata={server.data_dir}"],
                cwd=root,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> Callable[..., str]:
    """Create a fresh database owned by a fresh role with a password; return its DATABASE_URL."""
    created = 0

    def create(prefix: str = "shipshape") -> str:
        nonlocal created
        created += 1
        name = f"{prefix}_{created}_{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(18)
        postgres_server.psql(f"CREATE ROLE {name} LOGIN CREATEDB PASSWORD '{password}'")
        postgres_server.psql(f"CREATE DATABASE {name} OWNER {name}")
        return f"postgres://{name}:{password}@{postgres_server.host}:{postgres_server.port}/{name}"

    return create
