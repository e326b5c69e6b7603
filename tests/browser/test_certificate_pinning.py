"""The browser trusts the stacks' certificate keys and nothing else.

Pinning with --ignore-certificate-errors-spki-list must not turn into ignoring
certificate errors: the browser that loads a stack refuses a server for the same
hostname whose certificate it was not given, whether it comes from another CA or
from the stacks' own test CA with another key.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trustme

from .conftest import BROWSER_PROXIES


class HomePage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<title>impostor</title>")

    def log_message(self, *args) -> None:
        pass


@contextmanager
def https_server(certificate: trustme.LeafCert) -> Iterator[int]:
    """A real HTTPS server on loopback serving `certificate`; yields its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HomePage)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("site", BROWSER_PROXIES[:1], indirect=True)
def test_browser_refuses_certificates_it_was_not_given(site, browsing, e2e_ca):
    assert browsing.open(site.url("/")).status == 200
    impostors = {
        "another CA": trustme.CA().issue_cert(*site.hosts),
        "the test CA, another key": e2e_ca.issue_cert(*site.hosts),
    }
    for name, certificate in impostors.items():
        with https_server(certificate) as port:
            outcome = browsing.try_open(f"https://{site.domain}:{port}/")
        assert outcome == "ERR_CERT_AUTHORITY_INVALID", (name, outcome)
        assert "impostor" not in browsing.page.content()
