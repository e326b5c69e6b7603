"""Packages from the npm registry that the tests run with the machine's Node.js.

Installed once per machine under .cache/npm/<name>-<version>/ with `--ignore-scripts`
(an install script would reach other hosts) and locked against concurrent pytest-xdist
workers. Only the npm registry is ever contacted.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
from pathlib import Path

from .paths import CACHE

NODE = shutil.which("node") or "/usr/bin/node"


def npm_package(spec: str) -> Path:
    """The node_modules folder holding `spec` (e.g. "@scope/name@1.2.3") and its dependencies."""
    folder = CACHE / "npm" / re.sub(r"[^A-Za-z0-9.]+", "-", spec).strip("-")
    modules = folder / "node_modules"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".installed").exists():
            shutil.rmtree(modules, ignore_errors=True)
            (folder / "package.json").write_text('{"private": true}\n')
            subprocess.run(
                ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                 "--loglevel=error", spec],
                cwd=folder, check=True, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            (folder / ".installed").write_text(spec + "\n")
    return modules
