"""Finding and running the servers' own tools (nginx, caddy, systemd-analyze, openssl)."""

from __future__ import annotations

import os
import shutil
import subprocess

TOOL_TIMEOUT_SECONDS = 60
# Where Debian and most distributions put nginx when /usr/sbin is not on PATH.
SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])


def which(tool: str) -> str | None:
    return shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), SBIN]))


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
        **kwargs,
    )
