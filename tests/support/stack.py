"""One rendered project served the way its deploy/ files say, over TLS on loopback.

A `Stack` is gunicorn started with deploy/gunicorn.conf.py, and in front of it
nginx or Caddy started from the rendered config unchanged (or, for load_balancer,
a test-only TLS-terminating nginx standing in for the load balancer). Every port
is a free high port on this machine and every path a temporary one, passed in as
answers. The end-to-end and browser tests, the bundled checks' tests and the
benchmarks serve their projects this way: a stack gives its public URLs, ports,
CA bundle and admin credentials.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .binaries import DEBIAN_CADDY
from .client import DROPPED, Client
from .ports import accepts_connections, free_port
from .processes import (
    STARTUP_TIMEOUT,
    Process,
    ServerFailed,
    clean_env,
    run,
    start_process,
    wait_until,
)
from .project import settings_module
from .proxies import nginx_main_conf, nginx_test, start_caddy, start_nginx
from .rendering import render

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "e2e-Admin-password-9f3b"
LB_FRONT_CONF = Path(__file__).resolve().parent / "load_balancer_front.conf"


@dataclass
class Certificates:
    """A local test CA and one leaf certificate for a list of hostnames."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    @classmethod
    def issue(cls, ca: trustme.CA, hosts: list[str], folder: Path) -> Certificates:
        folder.mkdir(parents=True, exist_ok=True)
        certificates = cls(folder / "ca.pem", folder / "fullchain.pem", folder / "privkey.pem")
        ca.cert_pem.write_to_path(str(certificates.ca_path))
        cert_pem, key_pem = issue_leaf(ca, hosts)
        certificates.key_path.write_bytes(key_pem)
        certificates.cert_path.write_bytes(cert_pem)
        return certificates


def issue_leaf(ca: trustme.CA, hosts: list[str]) -> tuple[bytes, bytes]:
    """A leaf certificate shaped like Let's Encrypt's, signed by the test CA: (cert, key) PEM.

    trustme's own leaves live 1000 years and mark their subjectAltName critical
    beside a subject, which RFC 5280 forbids: sslyze's path validation and the
    Mozilla profiles' 366-day limit refuse them. These have an ECDSA P-256 key,
    CN = the first host, a non-critical subjectAltName and 90 days of validity.
    """
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


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
        # As in production, gunicorn listens on every interface for a load balancer
        # on another host; the tests reach it on 127.0.0.1.
        answers.setdefault("gunicorn_bind", f"0.0.0.0:{gunicorn_port}")
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
    gunicorn = start_gunicorn(stack, logs / "gunicorn.log")
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


def start_gunicorn(
    stack: Stack, log: Path, binds: tuple[str, ...] = (), env: dict | None = None
) -> Process:
    """gunicorn with the rendered deploy/gunicorn.conf.py; `binds` replace its own bind."""
    bind_args = [arg for bind in binds for arg in ("-b", bind)]
    return start_process(
        "gunicorn",
        [stack.python.parent / "gunicorn", "-c", "deploy/gunicorn.conf.py", *bind_args,
         f"{stack.slug}.wsgi"],
        cwd=stack.project, env=stack.env if env is None else env, log=log,
        stop_signal=signal.SIGINT,
    )  # fmt: skip


def serves_home_page(stack: Stack) -> bool:
    client = Client(stack.ca_path, stack.http_port, stack.https_port, timeout=STARTUP_TIMEOUT)
    try:
        return client.get("/", host=stack.domain).status_code == 200
    except DROPPED:
        return False


def write_load_balancer_front(
    folder: Path, http_port: int, https_port: int, certificates: Certificates, upstream: str
) -> Path:
    """The stand-in load balancer's nginx site (load_balancer_front.conf) in `folder`:
    TLS with the site's certificate on the public ports, plain HTTP to `upstream`."""
    include = folder / "load_balancer_front.conf"
    include.write_text(
        LB_FRONT_CONF.read_text()
        .replace("@HTTP_PORT@", str(http_port))
        .replace("@HTTPS_PORT@", str(https_port))
        .replace("@CERT@", str(certificates.cert_path))
        .replace("@KEY@", str(certificates.key_path))
        .replace("@GUNICORN@", upstream)
    )
    return include


def start_front(stack: Stack, workdir: Path, caddy: str) -> Process:
    """Start what stands in front of gunicorn, from the rendered config unchanged."""
    front_dir = workdir / "front"
    front_dir.mkdir()
    log = workdir / "logs" / f"{stack.proxy}.log"
    if stack.proxy == "caddy":
        caddyfile = stack.project / "deploy" / "caddy" / "Caddyfile"
        return start_caddy(caddy, caddyfile, front_dir, log, name=f"caddy ({caddy})")
    if stack.proxy == "nginx":
        include = stack.project / "deploy" / "nginx" / f"{stack.slug}.conf"
    else:
        host, port = stack.gunicorn_address
        include = write_load_balancer_front(
            front_dir, stack.http_port, stack.https_port, stack.certificates, f"{host}:{port}"
        )
    conf = nginx_main_conf(front_dir, include)
    checked = nginx_test(conf)
    if checked.returncode != 0:
        raise ServerFailed(f"nginx -t failed for {include}:\n{checked.stderr}")
    return start_nginx(front_dir, conf, log)
