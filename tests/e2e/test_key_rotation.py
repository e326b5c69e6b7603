"""The RUNBOOK's key rotation keeps users logged in, and removing the fallback ends old sessions.

A project served by gunicorn behind nginx over TLS (the e2e stack). Two admin
sessions are opened under the first key. The runbook's "Rotating the secret key"
commands then run as written in the project folder, with its `preflight` function
and with `systemctl restart` standing for the restart of this gunicorn. Session A,
used while the old key is a fallback, stays logged in and is moved to the new key;
after the runbook's second block removes the fallback, session B, not used since
the rotation, is logged out, while A stays logged in.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from ..deploy.systemd_host import console_blocks
from ..support.client import Client, cookie_header, log_in_to_admin
from ..support.ports import accepts_connections
from ..support.processes import run, wait_until
from ..support.stack import Stack, serves_home_page, start_gunicorn, start_stack

pytestmark = pytest.mark.xdist_group("key-rotation")

# The session cookie's name in production (the __Host- prefix: Secure, path /, no domain).
SESSION_COOKIE = "__Host-sessionid"


def env_value(project: Path, name: str) -> str:
    lines = (project / ".env").read_text().splitlines()
    [value] = [line.split("=", 1)[1] for line in lines if line.startswith(f"{name}=")]
    return value


def run_runbook_block(stack: Stack, block: str) -> list[str]:
    """One console block of the runbook in a bash like the server's; the restarts it asked for.

    `preflight` is the runbook's own function without the server's user; `systemctl`
    only records what it was asked to do.
    """
    restarts = stack.project.parent / "restarts"
    restarts.unlink(missing_ok=True)
    prelude = (
        "preflight() { .venv/bin/python manage.py preflight; }\n"
        f'systemctl() {{ echo "$*" >> "{restarts}"; }}\n'
    )
    result = run(["bash", "-e", "-o", "pipefail", "-c", prelude + block], stack.project, stack.env)
    assert result.returncode == 0, result.stdout + result.stderr
    return restarts.read_text().splitlines() if restarts.exists() else []


def restart_gunicorn(stack: Stack, log: Path) -> None:
    [old] = [p for p in stack.processes if p.name == "gunicorn"]
    old.stop()
    stack.processes.remove(old)
    new = start_gunicorn(stack, log)
    stack.processes.append(new)
    wait_until(lambda: accepts_connections(stack.gunicorn_address), [new], "gunicorn")
    wait_until(lambda: serves_home_page(stack), stack.processes, "the home page")


def admin_index(client: Client, stack: Stack, cookie: str) -> httpx.Response:
    return client.get("/admin/", host=stack.domain, headers={"Cookie": cookie})


def logged_in(response: httpx.Response) -> bool:
    if response.status_code == 200 and "Site administration" in response.text:
        return True
    assert response.status_code == 302, response.text[:300]
    assert response.headers["location"].startswith("/admin/login/")
    return False


@pytest.fixture
def rotating_stack(template_repo, project_python, tmp_path, e2e_ca):
    with ExitStack() as cleanup:
        stack = start_stack(
            cleanup, template=template_repo, workdir=tmp_path, python=project_python("5.2"),
            ca=e2e_ca, proxy="nginx",
        )  # fmt: skip
        # The virtualenv where the server keeps it, for preflight's check of the units.
        (stack.project / ".venv").symlink_to(stack.python.parent.parent)
        try:
            yield stack
        except BaseException:
            print(stack.logs())
            raise


def test_rotating_the_key_keeps_sessions_until_the_fallback_is_removed(rotating_stack, tmp_path):
    stack = rotating_stack
    client = Client(stack.ca_path, stack.http_port, stack.https_port)
    sessions = {}
    for name in ("A", "B"):
        form, response = log_in_to_admin(client, stack, stack.origin())
        assert response.status_code == 302, response.text[:300]
        sessions[name] = cookie_header(form, response)
        assert logged_in(admin_index(client, stack, sessions[name]))

    old_key = env_value(stack.project, "DJANGO_SECRET_KEY")
    runbook = (stack.project / "RUNBOOK.md").read_text()
    rotate, drop = console_blocks(runbook, "Rotating the secret key")

    assert run_runbook_block(stack, rotate) == [f"restart {stack.slug}"]
    new_key = env_value(stack.project, "DJANGO_SECRET_KEY")
    assert new_key != old_key and len(new_key) >= 50
    assert env_value(stack.project, "DJANGO_SECRET_KEY_FALLBACKS") == old_key
    restart_gunicorn(stack, tmp_path / "gunicorn-rotated.log")

    seen = admin_index(client, stack, sessions["A"])
    assert logged_in(seen), "the old key's session was logged out despite the fallback"
    # Django moved the session to the new key under a new session id.
    assert SESSION_COOKIE in seen.cookies
    sessions["A"] = f"{SESSION_COOKIE}={seen.cookies[SESSION_COOKIE]}"

    assert run_runbook_block(stack, drop) == [f"restart {stack.slug}"]
    assert env_value(stack.project, "DJANGO_SECRET_KEY_FALLBACKS") == ""
    restart_gunicorn(stack, tmp_path / "gunicorn-without-fallback.log")

    assert not logged_in(admin_index(client, stack, sessions["B"]))
    assert logged_in(admin_index(client, stack, sessions["A"]))
    assert old_key not in stack.logs()
