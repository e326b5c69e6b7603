"""Readiness beside liveness, over real HTTP: gunicorn as deploy/ runs it, a real PostgreSQL.

The project is served behind the load balancer stand-in, so gunicorn listens on TCP and
is probed the way a load balancer or the kubelet probes it: directly, over plain HTTP,
with the instance's (the pod's) IP as Host. The PostgreSQL server is this module's own,
since the tests stop and start it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from ..postgres import PostgresServer, running_postgres
from ..support.ports import free_port
from ..support.processes import STARTUP_TIMEOUT, wait_until
from ..support.stack import Stack, start_gunicorn, start_stack
from ..test_bundled_checks import smoketest

pytestmark = pytest.mark.xdist_group("e2e-readiness")

HEALTH_PATH = "/healthz"
READINESS_PATH = "/readyz"
# What the kubelet sends: the pod's IP and port.
POD_HOST = "10.244.1.7:8000"
# gunicorn runs WEB_CONCURRENCY=2 workers, each with its own state: enough probes that
# both answer.
PROBES = 8
REMOVE_A_MIGRATION = (
    "DELETE FROM django_migrations WHERE app = 'sessions' AND name = '0001_initial'"
)


@pytest.fixture(scope="module")
def database() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def served(template_repo, project_python, tmp_path_factory, e2e_ca, database) -> Iterator[Stack]:
    with ExitStack() as cleanup:
        yield start_stack(
            cleanup, template=template_repo, workdir=tmp_path_factory.mktemp("e2e-readiness"),
            python=project_python("5.2"), ca=e2e_ca, proxy="load_balancer",
            database="postgres", database_url=database.create_database("readiness"),
        )  # fmt: skip


def probe(
    address: tuple[str, int], path: str, host: str = POD_HOST, timeout: float = 10
) -> httpx.Response:
    host_ip, port = address
    return httpx.get(f"http://{host_ip}:{port}{path}", headers={"Host": host}, timeout=timeout)


def lives(address: tuple[str, int]) -> bool:
    try:
        return httpx.get(
            f"http://{address[0]}:{address[1]}{HEALTH_PATH}",
            headers={"Host": POD_HOST},
            timeout=STARTUP_TIMEOUT,
        ).is_success
    except httpx.TransportError:
        return False


def answers(address: tuple[str, int], path: str) -> set[tuple[int, str]]:
    """Every distinct (status, body) that PROBES probes in a row got."""
    return {(r.status_code, r.text) for r in (probe(address, path) for _ in range(PROBES))}


def test_readiness_with_the_pod_ip_as_host_is_answered_and_other_paths_are_not(served):
    address = served.gunicorn_address
    assert answers(address, READINESS_PATH) == {(200, "ok\n")}
    response = httpx.head(
        f"http://{address[0]}:{address[1]}{READINESS_PATH}", headers={"Host": POD_HOST}
    )
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    for path in ("/", READINESS_PATH + "/", "/admin/login/"):
        assert probe(address, path).status_code == 400, path


def test_readiness_answers_503_database_while_the_database_is_stopped(served, database):
    address = served.gunicorn_address
    assert answers(address, READINESS_PATH) == {(200, "ok\n")}
    assert ready_check(served) == ("pass", "200 ok")
    database.stop()
    try:
        assert answers(address, READINESS_PATH) == {(503, "database\n")}, served.logs()
        # Liveness stays a cheap answer: an outage of the database restarts nothing.
        assert answers(address, HEALTH_PATH) == {(200, "ok\n")}
        # smoketest, through the load balancer stand-in, says which.
        assert ready_check(served) == ("fail", "503 database")
    finally:
        database.start()
    assert answers(address, READINESS_PATH) == {(200, "ok\n")}, served.logs()


def ready_check(served: Stack) -> tuple[str, str]:
    """smoketest's `ready` result against the stack's public URL."""
    report = smoketest(served, served.https_port, served.http_port, login=False)
    (ready,) = [r for r in report["results"] if r["id"] == "ready"]
    return ready["status"], ready["detail"]


def test_readiness_answers_503_migrations_until_migrate_has_run(served, database, tmp_path):
    """A release's pods start before its migrations ran: their readiness says so.

    The stack's database is migrated; the record of one migration is removed, which is
    what Django sees when a release brings a migration the database lacks. A new
    gunicorn (the new release's pod) starts on it, then `migrate` runs.
    """
    database_name = served.env["DATABASE_URL"].rsplit("/", 1)[1]
    database.psql(REMOVE_A_MIGRATION, database=database_name)
    port = free_port()
    gunicorn = start_gunicorn(served, tmp_path / "gunicorn.log", binds=(f"127.0.0.1:{port}",))
    try:
        address = ("127.0.0.1", port)
        # The socket accepts before a worker has loaded Django: wait for one to answer.
        wait_until(lambda: lives(address), [gunicorn], "gunicorn's workers")
        assert answers(address, READINESS_PATH) == {(503, "migrations\n")}, gunicorn.tail()
        assert answers(address, HEALTH_PATH) == {(200, "ok\n")}
        # The sessions table is there: migrate records the migration without running it.
        migrated = served.manage("migrate", "--noinput", "--fake-initial")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert "0001_initial... FAKED" in migrated.stdout
        assert answers(address, READINESS_PATH) == {(200, "ok\n")}
        # Once every migration was applied, a probe asks the database for one row and
        # no longer reads the migrations: the record removed again goes unnoticed.
        database.psql(REMOVE_A_MIGRATION, database=database_name)
        assert answers(address, READINESS_PATH) == {(200, "ok\n")}
    finally:
        gunicorn.stop()
        restored = served.manage("migrate", "--noinput", "--fake-initial")
        assert restored.returncode == 0, restored.stdout + restored.stderr


def test_readiness_answers_503_database_within_seconds_when_the_server_never_answers(
    served, tmp_path
):
    """A database host that accepts connections and never answers (a hung server, a
    firewall that drops replies) fails the probe within DATABASE_URL's connect timeout
    (5 s unless it says otherwise) instead of holding a gunicorn thread."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:
        port, gunicorn_port = silent.getsockname()[1], free_port()
        env = {**served.env, "DATABASE_URL": f"postgres://u:p@127.0.0.1:{port}/readiness"}
        gunicorn = start_gunicorn(
            served, tmp_path / "gunicorn.log", binds=(f"127.0.0.1:{gunicorn_port}",), env=env
        )
        try:
            address = ("127.0.0.1", gunicorn_port)
            wait_until(lambda: lives(address), [gunicorn], "gunicorn's workers")
            started = time.monotonic()
            response = probe(address, READINESS_PATH, timeout=30)
            took = time.monotonic() - started
            assert (response.status_code, response.text) == (503, "database\n"), gunicorn.tail()
            assert 4 < took < 15, f"{took:.1f} s"
        finally:
            gunicorn.stop()
