"""Requests per second through the rendered proxy configs, against gunicorn and a bare server."""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from pathlib import Path

from tests.support.binaries import CURRENT_CADDY, DEBIAN_CADDY
from tests.support.ports import accepts_connections, free_port
from tests.support.processes import wait_until
from tests.support.proxies import nginx_main_conf, start_caddy, start_nginx
from tests.support.stack import Stack, start_gunicorn

from .load import Load, expect_status
from .measure import interleaved, log, row
from .report import first_line

# What stands in front of gunicorn in the proxy rows, by name: (proxy answer, Caddy binary).
PROXIES = {
    "nginx": ("nginx", None),
    "caddy": ("caddy", DEBIAN_CADDY),
    "caddy-current": ("caddy", CURRENT_CADDY),
}

BARE_NGINX = """server {{
    listen {port} ssl;
    server_name {host};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location /static/ {{
        alias {static_root}/;
    }}
}}
"""

BARE_CADDYFILE = """{{
	admin off
	http_port {http_port}
	https_port {port}
	auto_https disable_redirects
}}

{host} {{
	tls {cert} {key}
	handle_path /static/* {{
		root * {static_root}
		file_server
	}}
}}
"""


def gunicorn_workers() -> int:
    """The process count deploy/gunicorn.conf.py picks on this machine (WEB_CONCURRENCY unset)."""
    return min(2 * len(os.sched_getaffinity(0)) + 1, 8)


def restart_gunicorn(stack: Stack, cleanup: ExitStack, workdir: Path) -> tuple[int, int]:
    """Serve the stack with a gunicorn on its unix socket AND a loopback TCP port.

    The rendered proxy config stays unchanged (it reaches gunicorn on the socket);
    wrk reaches the same gunicorn processes directly on TCP. The stack's harness
    starts gunicorn with WEB_CONCURRENCY=2; here the generated config's own
    default applies (2 x CPUs + 1), so the workers are not what limits the proxy.
    """
    stack.processes[0].stop()
    port = free_port()
    env = {k: v for k, v in stack.env.items() if k != "WEB_CONCURRENCY"}
    binds = (stack.answers["gunicorn_bind"], f"127.0.0.1:{port}")
    gunicorn = start_gunicorn(stack, workdir / "gunicorn-bench.log", binds=binds, env=env)
    cleanup.callback(gunicorn.stop)
    stack.processes[0] = gunicorn
    wait_until(
        lambda: (
            accepts_connections(("127.0.0.1", port)) and accepts_connections(stack.gunicorn_address)
        ),
        [gunicorn],
        "gunicorn",
    )
    deadline = time.monotonic() + 30
    workers = 0
    while time.monotonic() < deadline:
        workers = gunicorn.log.read_text().count("Booting worker")
        if workers >= gunicorn_workers():
            break
        time.sleep(0.1)
    return port, workers


def static_file(stack: Stack) -> str:
    """A hashed admin stylesheet from STATIC_ROOT, as ManifestStaticFilesStorage names it."""
    manifest = json.loads((stack.project / "staticfiles" / "staticfiles.json").read_text())
    return manifest["paths"]["admin/css/base.css"]


def start_bare_server(stack: Stack, caddy: str | None, workdir: Path, cleanup: ExitStack) -> int:
    """The same server binary with the smallest config serving STATIC_ROOT over the same cert."""
    folder = workdir / "bare"
    folder.mkdir()
    port = free_port()
    values = {
        "port": port,
        "host": stack.domain,
        "cert": stack.certificates.cert_path,
        "key": stack.certificates.key_path,
        "static_root": stack.project / "staticfiles",
    }
    if caddy is None:
        include = folder / "bare.conf"
        include.write_text(BARE_NGINX.format(**values))
        conf = nginx_main_conf(folder, include)
        process = start_nginx(folder, conf, folder / "nginx.log", name="nginx (bare)")
    else:
        caddyfile = folder / "Caddyfile"
        caddyfile.write_text(BARE_CADDYFILE.format(http_port=free_port(), **values))
        process = start_caddy(caddy, caddyfile, folder, folder / "caddy.log", name="caddy (bare)")
    cleanup.callback(process.stop)
    wait_until(lambda: accepts_connections(("127.0.0.1", port)), [process], process.name)
    return port


def proxy_rows(name: str, stack: Stack, workdir: Path, cleanup: ExitStack, args) -> list[dict]:
    """The dynamic-page and static-file rows for one proxy of PROXIES."""
    caddy = PROXIES[name][1]
    port, workers = restart_gunicorn(stack, cleanup, workdir)
    load = Load(workdir, stack.hosts, args.duration, args.connections)
    direct_headers = {"Host": stack.domain, "X-Forwarded-Proto": "https"}
    direct_url = f"http://127.0.0.1:{port}/"
    proxied_url = stack.url("/")
    expect_status(direct_url, stack, 200, direct_headers)
    expect_status(proxied_url, stack, 200)

    static_path = "/static/" + static_file(stack)
    bare_port = start_bare_server(stack, caddy, workdir, cleanup)
    static_url = stack.url(static_path)
    bare_url = f"https://{stack.domain}:{bare_port}{static_path}"
    expect_status(static_url, stack, 200)
    expect_status(bare_url, stack, 200)

    if not args.quick:
        log(f"{name}: warm-up")
        for url, headers in (
            (direct_url, direct_headers),
            (proxied_url, None),
            (static_url, None),
            (bare_url, None),
        ):
            load.requests_per_second(url, headers, duration=1)

    log(f"{name}: dynamic page, {args.runs_load} x {args.duration:g} s each side")
    proxied, direct = interleaved(
        args.runs_load,
        lambda: load.requests_per_second(proxied_url),
        lambda: load.requests_per_second(direct_url, direct_headers),
    )
    log(f"{name}: static file, {args.runs_load} x {args.duration:g} s each side")
    rendered, bare = interleaved(
        args.runs_load,
        lambda: load.requests_per_second(static_url),
        lambda: load.requests_per_second(bare_url),
    )
    label = name if caddy is None else f"Caddy {first_line([caddy, 'version']).split()[0]}"
    load_settings = {
        "connections": args.connections,
        "duration_seconds": args.duration,
        "wrk_threads": 1,
        "gunicorn_workers": workers,
        "gunicorn_threads_per_worker": 4,
    }
    return [
        row(
            f"dynamic-{name}",
            f"dynamic page (/) requests/s through the rendered {label} config",
            f"the same gunicorn reached directly over loopback TCP ({workers} workers x 4 threads)",
            "req/s",
            proxied,
            direct,
            ">=",
            0.85,
            load=load_settings,
        ),
        row(
            f"static-{name}",
            f"static file requests/s through the rendered {label} config",
            "the same server binary with a bare config serving the same file over the same "
            "certificate",
            "req/s",
            rendered,
            bare,
            ">=",
            0.9,
            load=load_settings,
            file=static_path,
        ),
    ]
