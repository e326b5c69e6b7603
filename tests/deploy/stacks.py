"""A rendered compose project running on the suite's engine, reached over loopback.

The project is rendered with free high ports and test certificates as answers,
its images are built from the rendered Dockerfile on local base images (the only
values that differ from production: PYTHON_IMAGE, NGINX_IMAGE, CADDY_IMAGE,
POSTGRES_IMAGE), and the rendered compose.yaml runs unchanged, in the order its
header gives: build, migrate, up.

The images are built with `docker build` of the same context, target and build
arguments that `docker compose build` would pass, and tagged with the names
compose gives them: compose v5 builds only through the buildx plugin, which no
package here ships. compose then runs with `--no-build --pull never`.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import trustme

from ..support.containers import COMPOSE, base_images, docker, engine_env, steady_network
from ..support.ports import free_port
from ..support.processes import ServerFailed, clean_env
from ..support.project import settings_module
from ..support.rendering import render
from ..support.stack import ADMIN_PASSWORD, ADMIN_USERNAME, Certificates

PROXY_SERVICE = {"nginx": "nginx", "caddy": "caddy", "load_balancer": None}
UP_TIMEOUT = 180


@dataclass
class ComposeStack:
    """One compose project up on the engine: what a client needs to reach it."""

    name: str
    proxy: str
    database: str
    answers: dict
    project: Path
    hosts: list[str]
    http_port: int
    https_port: int
    certificates: Certificates
    images: dict[str, str]
    python: Path
    admin_username: str = ADMIN_USERNAME
    admin_password: str = ADMIN_PASSWORD

    @property
    def ca_path(self) -> Path:
        return self.certificates.ca_path

    @property
    def domain(self) -> str:
        return self.hosts[0]

    def origin(self, host: str | None = None) -> str:
        suffix = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{host or self.domain}{suffix}"

    @property
    def env(self) -> dict[str, str]:
        """docker compose's environment: the engine and the base-image variables."""
        return {**engine_env(), **self.images}

    def compose(self, *args: str, timeout: float = 300, check: bool = True):
        # up, run and down make or remove containers and networks: not under a browser.
        with steady_network(changing=args[0] in ("up", "run", "down")):
            result = subprocess.run(
                [COMPOSE, "--project-name", self.name, "--file", self.project / "compose.yaml",
                 *args],
                cwd=self.project, env=self.env, capture_output=True, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
        if check and result.returncode != 0:
            raise ServerFailed(
                f"docker compose {' '.join(args)} failed:\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-3000:]}\n{self.logs()}"
            )
        return result

    def logs(self) -> str:
        result = subprocess.run(
            [COMPOSE, "--project-name", self.name, "--file", self.project / "compose.yaml",
             "logs", "--no-color", "--tail", "60"],
            cwd=self.project, env=self.env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        return f"--- compose logs of {self.name} ---\n{result.stdout[-6000:]}"

    def manage(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """manage.py in the running web container, as the runbook runs it."""
        pairs = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        return self.compose("exec", "-T", *pairs, "web", "python", "manage.py", *args)

    def up(self) -> None:
        self.loopback_network()
        self.compose("up", "--detach", "--wait", "--wait-timeout", str(UP_TIMEOUT),
                     "--no-build", "--pull", "never", timeout=UP_TIMEOUT + 60)  # fmt: skip

    def loopback_network(self) -> None:
        """The project's default network, made before compose makes it: published ports
        bind to 127.0.0.1, whatever address compose.yaml leaves out.

        compose takes a network with its project and network labels and no config
        hash as its own; `down` removes it like one it made.
        """
        network = f"{self.name}_default"
        if docker("network", "inspect", network, check=False).returncode == 0:
            return
        with steady_network(changing=True):
            docker("network", "create", "--driver", "bridge",
                   "--opt", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
                   "--label", f"com.docker.compose.project={self.name}",
                   "--label", "com.docker.compose.network=default", network)  # fmt: skip

    def containers(self) -> dict[str, dict]:
        """`docker inspect` of each running container, by service name."""
        ids = self.compose("ps", "--quiet").stdout.split()
        inspected = json.loads(docker("inspect", *ids).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}

    def host_manage(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """manage.py on the host, with the project's own Python, as an operator runs it."""
        variables = clean_env(DJANGO_SETTINGS_MODULE=settings_module(self.answers), **(env or {}))
        return subprocess.run(
            [self.python, "manage.py", *args], cwd=self.project, env=variables,
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip


def start_compose_stack(
    cleanup: ExitStack, *, template: Path, python: Path, workdir: Path, ca: trustme.CA,
    proxy: str, database: str,
) -> ComposeStack:  # fmt: skip
    """Render, build and start a compose project; `cleanup` takes it down, volumes and all."""
    # Unique to this run: another run on the machine shares the engine.
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    name = f"shipshape-{run_id[:8]}-{proxy}-{database}".replace("_", "-")
    http_port, https_port = free_port(), free_port()
    answers: dict = {"deployment": "compose", "proxy": proxy, "database": database,
                     "http_port": http_port, "https_port": https_port}  # fmt: skip
    hosts = ["example.com", "www.example.com"]
    certificates = Certificates.issue(ca, hosts, workdir / "tls")
    if proxy != "load_balancer":
        answers["tls_cert"] = str(certificates.cert_path)
        answers["tls_key"] = str(certificates.key_path)
    project = render(template, workdir / "my_site", **answers)
    images = base_images(project / "pyproject.toml", proxy, database)
    stack = ComposeStack(name, proxy, database, answers, project, hosts, http_port, https_port,
                         certificates, images, python)  # fmt: skip

    build_args = [arg for key, value in images.items() for arg in ("--build-arg", f"{key}={value}")]
    targets = ["web", *filter(None, [PROXY_SERVICE[proxy]])]
    for target in targets:
        with steady_network(changing=True):
            docker("build", "--pull=false", "--quiet", "--target", target, "--tag",
                   f"{name}-{target}", *build_args, project, timeout=900)  # fmt: skip
    cleanup.callback(docker, "image", "rm", *(f"{name}-{t}" for t in targets), check=False)
    cleanup.callback(stack.compose, "down", "--volumes", "--timeout", "10", check=False)

    stack.loopback_network()
    stack.compose("run", "--rm", "--pull", "never", "web", "python", "manage.py", "migrate",
                  "--noinput")  # fmt: skip
    stack.compose("run", "--rm", "--pull", "never", "-e", f"DJANGO_SUPERUSER_PASSWORD={ADMIN_PASSWORD}",
                  "web", "python", "manage.py", "createsuperuser", "--noinput",
                  "--username", ADMIN_USERNAME, "--email", "admin@example.com")  # fmt: skip
    stack.up()
    return stack
