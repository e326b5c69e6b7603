"""gunicorn, started as the generated systemd units start it, serves on systemd's socket.

No systemd runs here, so the test does what systemd does for my_site.socket and
Type=notify: it opens the listening socket, passes it as file descriptor 3 with
LISTEN_FDS and LISTEN_PID, and listens on NOTIFY_SOCKET for gunicorn's READY=1.
gunicorn runs with the rendered deploy/gunicorn.conf.py, unchanged.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from .support.processes import clean_env
from .support.project import settings_module

# Runs in the project's Python: put the socket on fd 3 and become gunicorn, keeping
# the pid, as systemd's exec does.
LAUNCHER = """
import os, socket, sys
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(16)
if listener.fileno() != 3:
    os.dup2(listener.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.executable, [sys.executable, "-m", "gunicorn", *sys.argv[2:]])
"""


@pytest.fixture(scope="module")
def socket_activated(rendered, project_python, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    configured = run_dir / "gunicorn.sock"
    project = rendered(gunicorn_bind=f"unix:{configured}")
    systemd_socket = run_dir / "systemd.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(run_dir / "notify.sock"))
    notify.settimeout(60)
    env = clean_env(
        DJANGO_SETTINGS_MODULE=settings_module({}),
        NOTIFY_SOCKET=str(run_dir / "notify.sock"),
        WEB_CONCURRENCY="1",
    )
    python = project_python("5.2")
    process = subprocess.Popen(
        [python, "-c", LAUNCHER, systemd_socket, "-c", "deploy/gunicorn.conf.py", "my_site.wsgi"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            message = notify.recv(4096).decode()
        except TimeoutError:
            process.kill()
            pytest.fail("gunicorn never notified readiness:\n" + process.communicate()[1])
        yield {"message": message, "socket": systemd_socket, "configured": configured}
    finally:
        notify.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def test_gunicorn_tells_systemd_it_is_ready(socket_activated):
    assert "READY=1" in socket_activated["message"].splitlines()


def test_gunicorn_serves_on_the_socket_systemd_passes_it(socket_activated):
    transport = httpx.HTTPTransport(uds=str(socket_activated["socket"]))
    with httpx.Client(transport=transport, base_url="http://example.com", timeout=30) as client:
        home = client.get("/", headers={"X-Forwarded-Proto": "https"})
        health = client.get("/healthz")
    assert home.status_code == 200
    assert health.status_code == 200
    # It used the inherited socket instead of binding the configured path itself.
    assert not Path(socket_activated["configured"]).exists()
