"""The systemd units and the runbook, run for real: a fresh Debian 12 server that boots
systemd as PID 1, deployed by the rendered RUNBOOK.md's own first-deploy commands
(tests/deploy/systemd_host.py), reached over TLS through ports published on 127.0.0.1.

One server per proxy, shared by its tests (one xdist group each) and removed at the
end of the session.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from contextlib import ExitStack

import pytest

from ..support.client import DROPPED, Client
from .systemd_host import (
    SystemdServer,
    push_release,
    release_substitutions,
    rollback_substitutions,
    runbook_section,
    start_systemd_server,
)

RECOVERY_SECONDS = 15.0
SERVERS = [
    pytest.param(("nginx", "sqlite"), id="nginx-sqlite",
                 marks=pytest.mark.xdist_group("systemd-nginx-sqlite")),
    pytest.param(("caddy", "sqlite"), id="caddy-sqlite",
                 marks=pytest.mark.xdist_group("systemd-caddy-sqlite")),
]  # fmt: skip


@pytest.fixture(scope="session")
def systemd_server(engine, template_repo, tmp_path_factory, deploy_ca):
    servers: dict[tuple[str, str], SystemdServer] = {}
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    with ExitStack() as cleanup:

        def get(proxy: str, database: str) -> SystemdServer:
            if (proxy, database) not in servers:
                started = time.monotonic()
                servers[proxy, database] = start_systemd_server(
                    cleanup, template=template_repo, ca=deploy_ca, proxy=proxy,
                    database=database, run_id=run_id,
                    workdir=tmp_path_factory.mktemp(f"systemd-{proxy}-{database}"),
                )  # fmt: skip
                server = servers[proxy, database]
                print(f"\n{server.name}: booted and deployed by the runbook in "
                      f"{time.monotonic() - started:.1f} s (first deploy {server.deploy_seconds:.1f} s)")  # fmt: skip
            return servers[proxy, database]

        yield get


@pytest.fixture(params=SERVERS)
def served(request, systemd_server):
    server = systemd_server(*request.param)
    return server, Client(server.ca_path, server.http_port, server.https_port)


# What concerns the unit and the runbook rather than the proxy runs on the first server only.
@pytest.fixture(params=SERVERS[:1])
def unit_served(request, systemd_server):
    server = systemd_server(*request.param)
    return server, Client(server.ca_path, server.http_port, server.https_port)


def home(server: SystemdServer, client: Client, host: str | None = None):
    """GET / as a browser sends it to the public name (Host without the test's port)."""
    host = host or server.domain
    return client.get("/", host=host, host_header=host)


def test_the_runbooks_first_deploy_serves_every_host_over_tls(served):
    server, client = served
    for host in server.hosts:
        response = home(server, client, host)
        assert response.status_code == 200, f"{host}: {response.status_code}\n{server.journal()}"
    # The runbook's own smoke test ran at the end of the first deploy, and passed.
    assert "manage smoketest https://example.com" in server.deploy_output


def test_socket_activation_starts_gunicorn_on_the_first_request(served):
    server, client = served
    server.systemctl("stop", "my_site.service")
    assert server.systemctl("is-active", "my_site.service", check=False) == "inactive"
    # The socket outlives the service: systemd keeps listening on it.
    assert server.systemctl("is-active", "my_site.socket") == "active"
    response = home(server, client)
    assert response.status_code == 200, server.journal()
    assert server.systemctl("is-active", "my_site.service") == "active"


def test_reload_under_continuous_requests_fails_none(served):
    server, client = served
    main_pid = server.systemctl("show", "--property=MainPID", "--value", "my_site.service")
    workers_before = set(server.sh(f"pgrep --parent {main_pid}\n").stdout.split())
    counts = {"ok": 0, "failed": 0}
    failures: list[str] = []
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            try:
                status = home(server, client).status_code
            except DROPPED as exc:
                status = repr(exc)
            if status == 200:
                counts["ok"] += 1
            else:
                counts["failed"] += 1
                failures.append(str(status))

    sender = threading.Thread(target=send)
    sender.start()
    try:
        for _ in range(3):
            time.sleep(1.5)
            server.systemctl("reload", "my_site.service")
        time.sleep(3)
    finally:
        stop.set()
        sender.join()
    workers_after = set(server.sh(f"pgrep --parent {main_pid}\n").stdout.split())
    print(f"\nrequests during 3 reloads: {counts['ok']} answered, {counts['failed']} failed")
    assert counts["failed"] == 0, failures[:10]
    assert counts["ok"] >= 20
    # The reloads replaced every worker, under the same main process.
    assert workers_after and not workers_after & workers_before
    assert server.systemctl("show", "--property=MainPID", "--value", "my_site") == main_pid


def test_a_killed_gunicorn_is_restarted_and_answers_again_within_seconds(unit_served):
    server, client = unit_served
    main_pid = server.systemctl("show", "--property=MainPID", "--value", "my_site.service")
    since = server.sh("date '+%Y-%m-%d %H:%M:%S'\n").stdout.strip()
    started = time.monotonic()
    server.sh(f"kill -s KILL {main_pid}\n")
    # Restart=on-failure brings it back after RestartSec=2s, or the socket does at
    # once when a request arrives first. Workers left without their main process may
    # answer for a moment: only a new main process, ready, counts.
    while time.monotonic() - started < RECOVERY_SECONDS:
        state = server.sh("systemctl show --property=ActiveState,MainPID my_site.service\n")
        values = dict(line.split("=", 1) for line in state.stdout.split())
        if values["ActiveState"] == "active" and values["MainPID"] not in ("0", main_pid):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"my_site.service did not come back within {RECOVERY_SECONDS:.0f} s")
    assert home(server, client).status_code == 200
    seconds = time.monotonic() - started
    print(f"\nanswering again {seconds:.1f} s after SIGKILL of gunicorn's main process")
    messages = [e.get("MESSAGE", "") for e in server.journal_json("my_site.service", since=since)]
    assert "my_site.service: Main process exited, code=killed, status=9/KILL" in messages


def test_the_running_unit_scores_at_most_2_in_systemd_analyze_security(unit_served):
    server, _ = unit_served
    report = server.sh("systemd-analyze security --no-pager my_site.service\n").stdout
    score = float(re.search(r"Overall exposure level for my_site.service: ([0-9.]+)", report)[1])
    print(f"\nsystemd-analyze security my_site.service on the server: {score}")
    assert score <= 2.0, report


def test_an_upload_stored_by_django_is_served_by_the_proxy(served):
    server, client = served
    folder = uuid.uuid4().hex
    name = f"{folder}/upload.txt"
    # As the service stores it: under the unit's UMask=0027 the folder Django makes is
    # open to the service's group only (Django sets no folder permissions by default),
    # so the proxy reaches the file only because its user joined that group.
    stored = (
        server.runbook_shell(
            'umask 0027\nmanage shell -c "from django.core.files.base import ContentFile; '
            "from django.core.files.storage import default_storage; "
            f"print(default_storage.save('{name}', ContentFile(b'uploaded through Django')))\"\n"
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert stored == name
    owner = server.sh(f"stat -c '%U:%G %a' /srv/my_site/media/{folder}\n").stdout.strip()
    assert owner == "my_site:my_site 750"
    response = client.get(f"/media/{name}", host=server.domain, host_header=server.domain)
    assert response.status_code == 200, server.journal(server.proxy)
    assert response.text == "uploaded through Django"


def test_the_journal_has_the_access_log_and_the_disallowed_host_message(served):
    server, client = served
    probe = uuid.uuid4().hex
    since = server.sh("date '+%Y-%m-%d %H:%M:%S'\n").stdout.strip()
    assert client.get(f"/?probe={probe}", host=server.domain,
                      host_header=server.domain).status_code == 200  # fmt: skip
    # The proxy closes a forged Host itself: only a client on the server reaches gunicorn with one.
    server.sh("curl --silent --unix-socket /run/my_site/gunicorn.sock"
              " --header 'Host: evil.example.net' http://evil.example.net/\n")  # fmt: skip
    time.sleep(0.5)
    entries = server.journal_json("my_site.service", since=since)
    messages = [entry.get("MESSAGE", "") for entry in entries]
    assert any(
        f'"GET /?probe={probe} HTTP/1.0" 200' in message
        or f'"GET /?probe={probe} HTTP/1.1" 200' in message
        for message in messages
    ), messages
    disallowed = [
        e for e in entries if "Invalid HTTP_HOST header: 'evil.example.net'" in e.get("MESSAGE", "")
    ]
    assert disallowed, messages
    # The journal cannot tell its level: the project's console handler prints the
    # message alone, which journald files at PRIORITY 6 (info) like every stderr line.
    print(
        f"\nDisallowedHost in the journal: {disallowed[0]['MESSAGE'][:80]!r} PRIORITY={disallowed[0].get('PRIORITY')}"
    )


def test_sqlite_lives_in_the_state_directory_and_survives_a_reboot(unit_served):
    server, client = unit_served
    assert server.systemctl("show", "--property=StateDirectory", "--value", "my_site") == "my_site"
    server.manage("createsuperuser", "--noinput", "--username", "survivor",
                  "--email", "survivor@example.com")  # fmt: skip
    owner = server.sh("stat -c '%U:%G' /var/lib/my_site/db.sqlite3\n").stdout.strip()
    assert owner == "my_site:my_site"
    started = time.monotonic()
    server.reboot()
    booted = time.monotonic() - started
    # The first request after boot: the socket was listening, gunicorn answers it.
    response = home(server, client)
    assert response.status_code == 200, server.journal()
    assert server.systemctl("is-active", "my_site.socket", "my_site.service").split() == [
        "active",
        "active",
    ]
    print(f"\nrebooted in {booted:.1f} s; first request after boot: {response.status_code}")
    count = server.manage("shell", "-c", "from django.contrib.auth.models import User; "
                          "print(User.objects.filter(username='survivor').count())")  # fmt: skip
    assert count.stdout.strip().splitlines()[-1] == "1"


def test_a_release_then_a_broken_one_rolled_back_by_the_runbook(unit_served):
    server, client = unit_served
    server.manage("createsuperuser", "--noinput", "--username", "made-under-a",
                  "--email", "a@example.com")  # fmt: skip

    def release_b(project):
        home_page = project / "my_site" / "templates" / "home.html"
        home_page.write_text(home_page.read_text().replace("It works.", "Release B works."))

    def release_c(project):
        # A page that raises: the home page names a URL that does not exist.
        home_page = project / "my_site" / "templates" / "home.html"
        home_page.write_text(home_page.read_text().replace("<h1>", "<h1>{% url 'gone' %}"))

    # B, as the runbook releases it, while a client sends requests continuously.
    tag_b = f"release-b-{uuid.uuid4().hex[:6]}"
    push_release(server, tag_b, release_b)
    counts, stop = {"ok": 0, "failed": 0}, threading.Event()

    def send() -> None:
        while not stop.is_set():
            try:
                ok = home(server, client).status_code == 200
            except DROPPED:
                ok = False
            counts["ok" if ok else "failed"] += 1

    sender = threading.Thread(target=send)
    sender.start()
    try:
        runbook_section(
            server, "Every release", release_substitutions(tag_b, server.admin_password)
        )
        time.sleep(2)
    finally:
        stop.set()
        sender.join()
    print(f"\nrequests during the release of B: {counts['ok']} answered, {counts['failed']} failed")
    assert counts["failed"] == 0
    assert "Release B works." in home(server, client).text

    # C breaks the home page; the release's own smoke test stops it.
    tag_c = f"release-c-{uuid.uuid4().hex[:6]}"
    push_release(server, tag_c, release_c)
    broken = runbook_section(server, "Every release",
                             release_substitutions(tag_c, server.admin_password), check=False)  # fmt: skip
    assert broken.returncode != 0
    assert "CommandError: failed: https-served" in broken.stderr, broken.stdout[-3000:]
    assert home(server, client).status_code == 500

    # The runbook's rollback, as written: B again, its smoke test passing.
    runbook_section(server, "Rollback", rollback_substitutions())
    response = home(server, client)
    assert response.status_code == 200 and "Release B works." in response.text
    count = server.manage("shell", "-c", "from django.contrib.auth.models import User; "
                          "print(User.objects.filter(username='made-under-a').count())")  # fmt: skip
    assert count.stdout.strip().splitlines()[-1] == "1"
