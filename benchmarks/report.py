"""What a run reports: the machine and versions, a Markdown table, the JSON document."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

from tests.support.binaries import CURRENT_CADDY, DEBIAN_CADDY, NGINX


def first_line(command: list[str]) -> str:
    """The first line a command prints (stdout, then stderr), or why it could not run."""
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


def format_value(stats: dict, unit: str) -> str:
    if unit == "s":
        return f"{stats['median']:.3f} s ({stats['min']:.3f}-{stats['max']:.3f})"
    if unit == "ms":
        return f"{stats['median']:.1f} ms ({stats['min']:.1f}-{stats['max']:.1f})"
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
            f"| {format_value(r['baseline_stats'], r['unit'])}{unit} | {ratio_text(r['ratio'])} "
            f"| {r['target']['op']} {r['target']['value']} | {'yes' if r['met'] else 'no'} |"
        )
    return "\n".join(lines)


def write(document: dict, output: Path) -> None:
    """Write the JSON, then print the table and a line about the machine to stdout."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(document["table"])
    machine = document["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    print(
        f"\nMachine: {machine['cpu_model']}, {machine['cpus']} CPUs, "
        f"{machine['memory_gib']} GiB; {versions}"
    )
    print(f"Written to {output} in {document['seconds']} s")


def ratio_text(ratio: float | None) -> str:
    """A ratio to two places, or a dash where the baseline served nothing."""
    return "-" if ratio is None else f"{ratio:.2f}"
