"""Releases and rollbacks under compose, by the rendered RUNBOOK.md's own commands.

A compose project (nginx, SQLite) is deployed on the suite's engine from a git
checkout the way a server holds it: release A by the runbook's first deploy, then
release B and a broken release C (its home page raises) by its "Every release"
commands, then the "Rollback" commands back to B. Each block is taken from the
rendered RUNBOOK.md and run by bash as written, apart from SUBSTITUTIONS below,
which are what a test on this machine must change.

While B replaces A, a client sends requests without pause through the published
HTTPS port; the failed ones are counted and reported as a ReleaseDowntime warning,
which pytest shows in its summary (pytest-xdist keeps a worker's prints to itself).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

import pytest

from ..support.client import Client
from ..support.containers import COMPOSE, DOCKER, docker, steady_network
from ..support.git import git, new_repo, release
from ..support.paths import ROOT
from ..support.project import settings_module
from ..support.stack import ADMIN_PASSWORD, ADMIN_USERNAME
from .stacks import ComposeStack, prepare_compose_stack

pytestmark = pytest.mark.xdist_group("compose-releases")

# What the test changes in the runbook's commands, and why; every one must match.
SUBSTITUTIONS = [
    # compose v5 builds only through the buildx plugin, which no package here
    # ships: `docker build` of the same services, targets, arguments and image
    # names (tests/deploy/stacks.py build_images).
    ("docker compose build", "build_images"),
    # The smoketest runs on the host with the project's own Python: the published
    # ports are bound to 127.0.0.1, which a container cannot reach, and public DNS
    # does not point at this machine. `host_smoketest` adds --resolve for each host,
    # the test CA and the public HTTP port.
    ("docker compose run --rm -e OPS_PASSWORD web python manage.py smoketest",
     "host_smoketest"),
    ("docker compose run --rm web python manage.py smoketest", "host_smoketest"),
    # The PyPI docker-compose binary, for the suite's engine (its environment
    # carries DOCKER_HOST and COMPOSE_PROJECT_NAME).
    ("docker compose ", '"$COMPOSE" '),
    # The placeholders: the release tags and the ops user.
    ("<release-tag>", "$NEXT_RELEASE"),
    ("<previous-release-tag>", "$PREVIOUS_RELEASE"),
    ("<ops-user>", ADMIN_USERNAME),
]  # fmt: skip

PRELUDE = """\
set -euo pipefail
build_images() { "$TEST_PYTHON" -P -m tests.deploy.stacks; }
host_smoketest() {
    env DJANGO_SETTINGS_MODULE="$SETTINGS" "$PROJECT_PYTHON" manage.py smoketest "$@" \\
        --cacert "$CA" --http-port "$HTTP_PORT" $RESOLVE || { echo "smoketest failed" >&2; return 1; }
}
"""


class ReleaseDowntime(UserWarning):
    """Requests that failed while `docker compose up` replaced a release: measured, not zero."""


BROKEN_HOME = "{% url 'no-such-view' %}\n"


def runbook_block(runbook: str, heading: str) -> str:
    """The first console block under a `## heading` of RUNBOOK.md."""
    section = runbook.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```console\n(.*?)```", section, re.S).group(1)


def substituted(block: str) -> str:
    for old, new in SUBSTITUTIONS:
        block = block.replace(old, new)
    return block


class Load:
    """A client sending GET / without pause until stopped; it counts what failed."""

    def __init__(self, stack: ComposeStack):
        self.client = Client(stack.ca_path, stack.http_port, stack.https_port, timeout=10)
        self.host = stack.domain
        self.sent = 0
        self.failures: list[str] = []
        self.failed_at: list[float] = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while self.running:
            self.sent += 1
            try:
                status = self.client.get("/", host=self.host).status_code
            except Exception as error:  # noqa: BLE001 - every failure counts
                self.failed(type(error).__name__)
                time.sleep(0.02)
                continue
            if status != 200:
                self.failed(str(status))

    def failed(self, what: str) -> None:
        self.failures.append(what)
        self.failed_at.append(time.monotonic())

    def summary(self) -> str:
        if not self.failures:
            return f"0 of {self.sent} requests failed"
        window = self.failed_at[-1] - self.failed_at[0]
        kinds = ", ".join(f"{k}: {self.failures.count(k)}" for k in sorted(set(self.failures)))
        return (f"{len(self.failures)} of {self.sent} requests failed, within {window:.1f} s "
                f"({kinds})")  # fmt: skip

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def deployment(engine, template_repo, project_python, tmp_path_factory, deploy_ca):
    """A source repository with releases, and the server's checkout of it."""
    workdir = tmp_path_factory.mktemp("compose-releases")
    stack = prepare_compose_stack(template=template_repo, python=project_python("5.2"),
                                  workdir=workdir, ca=deploy_ca, proxy="nginx",
                                  database="sqlite", label="releases-")  # fmt: skip
    source = new_repo(stack.project, "Release A")
    tags = {name: f"{stack.name}-{name}" for name in "abc"}
    git("tag", tags["a"], cwd=source)
    server = workdir / "server"
    git("clone", "--quiet", "--branch", tags["a"], str(source), str(server), cwd=workdir)
    stack.project = server
    with ExitStack() as cleanup:
        cleanup.callback(docker, "image", "rm", *(
            f"my_site-{service}:{tag}" for tag in tags.values() for service in ("web", "nginx")
        ), check=False)  # fmt: skip
        cleanup.callback(stack.compose, "down", "--volumes", "--timeout", "10", check=False)
        yield stack, source, tags


def run_runbook(stack: ComposeStack, block: str, **variables: str) -> subprocess.CompletedProcess:
    """A runbook block, substituted, in the server's checkout; its output is printed."""
    resolve = " ".join(f"--resolve {host}:{stack.https_port}:127.0.0.1" for host in stack.hosts)
    env = {
        **stack.env,
        "COMPOSE": COMPOSE,
        "COMPOSE_PROJECT_NAME": stack.name,
        "TEST_PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT),
        "PROJECT_PYTHON": str(stack.python),
        "SETTINGS": settings_module(stack.answers),
        "CA": str(stack.ca_path),
        "HTTP_PORT": str(stack.http_port),
        "RESOLVE": resolve,
        "OPS_PASSWORD": ADMIN_PASSWORD,
        "PATH": f"{Path(DOCKER).parent}:{stack.env['PATH']}",
        **variables,
    }
    env = {k: v for k, v in env.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.pop("RELEASE")  # only the runbook's own export sets it
    stack.loopback_network()
    # compose makes and removes containers: not while a browser test runs.
    with steady_network(changing=True):
        result = subprocess.run(["bash", "-c", PRELUDE + substituted(block)], cwd=stack.project,
                                env=env, capture_output=True, text=True, timeout=1200)  # fmt: skip
    print(f"--- runbook block, exit {result.returncode}\n{result.stdout[-4000:]}"
          f"\n{result.stderr[-4000:]}")  # fmt: skip
    return result


def image_id(reference: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", reference).stdout.strip()


def admin_count(stack: ComposeStack) -> str:
    result = stack.manage("shell", "-c", "from django.contrib.auth.models import User; "
                          f"print(User.objects.filter(username='{ADMIN_USERNAME}').count())")  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


def test_every_substitution_matches_the_rendered_runbook(deployment):
    stack, _, _ = deployment
    runbook = (stack.project / "RUNBOOK.md").read_text()
    blocks = "".join(runbook_block(runbook, h) for h in ("First deploy", "Every release",
                                                           "Rollback"))  # fmt: skip
    for old, _ in SUBSTITUTIONS:
        assert old in blocks, f"the runbook no longer says {old!r}"


def test_a_broken_release_is_rolled_back_to_the_last_good_images(deployment):
    stack, source, tags = deployment
    runbook = (stack.project / "RUNBOOK.md").read_text()
    client = Client(stack.ca_path, stack.http_port, stack.https_port)

    # Release A, by the first deploy; then data that every later release must keep.
    first = run_runbook(stack, runbook_block(runbook, "First deploy"))
    assert first.returncode == 0, first.stderr[-3000:]
    stack.release = tags["a"]
    stack.manage("createsuperuser", "--noinput", "--username", ADMIN_USERNAME,
                 "--email", "admin@example.com",
                 env={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD})  # fmt: skip
    assert client.get("/", host=stack.domain).status_code == 200

    # Release B, by the runbook, while a client keeps sending requests.
    home = source / "my_site" / "templates" / "home.html"
    home.write_text(home.read_text().replace("<h1>", "<h1>Release B: "))
    release(source, tags["b"])
    started = time.monotonic()
    with Load(stack) as load:
        to_b = run_runbook(stack, runbook_block(runbook, "Every release"),
                           NEXT_RELEASE=tags["b"])  # fmt: skip
    took = time.monotonic() - started
    measured = f"release A -> B by the runbook ({took:.0f} s): {load.summary()}"
    print(measured)
    warnings.warn(measured, ReleaseDowntime, stacklevel=1)
    assert to_b.returncode == 0, to_b.stderr[-3000:]
    assert "Release B: " in client.get("/", host=stack.domain).text

    # Release C raises on its home page: the runbook's own smoketest stops it.
    home.write_text(home.read_text() + BROKEN_HOME)
    release(source, tags["c"])
    to_c = run_runbook(stack, runbook_block(runbook, "Every release"), NEXT_RELEASE=tags["c"])
    assert to_c.returncode != 0
    assert "smoketest failed" in to_c.stderr
    assert client.get("/", host=stack.domain).status_code == 500

    # The rollback, as written: back to B's images, not the last ones built.
    back = run_runbook(stack, runbook_block(runbook, "Rollback"), PREVIOUS_RELEASE=tags["b"])
    assert back.returncode == 0, back.stderr[-3000:]
    stack.release = tags["b"]
    assert "Release B: " in client.get("/", host=stack.domain).text
    assert admin_count(stack) == "1"
    running = stack.containers()
    # C changed only code: its nginx image, static files and all, is B's to the byte.
    assert image_id(f"my_site-web:{tags['c']}") != image_id(f"my_site-web:{tags['b']}")
    for service in ("web", "nginx"):
        assert running[service]["Image"] == image_id(f"my_site-{service}:{tags['b']}"), service
    assert json.loads(docker("inspect", running["web"]["Id"]).stdout)[0]["Config"]["Image"] == (
        f"my_site-web:{tags['b']}"
    )
