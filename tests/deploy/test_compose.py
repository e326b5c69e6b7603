"""compose.yaml and the Dockerfile, run for real: `docker compose up --wait` on the
suite's engine, reached over TLS through ports published on 127.0.0.1 only.

Each combination of proxy and database is one stack, shared by its tests (one
xdist group each), and taken down with its volumes at the end of the session.
Behind a load balancer, a TLS-terminating nginx on the host stands in for it and
forwards every Host, as most load balancers do: Django refuses a forged one.
"""

from __future__ import annotations

import pytest

from ..support.client import DROPPED, Client, cookie_header, log_in_to_admin, stylesheets

EVIL = "evil.example.net"
COMBINATIONS = [
    pytest.param(("nginx", "sqlite"), id="nginx-sqlite",
                 marks=pytest.mark.xdist_group("compose-nginx-sqlite")),
    pytest.param(("nginx", "postgres"), id="nginx-postgres",
                 marks=pytest.mark.xdist_group("compose-nginx-postgres")),
    pytest.param(("caddy", "sqlite"), id="caddy-sqlite",
                 marks=pytest.mark.xdist_group("compose-caddy-sqlite")),
    pytest.param(("caddy", "postgres"), id="caddy-postgres",
                 marks=pytest.mark.xdist_group("compose-caddy-postgres")),
    pytest.param(("load_balancer", "sqlite"), id="load_balancer-sqlite",
                 marks=pytest.mark.xdist_group("compose-load_balancer-sqlite")),
    pytest.param(("load_balancer", "postgres"), id="load_balancer-postgres",
                 marks=pytest.mark.xdist_group("compose-load_balancer-postgres")),
]  # fmt: skip
PROXIED = [c for c in COMBINATIONS if not c.id.startswith("load_balancer")]
BEHIND_LOAD_BALANCER = [c for c in COMBINATIONS if c.id.startswith("load_balancer")]


@pytest.fixture(params=COMBINATIONS)
def served(request, compose_stack):
    stack = compose_stack(*request.param)
    return stack, Client(stack.ca_path, stack.http_port, stack.https_port)


def test_every_host_is_served_over_tls(served):
    stack, client = served
    for host in stack.hosts:
        response = client.get("/", host=host)
        assert response.status_code == 200, f"{host}: {response.status_code}\n{stack.logs()}"


@pytest.mark.parametrize("served", PROXIED, indirect=True)
def test_a_forged_host_is_dropped_by_the_proxy(served):
    stack, client = served
    for host_header in (EVIL, f"{EVIL}:{stack.https_port}"):
        try:
            response = client.get("/", host=stack.domain, host_header=host_header)
        except DROPPED:
            continue
        pytest.fail(f"Host {host_header} answered {response.status_code}")


@pytest.mark.parametrize("served", BEHIND_LOAD_BALANCER, indirect=True)
def test_a_forged_host_behind_the_load_balancer_is_refused_by_django(served):
    stack, client = served
    for host_header in (EVIL, f"{EVIL}:{stack.https_port}"):
        response = client.get("/", host=stack.domain, host_header=host_header)
        assert response.status_code == 400, (host_header, response.status_code)
        assert "<h1>Bad Request (400)</h1>" in response.text


def test_plain_http_is_redirected_to_https_on_the_public_port(served):
    stack, client = served
    for host in stack.hosts:
        response = client.get("/some/path?q=1", host=host, scheme="http")
        assert response.status_code == 301
        assert response.headers["location"] == f"{stack.origin(host)}/some/path?q=1"


def test_admin_login_with_a_csrf_post_works(served):
    stack, client = served
    form, response = log_in_to_admin(client, stack, stack.origin())
    assert response.status_code == 302, response.text[:2000]
    index = client.get("/admin/", host=stack.domain,
                       headers={"Cookie": cookie_header(form, response)})  # fmt: skip
    assert index.status_code == 200
    assert f"<strong>{stack.admin_username}</strong>" in index.text


def test_static_files_are_served_by_the_proxy(served):
    # Production settings leave static files to the proxy: Django serves none.
    stack, client = served
    page = client.get("/admin/login/", host=stack.domain)
    sheets = stylesheets(page.text)
    assert sheets, page.text[:2000]
    for sheet in sheets:
        response = client.get(sheet, host=stack.domain)
        assert response.status_code == 200, sheet
        assert response.headers["content-type"].startswith("text/css")


def test_manage_py_smoketest_passes_from_the_host(served):
    stack, _ = served
    args = ["smoketest", f"https://{stack.domain}:{stack.https_port}", "--cacert",
            str(stack.ca_path), "--http-port", str(stack.http_port),
            "--admin-user", stack.admin_username, "--admin-password-env", "SMOKETEST_PASSWORD"]  # fmt: skip
    for host in stack.hosts:
        args += ["--resolve", f"{host}:{stack.https_port}:127.0.0.1"]
    result = stack.host_manage(*args, env={"SMOKETEST_PASSWORD": stack.admin_password})
    assert result.returncode == 0, result.stdout + result.stderr


def test_healthchecks_go_healthy(served):
    stack, _ = served
    containers = stack.containers()
    with_checks = {name for name, c in containers.items() if c["State"].get("Health")}
    expected = {"web"} | ({"db"} if stack.database == "postgres" else set())
    assert expected <= with_checks
    for name in with_checks:
        assert containers[name]["State"]["Health"]["Status"] == "healthy", name


def test_web_runs_unprivileged_on_a_read_only_filesystem(served):
    stack, _ = served
    web = stack.containers()["web"]
    assert web["Config"]["User"] == "10001:10001"
    assert web["HostConfig"]["ReadonlyRootfs"] is True
    assert web["HostConfig"]["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in web["HostConfig"]["SecurityOpt"]
    ids = stack.compose("exec", "-T", "web", "id", "-u").stdout.strip()
    assert ids == "10001"
    refused = stack.compose("exec", "-T", "web", "touch", "/app-file", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr


def test_ports_are_published_on_loopback_only(served):
    stack, _ = served
    for container in stack.containers().values():
        for bindings in (container["NetworkSettings"]["Ports"] or {}).values():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", container["Name"]


def test_data_in_the_database_volume_survives_down_and_up(served):
    stack, client = served
    stack.manage("createsuperuser", "--noinput", "--username", "survivor",
                 "--email", "survivor@example.com",
                 env={"DJANGO_SUPERUSER_PASSWORD": stack.admin_password})  # fmt: skip
    stack.compose("down", "--timeout", "10")
    stack.up()
    count = stack.manage("shell", "-c", "from django.contrib.auth.models import User; "
                         "print(User.objects.filter(username='survivor').count())")  # fmt: skip
    # The last line: Django 5.2's shell first says what it imported.
    assert count.stdout.strip().splitlines()[-1] == "1"
    assert client.get("/", host=stack.domain).status_code == 200
