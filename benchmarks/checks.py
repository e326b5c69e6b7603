"""The bundled checks' costs: `check --deploy` with and without them, and `smoketest`."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.git import new_repo
from tests.support.processes import run
from tests.support.stack import Stack

from .measure import interleaved, log, row, summary

ADMIN_PASSWORD_VARIABLE = "SHIPSHAPE_BENCH_ADMIN_PASSWORD"

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
    new_repo(project, "deployed")
    outputs: dict[str, str] = {}

    def measure(settings_module: str) -> Callable[[], float]:
        def run_check() -> float:
            env = {**stack.env, "DJANGO_SETTINGS_MODULE": settings_module}
            started = time.perf_counter()
            done = run([stack.python, "manage.py", "check", "--deploy"], cwd=project, env=env)
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


def smoketest_command(stack: Stack) -> tuple[list, dict]:
    """`manage.py smoketest` against the stack, as an operator runs it, and its environment."""
    args = [
        stack.python,
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
    return args, {**stack.env, ADMIN_PASSWORD_VARIABLE: stack.admin_password}


def smoketest_row(name: str, stack: Stack, runs: int, warmup: bool) -> dict:
    """The smoketest's own elapsed time, against its slowest single request."""
    args, env = smoketest_command(stack)
    elapsed, slowest, wall, requests = [], [], [], set()
    log(f"smoketest ({name}): {runs} runs")
    for attempt in range(runs + 1 if warmup else runs):
        started = time.perf_counter()
        done = run(args, cwd=stack.project, env=env)
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
