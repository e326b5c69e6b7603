"""A fresh Debian 12 server that boots systemd, deployed by running its RUNBOOK.md.

The server is a container of the suite's engine with systemd as PID 1
(containers.server_image, containers.SYSTEMD_RUN_FLAGS), its ports 80 and 443
published on 127.0.0.1 only. The project is rendered with the default answers
(the production ports and certificate paths), committed to a git repository and
tagged; the server then runs the rendered runbook's own first-deploy commands, as
written and in order, in one root shell. The only changes are the ones a test
must make, each in FIRST_DEPLOY_SUBSTITUTIONS below: every one of them must match
the runbook exactly once, so a runbook that changes fails here until this list
says how its new lines run.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import trustme

from ..support.containers import SYSTEMD_RUN_FLAGS, docker, server_image, steady_network
from ..support.git import commit_all, git, new_repo
from ..support.ports import free_port
from ..support.rendering import render
from ..support.stack import ADMIN_PASSWORD, ADMIN_USERNAME, Certificates

REPOSITORY = "/root/repository"  # what `git clone <repository>` clones
TLS = "/opt/test-tls"  # the test CA, and the certificate certbot would have obtained
BOOT_TIMEOUT = 60.0
CADDY_TLS = {"tls_cert": "/etc/caddy/tls/fullchain.pem", "tls_key": "/etc/caddy/tls/privkey.pem"}


def first_deploy_substitutions(answers: dict) -> dict[str, str]:
    """Runbook line -> what the test runs instead; "" drops the line.

    1. Packages: Debian's are in the image already and uv is the host's binary;
       the server reaches no mirror and no installer.
    2. The repository is a copy on the server, not a remote.
    3. certbot cannot reach an ACME server: the test CA's certificate goes where
       certbot would have put its own.
    4. The smoke test connects to the server itself (127.0.0.1 for the example
       address) and trusts the test CA.
    Caddy would obtain its certificate from an ACME server itself: its project is
    rendered with the test certificate's paths as answers (CADDY_TLS) instead, and
    the certificate is on the server before the first deploy starts.
    """
    proxy_packages = {"nginx": " nginx certbot", "caddy": " caddy"}.get(answers["proxy"], "")
    live = "/etc/letsencrypt/live/example.com"
    certbot = {
        "certbot certonly --standalone -d example.com -d www.example.com": (
            f"install -D -m 644 {TLS}/fullchain.pem {live}/fullchain.pem"
            f" && install -D -m 600 {TLS}/privkey.pem {live}/privkey.pem"
        ),
    }
    return {
        **(certbot if answers["proxy"] == "nginx" else {}),
        f"apt-get install --yes{proxy_packages} python3 git curl": "",
        "curl -LsSf https://astral.sh/uv/install.sh | env UV_UNMANAGED_INSTALL=/usr/local/bin sh": "",
        "git clone <repository> /srv/my_site": f"git clone {REPOSITORY} /srv/my_site",
        "manage smoketest https://example.com --resolve example.com:443:203.0.113.7"
        " --resolve www.example.com:443:203.0.113.7": (
            "manage smoketest https://example.com --resolve example.com:443:127.0.0.1"
            f" --resolve www.example.com:443:127.0.0.1 --cacert {TLS}/ca.pem"
        ),
    }


def console_blocks(markdown: str, section: str) -> list[str]:
    """The ```console blocks of one `## section` of a rendered runbook, in order."""
    parts = re.split(r"^## ", markdown, flags=re.M)
    body = next(part for part in parts if part.startswith(section + "\n"))
    return re.findall(r"^```console\n(.*?)^```$", body, flags=re.M | re.S)


def shell_definitions(markdown: str) -> str:
    """The block before the first section that defines `manage` and `preflight`."""
    head = re.split(r"^## ", markdown, flags=re.M)[0]
    (block,) = re.findall(r"^```console\n(.*?)^```$", head, flags=re.M | re.S)
    return block


def substituted(script: str, substitutions: dict[str, str]) -> str:
    lines = script.splitlines()
    for line, replacement in substitutions.items():
        found = [i for i, text in enumerate(lines) if text.strip() == line]
        assert len(found) == 1, f"the runbook has {len(found)} lines {line!r}, expected one"
        lines[found[0]] = replacement
    return "\n".join(lines) + "\n"


@dataclass
class SystemdServer:
    """One booted server: its container, its published ports, the project it runs."""

    name: str
    proxy: str
    database: str
    project: Path
    http_port: int
    https_port: int
    certificates: Certificates
    deploy_output: str
    deploy_seconds: float
    hosts: tuple[str, ...] = ("example.com", "www.example.com")
    admin_username: str = ADMIN_USERNAME
    admin_password: str = ADMIN_PASSWORD
    answers: dict | None = None

    @property
    def domain(self) -> str:
        return self.hosts[0]

    @property
    def ca_path(self) -> Path:
        return self.certificates.ca_path

    def origin(self, host: str | None = None) -> str:
        return f"https://{host or self.domain}"

    def sh(
        self, script: str, *, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        """A root login shell's commands on the server (bash, stops at the first failure)."""
        result = docker("exec", "-i", self.name, "bash", "-e", "-o", "pipefail", "-x", "-s",
                        input=script, timeout=timeout, check=False)  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"on the server, exit {result.returncode}:\n{script}\n--- output\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}\n{self.journal()}"
            )
        return result

    def runbook_shell(self, script: str, **kw) -> subprocess.CompletedProcess:
        """Commands run as the runbook runs them: from the app folder, with its functions."""
        runbook = (self.project / "RUNBOOK.md").read_text()
        return self.sh(shell_definitions(runbook) + "cd /srv/my_site\n" + script, **kw)

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        quoted = " ".join("'" + arg.replace("'", "'\\''") + "'" for arg in args)
        return self.runbook_shell(f"manage {quoted}\n", check=check)

    def systemctl(self, *args: str, check: bool = True) -> str:
        return self.sh(f"systemctl {' '.join(args)}\n", check=check).stdout.strip()

    def journal(self, unit: str = "my_site", lines: int = 40) -> str:
        result = docker("exec", self.name, "journalctl", "--no-pager", "-n", str(lines),
                        "-u", unit, timeout=30, check=False)  # fmt: skip
        return f"--- journal of {unit} ---\n{result.stdout[-5000:]}"

    def journal_json(self, unit: str, since: str = "") -> list[dict]:
        args = ["journalctl", "--no-pager", "-o", "json", "-u", unit]
        if since:
            args += ["--since", since]
        result = docker("exec", self.name, *args, timeout=60)
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def reboot(self) -> None:
        """Power-cycle the server: /run is empty again and every enabled unit starts anew."""
        with steady_network(changing=True):
            docker("restart", "--time", "30", self.name, timeout=120)
        self.wait_for_boot()

    def wait_for_boot(self) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        state = ""
        while time.monotonic() < deadline:
            state = docker("exec", self.name, "systemctl", "is-system-running", timeout=30,
                           check=False).stdout.strip()  # fmt: skip
            if state in ("running", "degraded"):
                return
            time.sleep(0.2)
        raise AssertionError(f"the server did not finish booting: {state}")


def start_systemd_server(
    cleanup: ExitStack, *, template: Path, workdir: Path, ca: trustme.CA, proxy: str,
    database: str, run_id: str,
) -> SystemdServer:  # fmt: skip
    """Render, boot a fresh server and run the runbook's first deploy on it."""
    answers = {"proxy": proxy, "database": database, **(CADDY_TLS if proxy == "caddy" else {})}
    project = render(template, workdir / "my_site", **answers)
    # What the operator pushed: the rendered project, .env left out (git-ignored).
    new_repo(project, "release A")
    git("tag", "release-a", cwd=project)
    certificates = Certificates.issue(ca, ["example.com", "www.example.com"], workdir / "tls")
    image = server_image(project / "pyproject.toml", proxy)

    name = f"shipshape-{run_id[:8]}-systemd-{proxy}-{database}".replace("_", "-")
    # Fixed host ports: a reboot (docker restart) would move ports docker picked itself.
    http_port, https_port = free_port(), free_port()
    docker("rm", "--force", name, check=False)
    with steady_network(changing=True):
        docker("run", "--detach", "--name", name, "--hostname", "server", *SYSTEMD_RUN_FLAGS,
               "--publish", f"127.0.0.1:{http_port}:80", "--publish", f"127.0.0.1:{https_port}:443",
               image)  # fmt: skip
    cleanup.callback(_remove, name)
    server = SystemdServer(name, proxy, database, project, http_port, https_port, certificates,
                           "", 0.0, answers=answers)  # fmt: skip
    server.wait_for_boot()
    docker("cp", project, f"{name}:{REPOSITORY}")
    docker("cp", certificates.ca_path.parent, f"{name}:{TLS}")
    # The smoke test runs as the service user: it reads the CA, never the key.
    server.sh(f"chmod 755 {TLS} && chmod 644 {TLS}/ca.pem && chmod 600 {TLS}/privkey.pem\n")
    if proxy == "caddy":
        server.sh(
            f"install -D -m 644 {TLS}/fullchain.pem {CADDY_TLS['tls_cert']}\n"
            f"install -D -m 640 -g caddy {TLS}/privkey.pem {CADDY_TLS['tls_key']}\n"
        )

    runbook = (project / "RUNBOOK.md").read_text()
    script = shell_definitions(runbook) + "".join(console_blocks(runbook, "First deploy"))
    script = substituted(script, first_deploy_substitutions(answers))
    started = time.monotonic()
    result = server.sh(script, timeout=600)
    server.deploy_seconds = time.monotonic() - started
    server.deploy_output = result.stdout + result.stderr
    # The admin user the smoke tests log in as.
    server.runbook_shell(
        f"DJANGO_SUPERUSER_PASSWORD='{ADMIN_PASSWORD}' manage createsuperuser --noinput"
        f" --username {ADMIN_USERNAME} --email admin@example.com\n"
    )
    return server


def _remove(name: str) -> None:
    with steady_network(changing=True):
        docker("rm", "--force", "--volumes", name, check=False, timeout=120)


def release_substitutions(tag: str, admin_password: str) -> dict[str, str]:
    """Every release / Rollback lines -> what the test runs instead.

    The release tag is the one under test; the smoke test after a release logs in
    as the test's admin (OPS_PASSWORD set as the operator's shell would have it),
    and, as before DNS, connects to 127.0.0.1 and trusts the test CA.
    """
    resolve = (
        " --resolve example.com:443:127.0.0.1 --resolve www.example.com:443:127.0.0.1"
        f" --cacert {TLS}/ca.pem"
    )
    return {
        "git fetch --tags && git checkout <release-tag> && uv sync --no-dev": (
            f"git fetch --tags && git checkout {tag} && uv sync --no-dev"
        ),
        "manage smoketest https://example.com --admin-user <ops-user>"
        " --admin-password-env OPS_PASSWORD": (
            f"OPS_PASSWORD='{admin_password}' manage smoketest https://example.com"
            f" --admin-user {ADMIN_USERNAME} --admin-password-env OPS_PASSWORD{resolve}"
        ),
    }


def rollback_substitutions() -> dict[str, str]:
    resolve = (
        " --resolve example.com:443:127.0.0.1 --resolve www.example.com:443:127.0.0.1"
        f" --cacert {TLS}/ca.pem"
    )
    return {
        "manage smoketest https://example.com": f"manage smoketest https://example.com{resolve}"
    }


def push_release(server: SystemdServer, tag: str, change) -> None:
    """Commit `change(project)` as a new release tagged `tag`, and push it to the server's remote."""
    change(server.project)
    commit_all(server.project, tag)
    git("tag", tag, cwd=server.project)
    docker("cp", f"{server.project}/.", f"{server.name}:{REPOSITORY}")
    # The copy's working tree does not matter: `git fetch` reads only its history.


def runbook_section(server: SystemdServer, section: str, substitutions: dict[str, str], **kw):
    """One section of the rendered runbook (as now checked out on the server), as written."""
    runbook = (server.project / "RUNBOOK.md").read_text()
    script = "".join(console_blocks(runbook, section))
    return server.runbook_shell(substituted(script, substitutions), **kw)
