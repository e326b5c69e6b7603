"""Cost growth: how the smoketest, check --deploy and copier update grow with a project.

Each cost is measured at every size in one interleaved loop (size after size,
run after run), so drift hits every size alike. A row compares the largest size
with the one before it: linear growth at worst means the time grows by no more
than the size does (a fixed part makes it grow less), so the target is that
size ratio. The JSON keeps every size's times and the cost per added item
between consecutive sizes, which grows too if a step is worse than linear.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import trustme

from tests.support.git import git, new_repo
from tests.support.processes import run
from tests.support.rendering import render, update
from tests.support.stack import Stack, start_stack

from .checks import smoketest_command
from .copier_costs import BASE, CHANGED
from .measure import interleaved, log, row, summary
from .serving import restart_gunicorn

HOSTS = (1, 10, 100)
ADDED_FILES = (10, 100, 1000)
# --quick proves the rows are made, at sizes that cost little.
QUICK_HOSTS = (1, 2)
QUICK_ADDED_FILES = (1, 10)


def extra_hosts(count: int) -> list[str]:
    return [f"site{n}.example.com" for n in range(count)]


def growth_row(row_id: str, what: str, item: str, sizes, values: list[list[float]]) -> dict:
    """The largest size against the one before it, with the whole series beside."""
    medians = [summary(v)["median"] for v in values]
    per_item = [
        round((medians[i] - medians[i - 1]) / (sizes[i] - sizes[i - 1]), 6)
        for i in range(1, len(sizes))
    ]
    return row(
        row_id,
        f"{what}, {sizes[-1]} {item}",
        f"the same with {sizes[-2]} {item}",
        "s",
        values[-1],
        values[-2],
        "<=",
        round(sizes[-1] / sizes[-2], 3),
        sizes=list(sizes),
        seconds_by_size={str(n): summary(v) for n, v in zip(sizes, values, strict=True)},
        seconds_per_added_item=per_item,
    )


def timed(command: list, stack: Stack, env: dict) -> Callable[[], float]:
    def measure() -> float:
        started = time.perf_counter()
        done = run(command, cwd=stack.project, env=env)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{command[2]} failed:\n{done.stdout[-2000:]}\n{done.stderr}")
        return elapsed

    return measure


def stack_rows(served: Path, python: Path, workdir: Path, args) -> list[dict]:
    """smoketest and check --deploy against nginx stacks with 1, 10, 100 extra hosts."""
    sizes = QUICK_HOSTS if args.quick else HOSTS
    ca = trustme.CA(organization_name="django-shipshape benchmarks (growth)")
    with ExitStack() as cleanup:
        smoketests, checks = [], []
        for count in sizes:
            log(f"growth: a stack with {count} extra hosts")
            folder = workdir / f"hosts-{count}"
            folder.mkdir(parents=True)
            stack = start_stack(
                cleanup,
                template=served,
                workdir=folder,
                python=python,
                ca=ca,
                proxy="nginx",
                extra_hosts=extra_hosts(count),
            )
            # As in production: the generated config's own worker count.
            restart_gunicorn(stack, cleanup, folder)
            command, env = smoketest_command(stack)
            smoketests.append(timed(command, stack, env))
            checks.append(timed([python, "manage.py", "check", "--deploy"], stack, stack.env))
        if not args.quick:
            for measure in (*smoketests, *checks):
                measure()
        log(f"growth: smoketest and check --deploy, {args.runs} runs per size")
        smoketest_times = interleaved(args.runs, *smoketests)
        check_times = interleaved(args.runs, *checks)
    return [
        growth_row(
            "growth-smoketest",
            "smoketest wall time (a new process, every host)",
            "extra hosts",
            sizes,
            smoketest_times,
        ),
        growth_row(
            "growth-check-deploy", "manage.py check --deploy", "extra hosts", sizes, check_times
        ),
    ]


def committed(template: Path, dest: Path, added_files: int = 0, **answers) -> Path:
    """A project copied at BASE and committed, with `added_files` of the team's own."""
    render(template, dest, vcs_ref=BASE, **answers)
    team = dest / "team"
    for n in range(added_files):
        folder = team / f"part{n // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"module{n}.py").write_text(f'"""A module the team added ({n})."""\n')
    return new_repo(dest, "generated, and the team's files")


def timed_update(pristine: Path, workdir: Path) -> Callable[[], float]:
    count = iter(range(10_000))

    def measure() -> float:
        dest = workdir / f"{pristine.name}-{next(count)}"
        shutil.copytree(pristine, dest, symlinks=True)
        started = time.perf_counter()
        update(dest, CHANGED)
        elapsed = time.perf_counter() - started
        if not git("status", "--porcelain", cwd=dest).strip():
            raise RuntimeError(f"the update changed nothing in {dest}")
        shutil.rmtree(dest)
        return elapsed

    return measure


def update_rows(real: Path, workdir: Path, args) -> list[dict]:
    """copier update (BASE -> CHANGED) with more hosts, and with more files of the team's."""
    workdir.mkdir()
    host_sizes = QUICK_HOSTS if args.quick else HOSTS
    file_sizes = QUICK_ADDED_FILES if args.quick else ADDED_FILES
    by_hosts = [
        timed_update(committed(real, workdir / f"hosts-{n}", extra_hosts=extra_hosts(n)), workdir)
        for n in host_sizes
    ]
    by_files = [
        timed_update(committed(real, workdir / f"files-{n}", added_files=n), workdir)
        for n in file_sizes
    ]
    log(f"growth: copier update, {args.runs} runs per size")
    hosts_times = interleaved(args.runs, *by_hosts)
    files_times = interleaved(args.runs, *by_files)
    return [
        growth_row(
            "growth-update-hosts",
            "copier update with changes",
            "extra hosts",
            host_sizes,
            hosts_times,
        ),  # fmt: skip
        growth_row(
            "growth-update-files",
            "copier update with changes",
            "files the team added",
            file_sizes,
            files_times,
        ),
    ]
