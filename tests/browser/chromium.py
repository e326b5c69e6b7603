"""Debian's Chromium, driven by Playwright, trusting exactly the test stacks' certificates.

No browser is downloaded: Playwright starts /usr/bin/chromium. The browser opens
each stack by hostname (`--host-resolver-rules` sends the names to loopback) and
accepts a certificate only when the server presents a key pinned with
`--ignore-certificate-errors-spki-list`: the leaf keys of the stacks it was told
about. Chromium matches the pins against the chain the server presents, which
for a trustme certificate is the leaf alone, so pinning the CA's key would not
match. Every other certificate goes through normal verification and is refused.

Pins and resolver rules are launch flags: when a test needs a stack the running
browser does not know yet, it is restarted with the union of what it knows.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, BrowserContext, Playwright

from ..support.binaries import CHROMIUM
from ..support.stack import Stack

# A host no stack is configured for; the browser sends it to loopback too.
EVIL = "evil.example"

# Flags from ../shared/facts.md: they run headless as root, and keep Chromium from
# calling home (which, on a closed network, floods the log with refused connections).
# Playwright gives every launch a fresh temporary --user-data-dir of its own.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def spki_pin(certificate_pem: bytes) -> str:
    """Base64 of the SHA-256 of a certificate's SubjectPublicKeyInfo, as Chromium wants it."""
    certificate = x509.load_pem_x509_certificates(certificate_pem)[0]
    der = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def leaf_pin(stack: Stack) -> str:
    """The pin of the certificate a stack serves (fullchain.pem starts with the leaf)."""
    return spki_pin(Path(stack.certificates.cert_path).read_bytes())


def resolver_rules(stacks: list[Stack]) -> str:
    """Chromium's host resolver rules: every stack's hosts, and EVIL, go to loopback."""
    hosts = sorted({host for stack in stacks for host in stack.hosts} | {EVIL})
    return ", ".join(f"MAP {host} 127.0.0.1" for host in hosts)


def launch_args(stacks: list[Stack]) -> list[str]:
    pins = sorted({leaf_pin(stack) for stack in stacks})
    return [
        *FLAGS,
        f"--host-resolver-rules={resolver_rules(stacks)}",
        f"--ignore-certificate-errors-spki-list={','.join(pins)}",
    ]


class Chromium:
    """One Chromium per test session and worker; a fresh context for each test."""

    def __init__(self, playwright: Playwright):
        self.playwright = playwright
        self.stacks: list[Stack] = []
        self.browser: Browser | None = None
        self.args: list[str] = []

    def trust(self, *stacks: Stack) -> None:
        """Make the browser reach and trust these stacks, restarting it if needed."""
        for stack in stacks:
            if not any(known is stack for known in self.stacks):
                self.stacks.append(stack)
        args = launch_args(self.stacks)
        if self.browser is None or args != self.args:
            self.close()
            self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=args)
            self.args = args

    def new_context(self) -> BrowserContext:
        """A context with its own cookies and HSTS state, on the current browser."""
        if self.browser is None:
            self.trust()
        assert self.browser is not None
        return self.browser.new_context()

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None
