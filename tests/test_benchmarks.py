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

QUICK_ROWS = {
    "copier-copy",
    "copier-update-unchanged",
    "copier-update-changed",
    "check-deploy",
    "smoketest-nginx",
    "dynamic-nginx",
    "static-nginx",
}


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
            assert 0 < stats["min"] <= stats["median"] <= stats["max"], row
        assert row["ratio"] == round(subject["median"] / baseline["median"], 3), row
        assert row["target"]["op"] in ("<=", ">=") and row["target"]["value"] > 0, row
        assert row["met"] is (
            row["ratio"] <= row["target"]["value"]
            if row["target"]["op"] == "<="
            else row["ratio"] >= row["target"]["value"]
        ), row
        assert row["unit"] == ("req/s" if row["id"].startswith(("dynamic", "static")) else "s")
    assert rows["dynamic-nginx"]["load"]["gunicorn_workers"] >= 2

    machine = document["machine"]
    assert machine["cpu_model"] and machine["cpus"] >= 1 and machine["memory_gib"] > 0
    for name in ("copier", "django", "nginx", "caddy", "gunicorn", "python_project"):
        assert machine["versions"][name], name

    # The same table goes to stdout, one line per row.
    assert document["table"] in done.stdout
    assert len(document["table"].splitlines()) == 2 + len(QUICK_ROWS)
