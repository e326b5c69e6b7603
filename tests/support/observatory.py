"""The MDN HTTP Observatory scanner (npm @mdn/mdn-http-observatory), run offline.

Installed once per machine under .cache/npm/ with `npm install --ignore-scripts`:
its install scripts download Chromium's HSTS preload list and IANA's TLD list.
The scanner reads only the first (conf/hsts-preload.json); it gets an empty list,
so no test domain counts as preloaded and redirection and HSTS are judged on
what the site sends.

The CLI (`mdn-http-observatory-scan`, bin/wrapper.js) sets NODE_EXTRA_CA_CERTS
to Mozilla's CA bundle, replacing ours; it only then runs src/scan.js, so the
tests run src/scan.js themselves, with the test CA in NODE_EXTRA_CA_CERTS. The
scanner takes no port: it scans http://host/ and https://host/, which the
namespace in tests/support/namespace.py sends to the stack's real ports.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

from .namespace import run_seeing_stack
from .paths import CACHE
from .processes import clean_env
from .stack import Stack

PACKAGE = "@mdn/mdn-http-observatory"
VERSION = "1.4.8"
NODE_MAJOR_NEEDED = 20


def installed_scanner() -> Path:
    """src/scan.js of the pinned scanner, installed under .cache/npm/ once per machine."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        raise RuntimeError(f"{PACKAGE} needs node >= {NODE_MAJOR_NEEDED} and npm on the PATH")
    major = int(subprocess.run([node, "--version"], capture_output=True, text=True,
                               check=True).stdout.strip().lstrip("v").split(".")[0])  # fmt: skip
    if major < NODE_MAJOR_NEEDED:
        raise RuntimeError(f"{PACKAGE} needs node >= {NODE_MAJOR_NEEDED}; this one is {major}")
    prefix = CACHE / "npm" / f"mdn-http-observatory-{VERSION}"
    package = prefix / "node_modules" / "@mdn" / "mdn-http-observatory"
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (prefix / "ready").exists():
            shutil.rmtree(prefix, ignore_errors=True)
            prefix.mkdir(parents=True)
            installed = subprocess.run(
                ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                 "--loglevel=error", "--prefix", str(prefix), f"{PACKAGE}@{VERSION}"],
                check=False, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            if installed.returncode != 0:
                raise RuntimeError(
                    f"npm could not install {PACKAGE}@{VERSION}:\n{installed.stderr}"
                )
            # What the skipped postinstall would have downloaded: an empty preload list.
            (package / "conf" / "hsts-preload.json").write_text("{}\n")
            (prefix / "ready").write_text(VERSION)
    return package / "src" / "scan.js"


def observatory_scan(scanner: Path, stack: Stack, workdir: Path, host: str | None = None) -> dict:
    """The scanner's JSON report for https://host/ (the stack's domain by default)."""
    ports = {80: stack.http_port, 443: stack.https_port,
             stack.http_port: stack.http_port, stack.https_port: stack.https_port}  # fmt: skip
    env = clean_env(NODE_EXTRA_CA_CERTS=str(stack.ca_path))
    env.pop("NODE_OPTIONS", None)
    done = run_seeing_stack(
        ["node", str(scanner), host or stack.domain], stack.hosts, ports, workdir, env
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict) or "scan" not in report:
        raise RuntimeError(
            f"the Observatory scan failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return report


def summary(report: dict) -> str:
    """One line per test: its name, whether it passed, its result and score modifier."""
    scan = report["scan"]
    lines = [f"grade {scan['grade']}, score {scan['score']}, "
             f"{scan['testsPassed']}/{scan['testsQuantity']} tests passed"]  # fmt: skip
    for name, test in sorted(report["tests"].items()):
        verdict = "pass" if test["pass"] else "FAIL"
        lines.append(f"  {verdict} {name}: {test['result']} ({test['scoreModifier']:+d})")
    return "\n".join(lines)
