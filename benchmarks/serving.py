"""Serving: the rendered proxies against their limit, against the peers, under slow clients."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.binaries import CURRENT_CADDY, DEBIAN_CADDY
from tests.support.ports import accepts_connections, free_port
from tests.support.processes import Process, start_process, wait_until
from tests.support.proxies import nginx_main_conf, start_caddy, start_nginx
from tests.support.stack import Stack, start_gunicorn

from .load import Load, expect_status, pinned
from .measure import interleaved, log, row, summary
from .report import first_line

# What stands in front of gunicorn in the proxy rows, by name: (proxy answer, Caddy binary).
PROXIES = {
    "nginx": ("nginx", None),
    "caddy": ("caddy", DEBIAN_CADDY),
    "caddy-current": ("caddy", CURRENT_CADDY),
}

# The same server with the least config that serves the page: the same certificate,
# TLS settings and upstream, plus only what Django needs to answer 200 (the Host,
# and that the request came over HTTPS; Caddy sends both by itself).
BARE_NGINX = """server {{
    listen {listen};
    server_name {host};
    ssl_certificate {cert};
    ssl_certificate_key {key};
{tls}
    location /static/ {{
        alias {static_root}/;
    }}
    location / {{
        proxy_pass http://{upstream};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
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
	reverse_proxy {upstream}
}}
"""

# The classic tutorial's server block (Debian's proxy_params spelled out), over the
# same certificate: proxy_pass to gunicorn on 127.0.0.1, no upstream keepalive.
TUTORIAL_NGINX = """server {{
    listen {port} ssl;
    server_name {host};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location /static/ {{
        alias {static_root}/;
    }}
    location / {{
        proxy_set_header Host $http_host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_pass http://127.0.0.1:{upstream};
    }}
}}
"""

# The stacks teams copy today: the gunicorn command line, and its environment.
PEERS = {
    # "gunicorn myproject.wsgi --bind 127.0.0.1:8000": one sync worker.
    "tutorial": {"args": [], "env": {}},
    # cookiecutter-django: compose/production/django/start runs
    # "gunicorn config.wsgi --bind 0.0.0.0:5000 --chdir=/app" and
    # .envs/.production/.django sets WEB_CONCURRENCY=4: four sync workers.
    "cookiecutter-django": {"args": [], "env": {"WEB_CONCURRENCY": "4"}},
}

CONNECTIONS = (8, 64, 256)
SLOW_CLIENTS = 100


def gunicorn_settings(stack: Stack, env: dict[str, str]) -> dict:
    """The worker class, process and thread counts deploy/gunicorn.conf.py resolves to here."""
    done = subprocess.run(
        [stack.python.parent / "gunicorn", "-c", "deploy/gunicorn.conf.py", "--print-config",
         f"{stack.slug}.wsgi"],
        cwd=stack.project, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    resolved = dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition("=") for line in done.stdout.splitlines())
    )
    return {
        "worker_class": resolved["worker_class"],
        "workers": int(resolved["workers"]),
        "threads": int(resolved["threads"]) if resolved["worker_class"] == "gthread" else 1,
    }


def workers_label(settings: dict) -> str:
    """'3 sync workers', or '5 gthread workers x 4 threads'."""
    label = f"{settings['workers']} {settings['worker_class']} workers"
    return label + (f" x {settings['threads']} threads" if settings["threads"] > 1 else "")


def wait_for_workers(process: Process, count: int) -> int:
    deadline = time.monotonic() + 30
    workers = 0
    while time.monotonic() < deadline:
        workers = process.log.read_text().count("Booting worker")
        if workers >= count:
            break
        time.sleep(0.1)
    return workers


def restart_gunicorn(stack: Stack, cleanup: ExitStack, workdir: Path) -> dict:
    """Serve the stack with the generated config's own workers, as in production.

    The stack's harness starts gunicorn with WEB_CONCURRENCY=2; here
    deploy/gunicorn.conf.py's own count applies. Returns what it resolved to
    (worker class, processes, threads) and how many workers booted.
    """
    stack.processes[0].stop()
    env = {k: v for k, v in stack.env.items() if k != "WEB_CONCURRENCY"}
    settings = gunicorn_settings(stack, env)
    gunicorn = start_gunicorn(stack, workdir / "gunicorn-bench.log", env=env)
    cleanup.callback(gunicorn.stop)
    stack.processes[0] = gunicorn
    wait_until(lambda: accepts_connections(stack.gunicorn_address), [gunicorn], "gunicorn")
    return {**settings, "booted": wait_for_workers(gunicorn, settings["workers"])}


def static_file(stack: Stack) -> str:
    """A hashed admin stylesheet from STATIC_ROOT, as ManifestStaticFilesStorage names it."""
    manifest = json.loads((stack.project / "staticfiles" / "staticfiles.json").read_text())
    return manifest["paths"]["admin/css/base.css"]


def rendered_tls(stack: Stack) -> tuple[str, str]:
    """The rendered nginx site's `listen` flags and TLS lines, for the bare config."""
    text = (stack.project / "deploy" / "nginx" / f"{stack.slug}.conf").read_text()
    listen = re.search(rf"^\s*listen ({stack.https_port} ssl[^;]*);", text, re.M).group(1)
    tls = re.findall(
        r"^\s*(ssl_(?:protocols|ecdh_curve|ciphers|prefer_server_ciphers|session_\w+) [^;]*;)",
        text,
        re.M,
    )
    # The default server repeats the site's TLS lines: each is kept once.
    return listen, "\n".join(f"    {line}" for line in dict.fromkeys(tls))


def start_nginx_site(folder: Path, site: str, port: int, name: str, cleanup: ExitStack) -> Process:
    folder.mkdir()
    include = folder / "site.conf"
    include.write_text(site)
    conf = nginx_main_conf(folder, include)
    process = start_nginx(folder, conf, folder / "nginx.log", name=name)
    cleanup.callback(process.stop)
    wait_until(lambda: accepts_connections(("127.0.0.1", port)), [process], name)
    return process


def start_bare_server(
    stack: Stack, caddy: str | None, workdir: Path, cleanup: ExitStack
) -> tuple[int, Process]:
    """The same server binary with a bare reverse-proxy config: same cert, TLS and upstream."""
    port = free_port()
    values = {
        "port": port,
        "host": stack.domain,
        "cert": stack.certificates.cert_path,
        "key": stack.certificates.key_path,
        "static_root": stack.project / "staticfiles",
    }
    if caddy is None:
        listen, tls = rendered_tls(stack)
        listen = listen.replace(str(stack.https_port), str(port), 1)
        site = BARE_NGINX.format(
            listen=listen, tls=tls, upstream=f"unix:{stack.gunicorn_address}:", **values
        )
        return port, start_nginx_site(workdir / "bare", site, port, "nginx (bare)", cleanup)
    folder = workdir / "bare"
    folder.mkdir()
    caddyfile = folder / "Caddyfile"
    caddyfile.write_text(
        BARE_CADDYFILE.format(
            http_port=free_port(), upstream=f"unix/{stack.gunicorn_address}", **values
        )
    )
    process = start_caddy(caddy, caddyfile, folder, folder / "caddy.log", name="caddy (bare)")
    cleanup.callback(process.stop)
    wait_until(lambda: accepts_connections(("127.0.0.1", port)), [process], process.name)
    return port, process


def caddy_label(caddy: str | None, name: str) -> str:
    return name if caddy is None else f"Caddy {first_line([caddy, 'version']).split()[0]}"


def proxy_rows(name: str, stack: Stack, workdir: Path, cleanup: ExitStack, args) -> list[dict]:
    """Against the limit: the rendered config vs a bare one of the same binary; slow clients."""
    caddy = PROXIES[name][1]
    workers = restart_gunicorn(stack, cleanup, workdir)
    load = Load(workdir, stack.hosts, args.duration, args.connections)
    bare_port, bare_server = start_bare_server(stack, caddy, workdir, cleanup)
    rendered_server = stack.processes[-1]
    static_path = "/static/" + static_file(stack)
    urls = {
        "dynamic": (stack.url("/"), f"https://{stack.domain}:{bare_port}/"),
        "static": (stack.url(static_path), f"https://{stack.domain}:{bare_port}{static_path}"),
    }
    for pair in urls.values():
        for url in pair:
            expect_status(url, stack, 200)
    if not args.quick:
        log(f"{name}: warm-up")
        for pair in urls.values():
            for url in pair:
                load.requests_per_second(url, duration=1)

    label = caddy_label(caddy, name)
    load_settings = {
        "connections": args.connections,
        "duration_seconds": args.duration,
        "wrk_threads": 1,
        "wrk_cpu": pinned()[2] if pinned() else None,
        "gunicorn_worker_class": workers["worker_class"],
        "gunicorn_workers": workers["booted"],
        "gunicorn_threads_per_worker": workers["threads"],
    }
    rows = []
    for kind, (rendered_url, bare_url) in urls.items():
        log(f"{name}: {kind}, {args.runs_load} x {args.duration:g} s each side")
        rendered, bare = interleaved(
            args.runs_load,
            lambda url=rendered_url: load.cost(url, rendered_server.popen.pid),
            lambda url=bare_url: load.cost(url, bare_server.popen.pid),
        )
        page = "dynamic page (/)" if kind == "dynamic" else "static file"
        twin = (
            f"the same {label} binary with a bare reverse-proxy config (same certificate, "
            "TLS settings and upstream)"
        )
        extra = {"load": load_settings, **({"file": static_path} if kind == "static" else {})}
        rows.append(
            row(
                f"limit-{kind}-{name}",
                f"{page} requests/s through the rendered {label} config",
                twin,
                "req/s",
                [run["rps"] for run in rendered],
                [run["rps"] for run in bare],
                ">=",
                0.95,
                **extra,
            )
        )
        # The same runs, seen from the server: its CPU time per request. 0.95x the
        # throughput at the limit is 1/0.95 the CPU per request.
        rows.append(
            row(
                f"limit-cpu-{kind}-{name}",
                f"{page}: CPU time of the rendered {label} config's processes per request",
                f"{twin}, the same runs",
                "µs/request",
                [run["cpu_us_per_request"] for run in rendered],
                [run["cpu_us_per_request"] for run in bare],
                "<=",
                round(1 / 0.95, 3),
                **extra,
            )
        )
    rows.append(slow_clients_row(name, label, stack, load, urls["dynamic"][0], args))
    return rows


def slow_clients_row(name: str, label: str, stack: Stack, load: Load, url: str, args) -> dict:
    """p99 of a normal client while SLOW_CLIENTS connections trickle requests, vs without."""
    port = urlsplit(url).port

    def loaded() -> float:
        holders = subprocess.Popen(
            [*pinned(), sys.executable, "-m", "benchmarks.slow_clients", stack.domain, str(port),
             str(stack.ca_path), str(SLOW_CLIENTS), str(args.duration + 10)],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        try:
            ready = holders.stdout.readline().strip()
            if ready != "ready":
                raise RuntimeError(f"the slow clients could not connect to {url}")
            return load.latency(url, args.connections)["p99_ms"]
        finally:
            holders.terminate()
            holders.wait(timeout=30)

    def unloaded() -> float:
        return load.latency(url, args.connections)["p99_ms"]

    log(f"{name}: slow clients, {args.runs_load} runs each side")
    with_slow, without = interleaved(args.runs_load, loaded, unloaded)
    return row(
        f"slow-clients-{name}",
        f"p99 latency of {args.connections} connections through {label} while "
        f"{SLOW_CLIENTS} slow clients trickle requests",
        "the same p99 without the slow clients",
        "ms",
        with_slow,
        without,
        "<=",
        10,
        slow_clients=SLOW_CLIENTS,
    )


def start_peer(
    peer: str, stack: Stack, workdir: Path, cleanup: ExitStack
) -> tuple[int, list[Process], int]:
    """A peer stack: gunicorn as its public files start it, behind the tutorial's nginx.

    Returns the nginx port, the servers (gunicorn, nginx) and the workers booted.
    """
    folder = workdir / f"peer-{peer}"
    folder.mkdir()
    upstream = free_port()
    # Each gunicorn 25.1+ opens a control socket under $XDG_RUNTIME_DIR: a folder
    # of its own, so two peers do not fight over one.
    runtime = folder / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in stack.env.items() if k != "WEB_CONCURRENCY"}
    env.update(PEERS[peer]["env"], XDG_RUNTIME_DIR=str(runtime))
    gunicorn = start_process(
        f"gunicorn ({peer})",
        [stack.python.parent / "gunicorn", f"{stack.slug}.wsgi", "--bind",
         f"127.0.0.1:{upstream}", *PEERS[peer]["args"]],
        cwd=stack.project, env=env, log=folder / "gunicorn.log",
        stop_signal=signal.SIGINT,
    )  # fmt: skip
    cleanup.callback(gunicorn.stop)
    wait_until(lambda: accepts_connections(("127.0.0.1", upstream)), [gunicorn], gunicorn.name)
    workers = wait_for_workers(gunicorn, int(env.get("WEB_CONCURRENCY", 1)))
    port = free_port()
    site = TUTORIAL_NGINX.format(
        port=port,
        host=stack.domain,
        cert=stack.certificates.cert_path,
        key=stack.certificates.key_path,
        static_root=stack.project / "staticfiles",
        upstream=upstream,
    )
    nginx = start_nginx_site(folder / "nginx", site, port, f"nginx ({peer})", cleanup)
    return port, [gunicorn, nginx], workers


def peer_rows(stack: Stack, workdir: Path, cleanup: ExitStack, args) -> list[dict]:
    """Against the peers: the rendered nginx stack vs the stacks teams copy, at 8/64/256."""
    load = Load(workdir, stack.hosts, args.duration, args.connections)
    ours = stack.url("/")
    mine_settings = gunicorn_settings(
        stack, {k: v for k, v in stack.env.items() if k != "WEB_CONCURRENCY"}
    )
    rendered = f"the rendered nginx stack ({workers_label(mine_settings)})"
    peers = {}
    for peer in PEERS:
        port, servers, workers = start_peer(peer, stack, workdir, cleanup)
        url = f"https://{stack.domain}:{port}/"
        expect_status(url, stack, 200)
        peers[peer] = (url, servers, workers)
    # The rendered stack's servers: gunicorn and nginx.
    sides = [(ours, [stack.processes[0], stack.processes[-1]])]
    sides += [(url, servers) for url, servers, _ in peers.values()]
    if not args.quick:
        log("peers: warm-up")
        for url, _ in sides:
            load.requests_per_second(url, duration=1)

    rows = []
    for connections in CONNECTIONS:
        log(f"peers, {connections} connections: {args.runs_load} x {args.duration:g} s each")
        measured = interleaved(
            args.runs_load,
            *(
                lambda url=url, servers=servers, c=connections: load.latency(
                    url, c, [server.popen.pid for server in servers]
                )
                for url, servers in sides
            ),
        )
        mine = measured[0]
        for (peer, (_, _, workers)), theirs in zip(peers.items(), measured[1:], strict=True):
            common = {
                "connections": connections,
                "peer_gunicorn_workers": workers,
                "rendered_gunicorn": mine_settings,
                "p50_ms": {
                    "rendered": summary([m["p50_ms"] for m in mine]),
                    "peer": summary([m["p50_ms"] for m in theirs]),
                },
                "errors": {
                    "rendered": sorted({e for m in mine for e in m["errors"]}),
                    "peer": sorted({e for m in theirs for e in m["errors"]}),
                },
            }
            stack_label = f"the {peer} stack ({workers} sync worker{'s' * (workers > 1)})"
            rows.append(
                row(
                    f"peer-{peer}-rps-c{connections}",
                    f"requests/s of {rendered}, {connections} connections",
                    stack_label,
                    "req/s",
                    [m["rps"] for m in mine],
                    [m["rps"] for m in theirs],
                    ">=",
                    1.5,
                    **common,
                )
            )
            rows.append(
                row(
                    f"peer-{peer}-p99-c{connections}",
                    f"p99 latency of {rendered}, {connections} connections",
                    f"the {peer} stack's p99",
                    "ms",
                    [m["p99_ms"] for m in mine],
                    [m["p99_ms"] for m in theirs],
                    "<=",
                    0.5,
                    **common,
                )
            )
            # What the servers (gunicorn and nginx) spent per request, in the same
            # runs: 1.5x the throughput on the same CPUs needs each request to cost
            # at most 1/1.5 of the peer's CPU time.
            rows.append(
                row(
                    f"peer-{peer}-cpu-c{connections}",
                    f"CPU time of {rendered}'s servers per request, {connections} connections",
                    f"{stack_label}, the same runs",
                    "µs/request",
                    [m["cpu_us_per_request"] for m in mine],
                    [m["cpu_us_per_request"] for m in theirs],
                    "<=",
                    round(1 / 1.5, 3),
                    **common,
                )
            )
    for peer, (url, _, _) in peers.items():
        rows.append(slow_clients_row(peer, f"the {peer} stack", stack, load, url, args))
    return rows
