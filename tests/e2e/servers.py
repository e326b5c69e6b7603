"""Moved to tests/support/: import from `tests.support.stack` and its sibling modules.

Kept so that modules not yet moved over keep importing these names from here.
"""

from __future__ import annotations

from ..support.binaries import DEBIAN_CADDY, NGINX
from ..support.ports import accepts_connections, free_port
from ..support.processes import clean_env, start_process, wait_until
from ..support.proxies import nginx_main_conf, nginx_test
from ..support.stack import Stack

__all__ = [
    "DEBIAN_CADDY",
    "NGINX",
    "Stack",
    "accepts_connections",
    "clean_env",
    "free_port",
    "nginx_main_conf",
    "nginx_test",
    "start_process",
    "wait_until",
]
