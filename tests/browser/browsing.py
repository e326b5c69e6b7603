"""A browser tab that remembers every response it saw, and what a failed test leaves behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, Response

from .chromium import Chromium

# Shown by Django's CSRF failure page and its debug pages (technical 404 and 500).
FORBIDDEN_MARKERS = ("CSRF verification failed", "DEBUG = True", "Traceback")

# Every page the tab loads reports each Content-Security-Policy violation (enforced or
# report-only) to the test through a binding, before any of the page's own scripts run.
VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.shipshapeViolation({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    disposition: event.disposition,
    sample: event.sample,
    source: `${event.sourceFile}:${event.lineNumber}`,
    page: document.location.href,
  });
});
"""

# What Chromium logs to the console about the security headers: a blocked resource,
# a report-only violation, a malformed policy or an unknown Permissions-Policy feature.
HEADER_CONSOLE_MARKERS = (
    "Content Security Policy",
    "Content-Security-Policy",
    "Permissions-Policy",
)


@dataclass
class Browsing:
    """A person with a browser: one tab in a browser context of its own."""

    chromium: Chromium
    # (status, method, url) of every response the tabs received, redirects included.
    responses: list[tuple[int, str, str]] = field(default_factory=list)
    # securitypolicyviolation events, and console messages about the security headers.
    violations: list[dict] = field(default_factory=list)
    header_console: list[str] = field(default_factory=list)
    context: BrowserContext | None = field(default=None, init=False)
    page: Page = field(init=False)

    def __post_init__(self) -> None:
        self.new_visitor()

    def new_visitor(self) -> None:
        """Start over in a fresh context: no cookies, no HSTS state from earlier visits."""
        self.close()
        self.context = self.chromium.new_context()
        self.context.set_default_timeout(30_000)
        self.context.expose_binding("shipshapeViolation", self._violation)
        self.context.add_init_script(VIOLATION_LISTENER)
        self.page = self.context.new_page()
        self.page.on("response", self._record)
        self.page.on("console", self._console)

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None

    def _record(self, response: Response) -> None:
        self.responses.append((response.status, response.request.method, response.url))

    def _violation(self, source, violation: dict) -> None:
        self.violations.append(violation)

    def _console(self, message: ConsoleMessage) -> None:
        if any(marker in message.text for marker in HEADER_CONSOLE_MARKERS):
            self.header_console.append(f"{message.type}: {message.text}")

    def open(self, url: str) -> Response:
        """Navigate to url; the page that loads must be a clean one."""
        response = self.page.goto(url)
        assert response is not None, url
        self.assert_clean()
        return response

    def try_open(self, url: str) -> Response | str:
        """Navigate to url: the response, or Chromium's network error (ERR_...).

        After an error the tab shows Chromium's error page, which may reload itself:
        do not read the page then.
        """
        try:
            response = self.page.goto(url)
        except Error as error:
            message = error.message.splitlines()[0]
            assert "net::ERR_" in message, message
            return message.split("net::", 1)[1].split()[0]
        assert response is not None, url
        return response

    def assert_clean(self) -> None:
        """No 403 or server error so far, the page is no error or debug page, and no
        Content-Security-Policy violation nor complaint about the headers so far."""
        refused = [r for r in self.responses if r[0] == 403 or r[0] >= 500]
        assert not refused, refused
        html = self.page.content()
        shown = [marker for marker in FORBIDDEN_MARKERS if marker in html]
        assert not shown, (shown, self.page.url)
        self.assert_no_violations()

    def assert_no_violations(self) -> None:
        assert not self.violations, self.violations
        assert not self.header_console, self.header_console

    def keep_artifacts(self, folder: Path, logs: str = "") -> None:
        """Save a screenshot, the page's HTML and the responses seen, for a person to look at."""
        folder.mkdir(parents=True, exist_ok=True)
        try:
            self.page.screenshot(path=folder / "screenshot.png", full_page=True)
            (folder / "page.html").write_text(self.page.content())
        except Error as error:
            (folder / "page-error.txt").write_text(str(error))
        lines = [f"{status} {method} {url}" for status, method, url in self.responses]
        (folder / "responses.txt").write_text(f"final URL: {self.page.url}\n" + "\n".join(lines))
        if self.violations or self.header_console:
            seen = [*map(str, self.violations), *self.header_console]
            (folder / "csp-violations.txt").write_text("\n".join(seen))
        if logs:
            (folder / "server-logs.txt").write_text(logs)
