"""nginx and Caddy started by the tests, each in a folder of its own.

The rendered nginx config is an http-context file: `nginx_main_conf` wraps it in the
smallest nginx.conf that keeps every path nginx writes in that folder. Caddy keeps
its data and config under the folder too, never in the user's home.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from .binaries import NGINX
from .processes import Process, clean_env, start_process


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
    # One client connection and one to gunicorn each: room for the benchmarks' 256.
    worker_connections 1024;
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


def start_nginx(folder: Path, conf: Path, log: Path, name: str = "nginx") -> Process:
    """nginx in the foreground on a main config from `nginx_main_conf`."""
    return start_process(
        name, [NGINX, "-p", folder, "-c", conf], cwd=folder, env=clean_env(), log=log
    )


def caddy_env(folder: Path) -> dict[str, str]:
    """A clean environment that keeps Caddy's data and config inside `folder`."""
    return clean_env(
        HOME=str(folder), XDG_DATA_HOME=str(folder / "data"), XDG_CONFIG_HOME=str(folder / "config")
    )


def start_caddy(caddy: str, caddyfile: Path, folder: Path, log: Path, name: str) -> Process:
    """The `caddy` binary in the foreground on a Caddyfile, its state under `folder`."""
    return start_process(
        name, [caddy, "run", "--config", caddyfile, "--adapter", "caddyfile"],
        cwd=folder, env=caddy_env(folder), log=log, stop_signal=signal.SIGINT,
    )  # fmt: skip
