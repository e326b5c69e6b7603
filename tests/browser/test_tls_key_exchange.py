"""The TLS key exchange a current browser gets from each proxy.

Mozilla's guidelines 6.0 put the post-quantum hybrid group X25519MLKEM768 first
where the server's TLS library has it. sslyze cannot offer that group; Chromium
does, and its DevTools protocol reports the group each response came over.
"""

from __future__ import annotations

import pytest

from ..support.binaries import CURRENT_CADDY, DEBIAN_CADDY
from ..support.containers import steady_network
from .conftest import BROWSER_PROXIES

NGINX, CADDY_CURRENT = BROWSER_PROXIES[0], BROWSER_PROXIES[1]

# (stack, the group Chromium gets): Debian's nginx 1.22 runs on OpenSSL 3.0 and
# Caddy 2.6.2 on a Go without ML-KEM, so both give X25519; Caddy 2.10 and later
# offer the hybrid group by default.
GROUPS = [
    pytest.param(NGINX.values[0], "X25519", id=NGINX.id, marks=NGINX.marks),
    pytest.param(("caddy", {"caddy": DEBIAN_CADDY}), "X25519", id="caddy-debian",
                 marks=pytest.mark.xdist_group("e2e-caddy-debian")),
    pytest.param(CADDY_CURRENT.values[0], "X25519MLKEM768", id=CADDY_CURRENT.id,
                 marks=CADDY_CURRENT.marks),
]  # fmt: skip
assert CADDY_CURRENT.values[0][1]["caddy"] == CURRENT_CADDY


@pytest.mark.parametrize(("site", "group"), GROUPS, indirect=["site"])
def test_a_current_browser_gets_tls_1_3_and_the_best_group_the_server_has(site, group, chromium):
    with steady_network(changing=False):
        context = chromium.new_context()
        try:
            page = context.new_page()
            devtools = context.new_cdp_session(page)
            devtools.send("Network.enable")
            seen: list[dict] = []
            devtools.on(
                "Network.responseReceived",
                lambda event: seen.append(event["response"].get("securityDetails") or {}),
            )
            page.goto(site.url("/"))
        finally:
            context.close()
    assert seen, "no response reached the page"
    details = seen[0]
    print(f"Chromium, {site.proxy}: {details.get('protocol')}, {details.get('keyExchangeGroup')}")
    assert details["protocol"] == "TLS 1.3", details
    assert details["keyExchangeGroup"] == group, details
