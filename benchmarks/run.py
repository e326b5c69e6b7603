"""Benchmarks for django-shipshape: each cost measured beside a baseline, in one run.

    python benchmarks/run.py            # the full run (a few minutes), as `nox -s bench` does
    python benchmarks/run.py --quick    # 1 run, 1 s of load, nginx only: proves the script works

Every row is a ratio to a baseline measured in the same run on the same machine,
interleaved run by run, so drift and noise hit both sides alike:

- copier copy and update of the template, against a trivial template with the
  same number of files and questions (in-process, so interpreter start-up does
  not dilute the ratio);
- `manage.py check --deploy` with the bundled `shipshape` app, against the same
  project without it in INSTALLED_APPS;
- `manage.py smoketest` against a live stack, against its own slowest request;
- requests per second through the rendered nginx and Caddy configs (wrk over
  TLS, loopback only), against gunicorn reached directly for a dynamic page and
  against a bare config of the same server for a static file.

Prints a Markdown table and writes benchmarks/results/latest.json (with the
machine and the versions measured). Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import copier  # noqa: E402
import trustme  # noqa: E402
from copier import Settings  # noqa: E402

from tests.conftest import commit_as_tests, ensure_project_venv, git, snapshot_template  # noqa: E402
from tests.e2e.servers import (  # noqa: E402
    CURRENT_CADDY,
    DEBIAN_CADDY,
    NGINX,
    Stack,
    accepts_connections,
    clean_env,
    free_port,
    nginx_main_conf,
    start_process,
    start_stack,
    wait_until,
)

RESULTS = Path(__file__).resolve().parent / "results"
DJANGO_SERIES = "5.2"
ADMIN_PASSWORD_VARIABLE = "SHIPSHAPE_BENCH_ADMIN_PASSWORD"
# Template versions for the update rows: an unchanged release and one with changes.
BASE, UNCHANGED, CHANGED = "0.1.0", "0.1.1", "0.2.0"
# The "with changes" release edits this many files in either template.
CHANGED_FILES = 2
# What stands in front of gunicorn in the proxy rows, by name: (proxy answer, Caddy binary).
PROXIES = {
    "nginx": ("nginx", None),
    "caddy": ("caddy", DEBIAN_CADDY),
    "caddy-current": ("caddy", CURRENT_CADDY),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Wall time of each part of the run, for the JSON: where a slow run spent its time.
PHASES: dict[str, float] = {}


@contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        PHASES[name] = round(PHASES.get(name, 0) + time.monotonic() - started, 1)


# Statistics and rows ----------------------------------------------------------------


def summary(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": [round(v, 6) for v in values],
    }


def row(row_id, what, baseline, unit, subject_values, baseline_values, op, target, **extra):
    subject, base = summary(subject_values), summary(baseline_values)
    ratio = round(subject["median"] / base["median"], 3)
    met = ratio <= target if op == "<=" else ratio >= target
    return {
        "id": row_id,
        "what": what,
        "baseline": baseline,
        "unit": unit,
        "subject": subject,
        "baseline_stats": base,
        "ratio": ratio,
        "target": {"op": op, "value": target},
        "met": met,
        **extra,
    }


def interleaved(runs: int, *measures: Callable[[], float]) -> list[list[float]]:
    """Run each measure `runs` times, alternating, so drift hits every side alike."""
    results: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for values, measure in zip(results, measures, strict=True):
            values.append(measure())
    return results


# Copier: the template against a trivial one ----------------------------------------------


def question_names() -> list[str]:
    names = []
    for line in (ROOT / "copier.yml").read_text().splitlines():
        found = re.match(r"^([a-z][a-z0-9_]*):", line)
        if found:
            names.append(found.group(1))
    return names


def template_files(template: Path) -> list[Path]:
    return sorted(p for p in (template / "template").rglob("*") if p.is_file())


def make_trivial_template(dest: Path, files: int, jinja_files: int, questions: int) -> Path:
    """A template copier has almost nothing to do for: same file and question counts.

    Plain str questions with defaults, one line per file, no tasks, no macros, no
    conditional names; the answers file template is the one a template needs to be
    updatable at all.
    """
    dest.mkdir(parents=True)
    lines = [
        "_subdirectory: template",
        "_templates_suffix: .jinja",
        "_answers_file: .copier-answers.yml",
    ]
    for n in range(questions):
        lines += [f"q{n:02d}:", "  type: str", f'  default: "value {n}"']
    (dest / "copier.yml").write_text("\n".join(lines) + "\n")
    folder = dest / "template"
    folder.mkdir()
    (folder / "{{_copier_conf.answers_file}}.jinja").write_text(
        "# Changes here will be overwritten by Copier\n{{ _copier_answers|to_nice_yaml -}}\n"
    )
    for n in range(files - 1):
        sub = folder / f"part{n % 5}"
        sub.mkdir(exist_ok=True)
        if n < jinja_files - 1:
            (sub / f"file{n:02d}.txt.jinja").write_text(f"{{{{ q{n % questions:02d} }}}}\n")
        else:
            (sub / f"file{n:02d}.txt").write_text(f"plain file {n}\n")
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    commit_as_tests(dest, "trivial template")
    git("tag", BASE, cwd=dest)
    return dest


def add_releases(template: Path, edit: list[Path]) -> None:
    """Tag an unchanged release, then one that edits a few files (a line added to each)."""
    commit_as_tests(template, "unchanged release")
    git("tag", UNCHANGED, cwd=template)
    for path in edit:
        path.write_text(path.read_text() + "\n# A line added by the next release.\n")
    git("add", "-A", cwd=template)
    commit_as_tests(template, "release with changes")
    git("tag", CHANGED, cwd=template)


def copy(template: Path, dest: Path, vcs_ref: str = BASE, skip_tasks: bool = False) -> None:
    copier.run_copy(
        str(template),
        dest,
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref=vcs_ref,
        skip_tasks=skip_tasks,
        settings=Settings(),
    )


def timed_copy(template: Path, workdir: Path, skip_tasks: bool = False) -> Callable[[], float]:
    count = iter(range(10_000))
    prefix = "copy-no-tasks" if skip_tasks else "copy"

    def measure() -> float:
        dest = workdir / f"{prefix}-{next(count)}"
        started = time.perf_counter()
        copy(template, dest, skip_tasks=skip_tasks)
        return time.perf_counter() - started

    return measure


def committed_copy(template: Path, dest: Path) -> Path:
    """A project copied at BASE and committed, as `copier update` wants it."""
    copy(template, dest)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    commit_as_tests(dest, "generated")
    return dest


def timed_update(pristine: Path, workdir: Path, to: str) -> Callable[[], float]:
    """Time `copier update` from BASE to `to` of a fresh duplicate of a committed project."""
    count = iter(range(10_000))

    def measure() -> float:
        dest = workdir / f"update-{to}-{next(count)}"
        shutil.copytree(pristine, dest, symlinks=True)
        started = time.perf_counter()
        copier.run_update(
            dest,
            vcs_ref=to,
            overwrite=True,
            unsafe=True,
            defaults=True,
            conflict="inline",
            quiet=True,
            settings=Settings(),
        )
        elapsed = time.perf_counter() - started
        # The answers file records the new version in either case.
        status = git("status", "--porcelain", "--", ".", ":!.copier-answers.yml", cwd=dest)
        if to == UNCHANGED and status.strip():
            raise RuntimeError(f"an update without changes changed files:\n{status}")
        if to == CHANGED and not status.strip():
            raise RuntimeError(f"the update with changes changed nothing in {dest}")
        return elapsed

    return measure


def copier_rows(real: Path, workdir: Path, runs: int, warmup: bool) -> tuple[list[dict], dict]:
    files = template_files(real)
    jinja = [p for p in files if p.name.endswith(".jinja")]
    questions = question_names()
    trivial = make_trivial_template(workdir / "trivial", len(files), len(jinja), len(questions))
    real_copies, trivial_copies = workdir / "real-copies", workdir / "trivial-copies"
    real_copies.mkdir()
    trivial_copies.mkdir()
    add_releases(
        real,
        [
            real / "template" / "README.md.jinja",
            real / "template" / "deploy" / "gunicorn.conf.py.jinja",
        ],
    )
    add_releases(trivial, template_files(trivial)[1 : 1 + CHANGED_FILES])
    if warmup:
        log("copier: warm-up")
        timed_copy(real, real_copies)()
        timed_copy(trivial, trivial_copies)()
    log(f"copier copy: {runs} runs each")
    # The template's tasks (a Python subprocess each) are part of its cost; the same
    # copy without them, interleaved too, says how much of the ratio they are.
    real_copy, trivial_copy, real_copy_without_tasks = interleaved(
        runs,
        timed_copy(real, real_copies),
        timed_copy(trivial, trivial_copies),
        timed_copy(real, real_copies, skip_tasks=True),
    )
    rows = [
        row(
            "copier-copy",
            "copier copy --defaults of the template",
            f"a trivial template with the same number of files ({len(files)}) and questions "
            f"({len(questions)})",
            "s",
            real_copy,
            trivial_copy,
            "<=",
            1.25,
            template_without_tasks=summary(real_copy_without_tasks),
            ratio_without_tasks=round(
                statistics.median(real_copy_without_tasks) / statistics.median(trivial_copy), 3
            ),
        )
    ]
    written = [p for p in (real_copies / "copy-0").rglob("*") if p.is_file()]
    shape = {
        "template_files": len(files),
        "template_jinja_files": len(jinja),
        "questions": len(questions),
        "files_written_by_copy_defaults": len(written),
        "files_changed_by_the_changed_release": CHANGED_FILES,
    }
    real_pristine = committed_copy(real, workdir / "real-pristine")
    trivial_pristine = committed_copy(trivial, workdir / "trivial-pristine")
    for to, label in ((UNCHANGED, "no change"), (CHANGED, f"changes in {CHANGED_FILES} files")):
        log(f"copier update ({label}): {runs} runs each")
        real_update, trivial_update = interleaved(
            runs,
            timed_update(real_pristine, real_copies, to),
            timed_update(trivial_pristine, trivial_copies, to),
        )
        row_id = "copier-update-unchanged" if to == UNCHANGED else "copier-update-changed"
        rows.append(
            row(
                row_id,
                f"copier update, {label} ({BASE} -> {to})",
                "the same update of the trivial template",
                "s",
                real_update,
                trivial_update,
                "<=",
                1.25,
            )
        )
    return rows, shape


# check --deploy with and without the bundled app -------------------------------------


SETTINGS_WRAPPER = '''"""Benchmark settings: production{what}."""

from {module} import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in {removed!r}]  # noqa: F405
'''


def check_deploy_row(stack: Stack, workdir: Path, runs: int, warmup: bool) -> dict:
    """`manage.py check --deploy` on a copy of the stack's project, committed to git as deployed.

    Both sides load a settings module of the same shape; one drops `shipshape`
    from INSTALLED_APPS. The command is timed as a person runs it: a new process.
    """
    project = workdir / "check" / stack.slug
    shutil.copytree(stack.project, project, symlinks=True)
    module = stack.env["DJANGO_SETTINGS_MODULE"]
    for name, removed in (
        ("bench_with_shipshape", ()),
        ("bench_without_shipshape", ("shipshape",)),
    ):
        what = "" if not removed else ", without the bundled shipshape app"
        (project / f"{name}.py").write_text(
            SETTINGS_WRAPPER.format(what=what, module=module, removed=removed)
        )
    git("init", "-q", "-b", "main", cwd=project)
    git("add", "-A", cwd=project)
    commit_as_tests(project, "deployed")
    outputs: dict[str, str] = {}

    def measure(settings_module: str) -> Callable[[], float]:
        def run_check() -> float:
            env = {**stack.env, "DJANGO_SETTINGS_MODULE": settings_module}
            started = time.perf_counter()
            done = subprocess.run(
                [stack.python, "manage.py", "check", "--deploy"],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"check --deploy failed:\n{done.stdout}\n{done.stderr}")
            outputs[settings_module] = (done.stdout + done.stderr).strip()
            return elapsed

        return run_check

    log(f"check --deploy: {runs} runs each")
    if warmup:
        measure("bench_with_shipshape")()
    with_app, without_app = interleaved(
        runs, measure("bench_with_shipshape"), measure("bench_without_shipshape")
    )
    return row(
        "check-deploy",
        "manage.py check --deploy with the bundled checks",
        "the same project without shipshape in INSTALLED_APPS",
        "s",
        with_app,
        without_app,
        "<=",
        1.15,
        output={
            "with": outputs["bench_with_shipshape"],
            "without": outputs["bench_without_shipshape"],
        },
    )


# smoketest against a live stack ------------------------------------------------------


def smoketest_row(name: str, stack: Stack, runs: int, warmup: bool) -> dict:
    args = [
        "manage.py",
        "smoketest",
        stack.origin(),
        "--json",
        "--cacert",
        str(stack.ca_path),
        "--http-port",
        str(stack.http_port),
        "--admin-user",
        stack.admin_username,
        "--admin-password-env",
        ADMIN_PASSWORD_VARIABLE,
    ]
    for host in stack.hosts:
        args += ["--resolve", f"{host}:{stack.https_port}:127.0.0.1"]
    env = {**stack.env, ADMIN_PASSWORD_VARIABLE: stack.admin_password}
    elapsed, slowest, wall, requests = [], [], [], set()
    log(f"smoketest ({name}): {runs} runs")
    for attempt in range(runs + 1 if warmup else runs):
        started = time.perf_counter()
        done = subprocess.run(
            [stack.python, *args],
            cwd=stack.project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.perf_counter() - started
        try:
            report = json.loads(done.stdout)
        except ValueError:
            raise RuntimeError(f"smoketest gave no JSON:\n{done.stdout}\n{done.stderr}") from None
        if done.returncode != 0:
            failed = [r for r in report["results"] if r["status"] == "fail"]
            raise RuntimeError(f"smoketest failed against {name}: {failed}")
        if warmup and attempt == 0:
            continue  # warm-up: the first run also pays for gunicorn's first requests
        elapsed.append(report["elapsed_seconds"])
        slowest.append(report["slowest_request_seconds"])
        wall.append(took)
        requests.add(report["requests"])
    return row(
        f"smoketest-{name}",
        f"smoketest run against {name} (its requests, concurrent)",
        "its slowest single request (from its --json timings)",
        "s",
        elapsed,
        slowest,
        "<=",
        1.5,
        requests=sorted(requests),
        process_wall_seconds=summary(wall),
    )


# Load through the proxies -------------------------------------------------------------


class Load:
    """wrk against loopback, bounded in time and connections.

    wrk takes the TLS server name and the Host header from the URL and resolves
    names through /etc/hosts; it runs in a private mount namespace where a hosts
    file of our own is bound over /etc/hosts, for that process only.
    """

    def __init__(self, workdir: Path, hosts: list[str], duration: int, connections: int):
        self.hosts_file = workdir / "hosts"
        self.hosts_file.write_text(f"127.0.0.1 localhost {' '.join(hosts)}\n")
        self.duration = duration
        self.connections = connections

    def requests_per_second(
        self, url: str, headers: dict[str, str] | None = None, duration: int | None = None
    ) -> float:
        wrk = [
            "wrk",
            "-t1",
            f"-c{self.connections}",
            f"-d{duration or self.duration}s",
            "--timeout",
            "5s",
        ]
        for name, value in (headers or {}).items():
            wrk += ["-H", f"{name}: {value}"]
        wrk.append(url)
        inner = f"mount --bind {self.hosts_file} /etc/hosts && exec {shell_join(wrk)}"
        done = subprocess.run(
            ["unshare", "--mount", "--", "sh", "-c", inner],
            capture_output=True,
            text=True,
            check=False,
            timeout=(duration or self.duration) + 30,
        )
        output = done.stdout + done.stderr
        found = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if done.returncode != 0 or not found:
            raise RuntimeError(f"wrk failed for {url}:\n{output}")
        for problem in ("Non-2xx or 3xx responses", "Socket errors"):
            if problem in output:
                raise RuntimeError(f"wrk saw errors for {url}:\n{output}")
        return float(found.group(1))


def shell_join(args: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(str(a)) for a in args)


def expect_status(url: str, stack: Stack, status: int, headers: dict | None = None) -> None:
    """One request with curl first: the load must hit the page we mean, not a redirect."""
    command = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        str(stack.ca_path),
        "--max-time",
        "60",
    ]
    parts = urlsplit(url)
    if parts.scheme == "https":
        command += ["--resolve", f"{parts.hostname}:{parts.port}:127.0.0.1"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    if done.stdout.strip() != str(status):
        raise RuntimeError(
            f"{url} answered {done.stdout.strip()} ({done.stderr.strip()}), "
            f"expected {status}\n{stack.logs()}"
        )


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
    old = stack.processes[0]
    old.stop()
    port = free_port()
    env = {k: v for k, v in stack.env.items() if k != "WEB_CONCURRENCY"}
    bind = stack.answers["gunicorn_bind"]
    gunicorn = start_process(
        "gunicorn (bench)",
        [
            stack.python.parent / "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "-b",
            bind,
            "-b",
            f"127.0.0.1:{port}",
            f"{stack.slug}.wsgi",
        ],
        cwd=stack.project,
        env=env,
        log=workdir / "gunicorn-bench.log",
        stop_signal=signal.SIGINT,
    )
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
        process = start_process(
            "nginx (bare)",
            [NGINX, "-p", folder, "-c", conf],
            cwd=folder,
            env=clean_env(),
            log=folder / "nginx.log",
        )
    else:
        caddyfile = folder / "Caddyfile"
        caddyfile.write_text(BARE_CADDYFILE.format(http_port=free_port(), **values))
        env = clean_env(
            HOME=str(folder),
            XDG_DATA_HOME=str(folder / "data"),
            XDG_CONFIG_HOME=str(folder / "config"),
        )
        process = start_process(
            "caddy (bare)",
            [caddy, "run", "--config", caddyfile, "--adapter", "caddyfile"],
            cwd=folder,
            env=env,
            log=folder / "caddy.log",
            stop_signal=signal.SIGINT,
        )
    cleanup.callback(process.stop)
    wait_until(lambda: accepts_connections(("127.0.0.1", port)), [process], process.name)
    return port


def proxy_rows(name: str, stack: Stack, workdir: Path, cleanup: ExitStack, args) -> list[dict]:
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


# Machine and versions -------------------------------------------------------------------


def first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else ""


def machine_info(project_python: Path) -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()
    probe = (
        "import sys, django, gunicorn; "
        "print(sys.version.split()[0], django.get_version(), gunicorn.__version__)"
    )
    python_version, django_version, gunicorn_version = first_line(
        [str(project_python), "-c", probe]
    ).split()
    return {
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        # Other work on the machine shares its CPUs with the servers and wrk.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "memory_gib": round(int(memory[1]) / 1024 / 1024, 1),
        "os": platform.platform(),
        "versions": {
            "python_benchmark": platform.python_version(),
            "python_project": python_version,
            "copier": importlib.metadata.version("copier"),
            "django": django_version,
            "gunicorn": gunicorn_version,
            "nginx": first_line([NGINX, "-v"]).removeprefix("nginx version: "),
            "caddy": first_line([DEBIAN_CADDY, "version"]).split()[0],
            "caddy_current": first_line([CURRENT_CADDY, "version"]).split()[0],
            "wrk": first_line(["wrk", "-v"]).split()[1],
        },
    }


# The run -------------------------------------------------------------------------------


def format_value(stats: dict, unit: str) -> str:
    if unit == "s":
        return f"{stats['median']:.3f} s ({stats['min']:.3f}-{stats['max']:.3f})"
    return f"{stats['median']:.0f} ({stats['min']:.0f}-{stats['max']:.0f})"


def table(rows: list[dict]) -> str:
    lines = [
        "| what | measured, median (min-max) | baseline | baseline, median (min-max) | ratio "
        "| target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        unit = " req/s" if r["unit"] == "req/s" else ""
        lines.append(
            f"| {r['what']} | {format_value(r['subject'], r['unit'])}{unit} | {r['baseline']} "
            f"| {format_value(r['baseline_stats'], r['unit'])}{unit} | {r['ratio']:.2f} "
            f"| {r['target']['op']} {r['target']['value']} | {'yes' if r['met'] else 'no'} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 run, 1 s of load, nginx only: checks that the benchmark works",
    )
    parser.add_argument("--runs", type=int, help="runs of each timed command (default 5)")
    parser.add_argument("--runs-load", type=int, help="wrk runs per side (default 3)")
    parser.add_argument("--duration", type=int, help="seconds of load per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument(
        "--proxies",
        help=f"comma-separated, from {', '.join(PROXIES)} (default: all; --quick: nginx)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS / "latest.json",
        help="where the JSON goes (default benchmarks/results/latest.json)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 5)
    args.runs_load = args.runs_load or (1 if quick else 3)
    args.duration = args.duration or (1 if quick else 5)
    args.proxies = (args.proxies or ("nginx" if quick else ",".join(PROXIES))).split(",")
    unknown = set(args.proxies) - set(PROXIES)
    if unknown:
        parser.error(f"unknown proxies: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: run benchmarks/install-wrk.sh (as root) or `nox -s bench`")
    started = time.monotonic()
    # Quick runs prove the benchmark works; only full runs pay for warm-ups.
    warmup = not args.quick
    workdir = Path(tempfile.mkdtemp(prefix="shipshape-bench-"))
    rows: list[dict] = []
    try:
        log(f"working in {workdir}")
        with phase("setup"):
            real = snapshot_template(workdir / "template" / "django-shipshape", BASE)
            python = ensure_project_venv(real, DJANGO_SERIES, workdir / "venv-probe")
            machine = machine_info(python)
        with phase("copier"):
            copier_results, shape = copier_rows(real, workdir / "copier", args.runs, warmup)
        rows += copier_results

        # The servers render from a snapshot of its own (the copier one now has newer tags).
        served = snapshot_template(workdir / "served" / "django-shipshape", BASE)
        ca = trustme.CA(organization_name="django-shipshape benchmarks")
        for index, name in enumerate(args.proxies):
            proxy, caddy = PROXIES[name]
            with ExitStack() as cleanup:
                stack_dir = workdir / f"stack-{name}"
                stack_dir.mkdir()
                log(f"{name}: starting the stack")
                options = {"caddy": caddy} if caddy else {}
                with phase(f"{name}: stack"):
                    stack = start_stack(
                        cleanup,
                        template=served,
                        workdir=stack_dir,
                        python=python,
                        ca=ca,
                        proxy=proxy,
                        **options,
                    )
                if index == 0:
                    with phase("check --deploy"):
                        rows.append(check_deploy_row(stack, workdir, args.runs, warmup))
                with phase(f"{name}: smoketest"):
                    rows.append(smoketest_row(name, stack, args.runs, warmup))
                with phase(f"{name}: load"):
                    rows += proxy_rows(name, stack, stack_dir, cleanup, args)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "seconds": round(time.monotonic() - started, 1),
        "phase_seconds": PHASES,
        "settings": {
            "runs": args.runs,
            "runs_load": args.runs_load,
            "load_duration_seconds": args.duration,
            "connections": args.connections,
            "proxies": args.proxies,
            "django_series": DJANGO_SERIES,
            "template": shape,
        },
        "machine": {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "rows": rows,
        "table": table(rows),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(table(rows))
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    print(
        f"\nMachine: {machine['cpu_model']}, {machine['cpus']} CPUs, "
        f"{machine['memory_gib']} GiB; {versions}"
    )
    print(f"Written to {args.output} in {document['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
