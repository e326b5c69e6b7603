"""The benchmarks still run end to end: `python -m benchmarks --quick`.

Speed targets are never asserted here (a shared CI machine cannot hold them);
this only proves that `nox -s bench` would produce a complete, well-formed
result: every row, positive measurements, ratios that match them, the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .support.paths import ROOT

PEERS = ("tutorial", "cookiecutter-django")
QUICK_ROWS = {
    "copier-copy",
    "copier-update-unchanged",
    "copier-update-changed",
    "growth-update-hosts",
    "growth-update-files",
    "check-deploy",
    "smoketest-nginx",
    "limit-dynamic-nginx",
    "limit-static-nginx",
    "limit-cpu-dynamic-nginx",
    "limit-cpu-static-nginx",
    "slow-clients-nginx",
    *(
        f"peer-{peer}-{what}-c{c}"
        for peer in PEERS
        for what in ("rps", "p99", "cpu")
        for c in (8, 64, 256)
    ),
    *(f"slow-clients-{peer}" for peer in PEERS),
    "growth-smoketest",
    "growth-check-deploy",
}
UNITS = {"rps": "req/s", "p99": "ms", "slow": "ms", "limit": "req/s", "cpu": "µs/request"}


def test_quick_benchmark_writes_every_row_with_measurements_and_the_machine(tmp_path):
    installed = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "install-wrk.sh")], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    output = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    document = json.loads(output.read_text())
    assert document["mode"] == "quick"
    rows = {r["id"]: r for r in document["rows"]}
    assert set(rows) == QUICK_ROWS
    for row in rows.values():
        subject, baseline = row["subject"], row["baseline_stats"]
        for stats in (subject, baseline):
            assert len(stats["runs"]) == 1, row
            assert 0 <= stats["min"] <= stats["median"] <= stats["max"], row
        assert subject["min"] > 0, row
        if baseline["median"] == 0:
            # Only a peer may serve nothing in a run (swamped at 256 connections): no
            # ratio, and the rendered stack's throughput beats it.
            assert row["id"].startswith("peer-") and "-rps-" in row["id"], row
            assert row["ratio"] is None and row["met"] is True, row
            continue
        assert row["ratio"] == round(subject["median"] / baseline["median"], 3), row
        assert row["target"]["op"] in ("<=", ">=") and row["target"]["value"] > 0, row
        assert row["met"] is (
            row["ratio"] <= row["target"]["value"]
            if row["target"]["op"] == "<="
            else row["ratio"] >= row["target"]["value"]
        ), row
        parts = row["id"].split("-")
        kind = parts[-2] if parts[0] == "peer" else parts[1] if parts[1] == "cpu" else parts[0]
        assert row["unit"] == UNITS.get(kind, "s"), row
    assert rows["limit-dynamic-nginx"]["load"]["gunicorn_workers"] >= 2
    # CPU time per request comes from the same runs as the throughput beside it.
    assert rows["limit-cpu-static-nginx"]["load"] == rows["limit-static-nginx"]["load"]
    # The peers run as their public files say: gunicorn's one sync worker, and four.
    assert rows["peer-tutorial-rps-c64"]["peer_gunicorn_workers"] == 1
    assert rows["peer-cookiecutter-django-rps-c64"]["peer_gunicorn_workers"] == 4
    # The rendered stack runs deploy/gunicorn.conf.py's own workers: sync, behind nginx.
    rendered = rows["peer-tutorial-rps-c64"]["rendered_gunicorn"]
    assert rendered["worker_class"] == "sync" and rendered["threads"] == 1, rendered
    assert rows["limit-dynamic-nginx"]["load"]["gunicorn_worker_class"] == "sync"
    for peer in PEERS:
        p50 = rows[f"peer-{peer}-p99-c64"]["p50_ms"]
        assert 0 < p50["rendered"]["median"] <= rows[f"peer-{peer}-p99-c64"]["subject"]["median"]
    # Growth rows keep every size, and the target is linear growth from the size before.
    growth = rows["growth-smoketest"]
    assert len(growth["seconds_by_size"]) == len(growth["sizes"]) >= 2
    assert growth["target"]["value"] == growth["sizes"][-1] / growth["sizes"][-2]

    machine = document["machine"]
    assert machine["cpu_model"] and machine["cpus"] >= 1 and machine["memory_gib"] > 0
    for name in ("copier", "django", "nginx", "caddy", "gunicorn", "python_project"):
        assert machine["versions"][name], name
    assert len(machine["load_average_at_start"]) == len(machine["load_average_at_end"]) == 3

    # The same table goes to stdout, one line per row.
    assert document["table"] in done.stdout
    assert len(document["table"].splitlines()) == 2 + len(QUICK_ROWS)
