"""Fixtures for browser tests: Debian's Chromium against the end-to-end stacks.

The stacks come from tests/e2e (its `stack` fixture, reused here unchanged). One
Chromium runs per test session and worker; each test gets a fresh browser
context (its own cookies and HSTS state) and a tab that records every response.
A test that fails keeps a screenshot, the page's HTML, the responses it saw and
the servers' logs under artifacts/<test name>/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from ..e2e import conftest as e2e
from ..support.binaries import CURRENT_CADDY
from ..support.containers import steady_network
from ..support.stack import Stack
from .browsing import Browsing
from .chromium import Chromium

# The e2e fixtures, registered here too: a conftest's fixtures serve only its own folder.
stack = e2e.stack
e2e_ca = e2e.e2e_ca

# nginx, Caddy and a load balancer, one stack each. Caddy runs the current release
# and Django 6.1, so the browser sees both Django series (tests/e2e also covers
# Debian's Caddy 2.6.2). Each is an xdist group: under --dist loadgroup (the
# project's default) a stack's browser tests share one worker, so it starts once.
BROWSER_PROXIES = [
    pytest.param(("nginx", {}), id="nginx-django5.2",
                 marks=pytest.mark.xdist_group("browser-nginx")),
    pytest.param(("caddy", {"caddy": CURRENT_CADDY, "django_version": "6.1"}),
                 id="caddy-django6.1", marks=pytest.mark.xdist_group("browser-caddy")),
    pytest.param(("load_balancer", {}), id="load_balancer-django5.2",
                 marks=pytest.mark.xdist_group("browser-load_balancer")),
]  # fmt: skip

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def failed(item: pytest.Item) -> bool:
    return any(report.failed for report in item.stash.get(REPORTS, {}).values())


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    with sync_playwright() as playwright:
        browser = Chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def site(request, stack, chromium) -> Stack:
    """The stack for a test parametrized (indirectly) with one of BROWSER_PROXIES."""
    proxy, options = request.param
    running = stack(proxy, **options)
    chromium.trust(running)
    return running


@pytest.fixture
def browsing(request, chromium, site, artifacts_dir) -> Iterator[Browsing]:
    """A fresh tab on a browser that trusts `site`; kept as artifacts if the test fails."""
    # The container tests change the host's network, which would abort a page load.
    with steady_network(changing=False):
        tab = Browsing(chromium)
        try:
            yield tab
        finally:
            if failed(request.node):
                tab.keep_artifacts(artifacts_dir, logs=site.logs())
            tab.close()
