"""Ports for servers the tests start, and whether something answers on them."""

from __future__ import annotations

import random
import socket


def free_port() -> int:
    """A TCP port nothing listens on, on IPv4 and IPv6 (the proxies listen on both)."""
    for _ in range(200):
        port = random.randint(20000, 60999)
        try:
            for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    if family == socket.AF_INET6:
                        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    probe.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def accepts_connections(address: str | tuple[str, int]) -> bool:
    """Whether a unix socket path or a (host, port) accepts a TCP connection now."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True
