"""One benchmark run: the arguments, the parts in order, and the document they make."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import trustme

from tests.support.rendering import snapshot_template
from tests.support.stack import start_stack
from tests.support.venvs import ensure_project_venv

from .checks import check_deploy_row, smoketest_row
from .copier_costs import BASE, copier_rows
from .growth import stack_rows, update_rows
from .measure import PHASES, log, phase
from .report import machine_info, table, write
from .serving import CONNECTIONS, PROXIES, peer_rows, proxy_rows

RESULTS = Path(__file__).resolve().parent / "results"
DJANGO_SERIES = "5.2"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks for django-shipshape: each cost measured beside a baseline.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 run, 1 s of load, nginx only, small sizes: checks that the benchmark works",
    )
    parser.add_argument("--runs", type=int, help="runs of each timed command (default 5)")
    parser.add_argument("--runs-load", type=int, help="wrk runs per side (default 3)")
    parser.add_argument("--duration", type=int, help="seconds of load per wrk run (default 5)")
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="wrk connections for the limit and slow-client rows (default 8)",
    )
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


def measure_all(args: argparse.Namespace, workdir: Path) -> tuple[list[dict], dict, dict]:
    """Every row, the template's shape and the machine, measured in `workdir`."""
    # Quick runs prove the benchmark works; only full runs pay for warm-ups.
    warmup = not args.quick
    with phase("setup"):
        real = snapshot_template(workdir / "template" / "django-shipshape", BASE)
        python = ensure_project_venv(real, DJANGO_SERIES, workdir / "venv-probe")
        machine = machine_info(python)
    with phase("copier"):
        rows, shape = copier_rows(real, workdir / "copier", args.runs, warmup)
    with phase("growth: copier update"):
        rows += update_rows(real, workdir / "growth-update", args)

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
            with phase(f"{name}: limit and slow clients"):
                rows += proxy_rows(name, stack, stack_dir, cleanup, args)
            if name == "nginx":
                with phase("peers"):
                    rows += peer_rows(stack, stack_dir, cleanup, args)
    with phase("growth: stacks"):
        rows += stack_rows(served, python, workdir / "growth-stacks", args)
    return rows, shape, machine


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: run benchmarks/install-wrk.sh (as root) or `nox -s bench`")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="shipshape-bench-"))
    try:
        log(f"working in {workdir}")
        rows, shape, machine = measure_all(args, workdir)
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
            "peer_connections": list(CONNECTIONS),
            "proxies": args.proxies,
            "django_series": DJANGO_SERIES,
            "template": shape,
        },
        "machine": {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "rows": rows,
        "table": table(rows),
    }
    write(document, args.output)
    return 0
