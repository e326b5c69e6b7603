"""A rendered compose project running on the suite's engine, reached over loopback.

The project is rendered with free high ports and test certificates as answers,
its images are built from the rendered Dockerfile on local base images (the only
values that differ from production: PYTHON_IMAGE, NGINX_IMAGE, CADDY_IMAGE,
POSTGRES_IMAGE), and the rendered compose.yaml runs unchanged, in the order its
header gives: build, migrate, up.

The images are built with `docker build` of the same context, target and build
arguments that `docker compose build` would pass, and tagged with the image names
compose.yaml gives them (`<slug>-web:${RELEASE}`): compose v5 builds only through
the buildx plugin, which no package here ships. compose then runs with
`--no-build --pull never`. RELEASE, which the runbook exports, is unique to each
stack: stacks of one run and runs on one machine share the engine and its tags.

Behind a load balancer, a TLS-terminating nginx on the host stands in for it
(tests/support/load_balancer_front.conf, as in the end-to-end suite), connecting
to gunicorn's port published on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

import trustme

from ..support.client import DROPPED, Client
from ..support.containers import COMPOSE, base_images, docker, engine_env, steady_network
from ..support.ports import accepts_connections, free_port
from ..support.processes import ServerFailed, clean_env, wait_until
from ..support.project import settings_module
from ..support.proxies import nginx_main_conf, nginx_test, start_nginx
from ..support.rendering import render
from ..support.stack import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    Certificates,
    write_load_balancer_front,
)

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
    release: str
    gunicorn_port: int | None = None
    # The project network's subnet once made: `down` removes the network, and `up`
    # makes it again with the same gateway, the address gunicorn trusts.
    subnet: str | None = None
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
        """docker compose's environment: the engine, the base-image variables, the release."""
        return {**engine_env(), **self.images, "RELEASE": self.release}

    def build(self) -> list[str]:
        """Build every image compose.yaml builds, as `docker compose build` would; their tags."""
        return build_images(self.project, {**self.env, "COMPOSE_PROJECT_NAME": self.name})

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
        subnet = ["--subnet", self.subnet] if self.subnet else []
        with steady_network(changing=True):
            docker("network", "create", "--driver", "bridge", *subnet,
                   "--opt", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
                   "--label", f"com.docker.compose.project={self.name}",
                   "--label", "com.docker.compose.network=default", network)  # fmt: skip
        inspected = json.loads(docker("network", "inspect", network).stdout)
        self.subnet = inspected[0]["IPAM"]["Config"][0]["Subnet"]

    def network_gateway(self) -> str:
        """The address the engine's port proxy connects to the containers from."""
        self.loopback_network()
        inspected = json.loads(docker("network", "inspect", f"{self.name}_default").stdout)
        return inspected[0]["IPAM"]["Config"][0]["Gateway"]

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


def build_images(project: Path, env: dict[str, str], *, lock: bool = True) -> list[str]:
    """`docker compose build` without buildx: `docker build` of each service's context and
    target, with its build arguments and its image name, as `compose config` resolves them
    from `env` (the base-image variables and RELEASE).

    `lock=False` when the caller already holds steady_network (a runbook being run).
    """
    config = subprocess.run(
        [COMPOSE, "--file", project / "compose.yaml", "config", "--format", "json"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    tags = []
    for service in json.loads(config.stdout)["services"].values():
        build = service.get("build")
        if not build:
            continue
        args = [arg for key, value in (build.get("args") or {}).items() if value is not None
                for arg in ("--build-arg", f"{key}={value}")]  # fmt: skip
        with steady_network(changing=True) if lock else nullcontext():
            docker("build", "--pull=false", "--quiet", "--target", build["target"], "--tag",
                   service["image"], *args, build["context"], timeout=900)  # fmt: skip
        tags.append(service["image"])
    return tags


def start_load_balancer_front(cleanup: ExitStack, stack: ComposeStack, folder: Path) -> None:
    """The stand-in load balancer: nginx on the host terminating TLS with the site's
    certificate, forwarding to gunicorn's published port with X-Forwarded-Proto."""
    folder.mkdir(parents=True)
    include = write_load_balancer_front(
        folder, stack.http_port, stack.https_port, stack.certificates,
        f"127.0.0.1:{stack.gunicorn_port}",
    )  # fmt: skip
    conf = nginx_main_conf(folder, include)
    checked = nginx_test(conf)
    if checked.returncode != 0:
        raise ServerFailed(f"nginx -t failed for {include}:\n{checked.stderr}")
    front = start_nginx(folder, conf, folder / "front.log", name="load balancer front")
    cleanup.callback(front.stop)
    ports = [("127.0.0.1", stack.https_port), ("127.0.0.1", stack.http_port)]
    wait_until(lambda: all(map(accepts_connections, ports)), [front], front.name)


def serves_home_page(stack: ComposeStack) -> bool:
    client = Client(stack.ca_path, stack.http_port, stack.https_port, timeout=10)
    try:
        return client.get("/", host=stack.domain).status_code == 200
    except DROPPED:
        return False


def prepare_compose_stack(
    *, template: Path, python: Path, workdir: Path, ca: trustme.CA, proxy: str, database: str,
    label: str = "",
) -> ComposeStack:  # fmt: skip
    """Render a compose project with free ports and test certificates; nothing runs yet."""
    # Unique to this run: another run on the machine shares the engine.
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    name = f"shipshape-{run_id[:8]}-{label}{proxy}-{database}".replace("_", "-")
    http_port, https_port = free_port(), free_port()
    answers: dict = {"deployment": "compose", "proxy": proxy, "database": database,
                     "http_port": http_port, "https_port": https_port}  # fmt: skip
    hosts = ["example.com", "www.example.com"]
    certificates = Certificates.issue(ca, hosts, workdir / "tls")
    stack = ComposeStack(name, proxy, database, answers, workdir / "my_site", hosts, http_port,
                         https_port, certificates, {}, python, release=name)  # fmt: skip
    if proxy == "load_balancer":
        # gunicorn's port, published on 127.0.0.1. The front connects to it there, and
        # the engine's port proxy connects on to the container from the project
        # network's gateway: that is the load balancer's address gunicorn sees.
        stack.gunicorn_port = free_port()
        answers["gunicorn_bind"] = f"0.0.0.0:{stack.gunicorn_port}"
        answers["lb_trusted_cidrs"] = [f"{stack.network_gateway()}/32"]
    else:
        answers["tls_cert"] = str(certificates.cert_path)
        answers["tls_key"] = str(certificates.key_path)
    render(template, stack.project, **answers)
    stack.images = base_images(stack.project / "pyproject.toml", proxy, database)
    return stack


def start_compose_stack(
    cleanup: ExitStack, *, template: Path, python: Path, workdir: Path, ca: trustme.CA,
    proxy: str, database: str,
) -> ComposeStack:  # fmt: skip
    """Render, build and start a compose project; `cleanup` takes it down, volumes and all."""
    stack = prepare_compose_stack(template=template, python=python, workdir=workdir, ca=ca,
                                  proxy=proxy, database=database)  # fmt: skip
    tags = stack.build()
    # Taken down before its images are removed (callbacks run last in, first out).
    cleanup.callback(docker, "image", "rm", *tags, check=False)
    cleanup.callback(stack.compose, "down", "--volumes", "--timeout", "10", check=False)

    stack.loopback_network()
    stack.compose("run", "--rm", "--pull", "never", "web", "python", "manage.py", "migrate",
                  "--noinput")  # fmt: skip
    stack.compose("run", "--rm", "--pull", "never", "-e", f"DJANGO_SUPERUSER_PASSWORD={ADMIN_PASSWORD}",
                  "web", "python", "manage.py", "createsuperuser", "--noinput",
                  "--username", ADMIN_USERNAME, "--email", "admin@example.com")  # fmt: skip
    stack.up()
    if proxy == "load_balancer":
        start_load_balancer_front(cleanup, stack, workdir / "front")
    wait_until(lambda: serves_home_page(stack), [], "the home page")
    return stack


if __name__ == "__main__":
    # `docker compose build` for the release tests' runbook: the images of the
    # compose project in the current folder, for the RELEASE in the environment; the
    # test running the runbook holds steady_network.
    print("\n".join(build_images(Path.cwd(), dict(os.environ), lock=False)), file=sys.stderr)
