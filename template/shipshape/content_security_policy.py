"""The Content-Security-Policy this project sends, read from its settings.

Django 6.x sends it from SECURE_CSP and SECURE_CSP_REPORT_ONLY through its own
middleware; on 5.2 django-csp does, from CONTENT_SECURITY_POLICY and
CONTENT_SECURITY_POLICY_REPORT_ONLY (their "DIRECTIVES"). The deploy checks and
smoketest both ask here which of them is in MIDDLEWARE and what it sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

# Sources that let an injected script or style run, or load from anywhere.
UNSAFE_KEYWORDS = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'")
BROAD_SCRIPT_SOURCES = ("*", "data:", "http:", "https:")
SCRIPT_DIRECTIVES = ("script-src", "script-src-elem", "script-src-attr", "object-src")


@dataclass
class Policy:
    middleware: str | None
    setting: str
    # Directive -> sources, as the settings give them (the nonce placeholder included).
    enforced: dict = field(default_factory=dict)
    report_only: dict = field(default_factory=dict)

    @property
    def report_only_setting(self) -> str:
        return f"{self.setting}_REPORT_ONLY"


IMPLEMENTATIONS = (
    ("django.middleware.csp.ContentSecurityPolicyMiddleware", "SECURE_CSP", False),
    ("csp.middleware.CSPMiddleware", "CONTENT_SECURITY_POLICY", True),
)


def configured() -> Policy:
    """The policy the middleware in MIDDLEWARE sends; `middleware` is None without one."""
    for middleware, setting, nested in IMPLEMENTATIONS:
        if middleware in settings.MIDDLEWARE:
            enforced = getattr(settings, setting, None) or {}
            report_only = getattr(settings, f"{setting}_REPORT_ONLY", None) or {}
            if nested:
                enforced = enforced.get("DIRECTIVES", {}) if enforced else {}
                report_only = report_only.get("DIRECTIVES", {}) if report_only else {}
            return Policy(middleware, setting, dict(enforced), dict(report_only))
    setting = "SECURE_CSP" if hasattr(settings, "SECURE_CSP") else "CONTENT_SECURITY_POLICY"
    return Policy(None, setting)


def sources(value) -> list[str]:
    if value in (None, False, True):
        return []
    if isinstance(value, str):
        return value.split()
    return [str(source) for source in value]


def parse(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header's directives (the first of each name counts)."""
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words and words[0].lower() not in directives:
            directives[words[0].lower()] = words[1:]
    return directives


def unsafe_sources(directives: dict) -> list[str]:
    """`source in directive` for each source that defeats the policy's point."""
    found = []
    default = sources(directives.get("default-src"))
    for directive, value in directives.items():
        for source in sources(value):
            if source.lower() in UNSAFE_KEYWORDS:
                found.append(f"{source} in {directive}")
    for directive in SCRIPT_DIRECTIVES:
        if directive in directives:
            listed, where = sources(directives[directive]), directive
        elif directive in ("script-src", "object-src"):
            listed, where = default, "default-src"
        else:
            continue  # falls back to script-src, checked itself
        for source in listed:
            if source.lower() in BROAD_SCRIPT_SOURCES:
                found.append(f"{source} in {where}")
    return list(dict.fromkeys(found))
