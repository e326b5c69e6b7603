"""`manage.py smoketest https://example.com`: check a live deployment from the outside.

What the checklist asks to verify with real requests after every release: each
host is served over HTTPS, unknown hosts are refused, HTTP redirects to HTTPS,
no debug page, the security headers (a strict Content-Security-Policy among
them), cookie flags and prefixes, security.txt, forged proxy headers
change nothing, the admin login's CSRF check passes, TRACE is refused, and
the readiness path answers ok (the database reached, every migration applied). Every
request runs at once, so the run takes about as long as its slowest request.

    python manage.py smoketest https://example.com
    python manage.py smoketest https://example.com --resolve example.com:443:203.0.113.7
    python manage.py smoketest https://example.com --admin-user ops --admin-password-env OPS_PW

The command fails (exit status 1) only when a check failed; warnings (such as
a check skipped for want of a login) do not fail the run. A server that
misbehaves (cuts a body short, drips it, sends gigabytes or a gzip bomb, an
untrusted certificate) fails the checks it answers for, each on one line:
--timeout bounds every request from connect to its last byte, and a body is
read up to MAX_BODY_BYTES, decompressed included.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import math
import os
import re
import secrets
import ssl
import time
import zlib
from dataclasses import asdict, dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

import certifi
import httpx
from django.conf import settings
from django.core.management import BaseCommand, CommandError
from django.urls import reverse

from shipshape import content_security_policy
from shipshape.results import FAIL, PASS, WARN, style
from shipshape.transport import Resolver, ResolvingTransport, parse_resolve

# Pages only Django's debug mode renders (5.2 and 6.x): the technical 404 and 500.
DEBUG_MARKERS = ("DEBUG = True", "Django tried these URL patterns", "Traceback")

# A name no deployment serves; it must be refused, never answered.
UNKNOWN_HOST = "unknown-host.shipshape.invalid"

# The pages the checks read are a few kilobytes. A body past this fails its
# request, so a server cannot choose how much memory a smoke test takes.
MAX_BODY_BYTES = 2 * 1024 * 1024

# The encodings the clients ask for (httpx would add br and zstd when installed).
ACCEPT_ENCODING = "gzip, deflate"

# Longest text printed from what a server sent, and longest detail of a result:
# whatever a server sends, a result stays one line.
DETAIL_CHARACTERS = 160
DETAIL_LINE_CHARACTERS = 240

# One line each: what to change when the check does not pass.
FIXES = {
    "https-served": "serve this host over HTTPS in the proxy config, or drop it from ALLOWED_HOSTS",
    "unknown-host": "give the proxy a default server/site that closes unknown hosts (nginx: return "
    "444 and ssl_reject_handshake on; Caddy: abort)",
    "http-redirect": "redirect plain HTTP with 301 to https://$host plus the public HTTPS port",
    "not-found": "set DJANGO_DEBUG=false; production must never show Django's debug pages",
    "hsts": "send Strict-Transport-Security from Django only (SECURE_HSTS_SECONDS), not the proxy",
    "nosniff": "set SECURE_CONTENT_TYPE_NOSNIFF = True",
    "x-frame-options": "keep XFrameOptionsMiddleware in MIDDLEWARE",
    "referrer-policy": "set SECURE_REFERRER_POLICY, e.g. 'same-origin'",
    "csrf-cookie": "set CSRF_COOKIE_SECURE = True",
    "session-cookie": "set SESSION_COOKIE_SECURE = True and SESSION_COOKIE_HTTPONLY = True",
    "forged-proto": "make the proxy overwrite X-Forwarded-Proto with its own scheme "
    "(nginx: $scheme), never pass the client's",
    "forged-host": "drop X-Forwarded-Host at the proxy and keep USE_X_FORWARDED_HOST = False",
    "admin-login": "check that the admin is routed and its static files are served",
    "csrf-post": "pass the browser's Host (with its port) and X-Forwarded-Proto to Django "
    "instead of adding CSRF_TRUSTED_ORIGINS",
    "trace": "refuse TRACE at the proxy or leave it to Django (405)",
    "ready": "503 database: check DATABASE_URL and the database; 503 migrations: run migrate "
    "for this release",
    "csp": "send the Content-Security-Policy from Django: its middleware in MIDDLEWARE, the "
    "policy in SECURE_CSP (django-csp: CONTENT_SECURITY_POLICY)",
    "permissions-policy": "keep SecurityHeadersMiddleware in MIDDLEWARE and PERMISSIONS_POLICY in "
    "the production settings",
    "corp": "set SECURE_CROSS_ORIGIN_RESOURCE_POLICY = 'same-origin' and keep "
    "SecurityHeadersMiddleware in MIDDLEWARE",
    "cookie-prefix": "name the cookies __Host-sessionid and __Host-csrftoken (SESSION_COOKIE_NAME, "
    "CSRF_COOKIE_NAME), Secure, on path '/', without a domain",
    "security-txt": "serve /.well-known/security.txt from SECURITY_TXT (SecurityTxtMiddleware) "
    "and keep its EXPIRES ahead",
}

# Other fixes for the checks that fail in more than one way.
CSP_REPORT_ONLY_FIX = (
    "once no violation is reported, move the policy to %s (csp_report_only: false)"
)
CSP_UNSAFE_FIX = (
    "remove these sources from the policy; give an inline script or style the response's nonce"
)

# security.txt warns this many days before its Expires.
SECURITY_TXT_WARN_DAYS = 30


@dataclass
class Result:
    id: str
    target: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class Probe:
    """One request's outcome: a response, or the error that ended the connection."""

    response: httpx.Response | None
    error: str | None
    seconds: float

    @property
    def refused(self) -> bool:
        return self.response is None

    def describe(self) -> str:
        if self.response is None:
            return self.error or "no answer"
        location = self.response.headers.get("location")
        return f"{self.response.status_code}" + (f" -> {location}" if location else "")


def one_line(text: str, limit: int = DETAIL_CHARACTERS) -> str:
    """Text a server chose, as one printable line of at most `limit` characters."""
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_error(exc: Exception) -> str:
    """What ended the connection, in a few words."""
    text = one_line(str(exc))
    tls = re.search(r"\[SSL: ([A-Z0-9_]+)\]", text)
    if tls and tls.group(1) == "CERTIFICATE_VERIFY_FAILED":
        reason = re.search(r"certificate verify failed: ([^(]+)", text)
        return "certificate not trusted" + (f": {reason.group(1).strip()}" if reason else "")
    if tls:
        return f"TLS handshake refused: {tls.group(1)}"
    if isinstance(exc, httpx.RemoteProtocolError):
        if not text or text.startswith("Server disconnected without sending a response"):
            return "closed without an answer"
        return f"broken HTTP: {text}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return text or type(exc).__name__


class UnreadableBody(Exception):
    """A body this client will not read: too large, or in an encoding it cannot decode."""


class BoundedBody:
    """A response body decoded as it arrives, refused once past `limit` bytes.

    httpx inflates each received piece whole, so a gzip bomb of a few kilobytes
    could take gigabytes before any limit is looked at; zlib's max_length stops
    the inflating at the limit instead.
    """

    def __init__(self, content_encoding: str, limit: int):
        encoding = content_encoding.strip().lower()
        if encoding in ("", "identity"):
            self.inflater = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            # 32 + MAX_WBITS: zlib tells a gzip header from a zlib one by itself.
            self.inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
        else:
            raise UnreadableBody(f"Content-Encoding {one_line(encoding)!r} was not asked for")
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def feed(self, data: bytes) -> None:
        if self.inflater is None:
            self._add(data)
            return
        while data:
            try:
                self._add(self.inflater.decompress(data, self.limit - self.size + 1))
            except zlib.error as exc:
                raise UnreadableBody(f"the compressed body is broken ({exc})") from None
            data = self.inflater.unconsumed_tail

    def content(self) -> bytes:
        if self.inflater is not None:
            self.feed(b"")
            self._add(self.inflater.flush())
        return b"".join(self.parts)

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise UnreadableBody(f"the body is over the {self.limit // 1024 // 1024} MB limit")
        self.parts.append(data)


def result(check_id: str, target: str, status: str, detail: str, fix: str = "") -> Result:
    detail = one_line(detail, DETAIL_LINE_CHARACTERS)
    return Result(
        check_id, target, status, detail, fix or FIXES[check_id] if status != PASS else ""
    )


# Evaluations: each takes what came back and decides; no network here. -------------


def evaluate_served(host: str, probe: Probe) -> Result:
    if probe.response is not None and 200 <= probe.response.status_code < 300:
        return result("https-served", host, PASS, f"{probe.response.status_code} over HTTPS")
    return result("https-served", host, FAIL, probe.describe())


def evaluate_unknown_host(probes: dict[str, Probe], own_not_found: Probe | None = None) -> Result:
    """Refused: closed, 400 or 421, or a 404 that is not the site's own 404 page.

    Kubernetes ingress controllers and Gateways answer a Host they route nowhere
    with their default backend's 404 instead of closing; `own_not_found` is the
    site's own answer to the same path on its real host, so a 404 that Django
    rendered (ALLOWED_HOSTS letting the unknown host in) still fails.
    """
    served = {
        how: probe
        for how, probe in probes.items()
        if probe.response is not None
        and probe.response.status_code not in (400, 421)
        and not not_from_django(probe, own_not_found)
    }
    if served:
        detail = "; ".join(f"{how}: {probe.describe()}" for how, probe in served.items())
        return result("unknown-host", UNKNOWN_HOST, FAIL, f"answered ({detail})")
    outcomes = {refusal(probe, own_not_found) for probe in probes.values()}
    if len(outcomes) == 1 and len(probes) > 1:
        detail = f"every probe: {outcomes.pop()}"
    else:
        detail = "; ".join(
            f"{how}: {refusal(probe, own_not_found)}" for how, probe in probes.items()
        )
    return result("unknown-host", UNKNOWN_HOST, PASS, f"refused ({detail})")


def not_from_django(probe: Probe, own_not_found: Probe | None) -> bool:
    """A 404 whose body differs from the site's own 404 page for the same path."""
    own = own_not_found.response if own_not_found is not None else None
    return (
        probe.response is not None
        and probe.response.status_code == 404
        and own is not None
        and own.status_code == 404
        and probe.response.content != own.content
    )


def refusal(probe: Probe, own_not_found: Probe | None) -> str:
    if not_from_django(probe, own_not_found):
        return "404 from the front, not the site's own 404 page"
    return probe.describe()


def evaluate_redirect(host: str, probe: Probe, expected_location: str) -> Result:
    response = probe.response
    if response is None:
        return result("http-redirect", host, FAIL, f"no answer over HTTP: {probe.describe()}")
    location = response.headers.get("location", "")
    if response.status_code in (301, 308) and location == expected_location:
        return result("http-redirect", host, PASS, f"{response.status_code} -> {location}")
    if response.status_code in (302, 303, 307) and location == expected_location:
        return result("http-redirect", host, FAIL, f"{response.status_code} is not permanent")
    return result("http-redirect", host, FAIL, f"{probe.describe()}, expected {expected_location}")


def evaluate_not_found(target: str, probe: Probe) -> Result:
    response = probe.response
    if response is None:
        return result("not-found", target, FAIL, probe.describe())
    markers = [marker for marker in DEBUG_MARKERS if marker in response.text]
    if markers:
        return result("not-found", target, FAIL, f"debug page ({', '.join(markers)})")
    if response.status_code != 404:
        return result("not-found", target, FAIL, f"{response.status_code}, expected 404")
    return result("not-found", target, PASS, "404 without a debug page")


def evaluate_hsts(target: str, probe: Probe, max_age: int) -> Result:
    if probe.response is None:
        return result("hsts", target, FAIL, probe.describe())
    values = probe.response.headers.get_list("strict-transport-security")
    if not max_age:
        if values:
            return result("hsts", target, WARN, f"sent although SECURE_HSTS_SECONDS is 0: {values}")
        return result("hsts", target, PASS, "not sent, as SECURE_HSTS_SECONDS = 0 says")
    if len(values) != 1:
        return result("hsts", target, FAIL, f"sent {len(values)} times, expected once: {values}")
    found = re.search(r"max-age=(\d+)", values[0])
    if not found or int(found.group(1)) != max_age:
        return result("hsts", target, FAIL, f"'{values[0]}', expected max-age={max_age}")
    return result("hsts", target, PASS, values[0])


def evaluate_header(check_id: str, target: str, probe: Probe, name: str, wanted=None) -> Result:
    if probe.response is None:
        return result(check_id, target, FAIL, probe.describe())
    values = probe.response.headers.get_list(name)
    if not values:
        return result(check_id, target, FAIL, f"{name} missing")
    if len(values) > 1:
        return result(check_id, target, WARN, f"{name} sent {len(values)} times: {values}")
    if wanted and values[0].lower() not in wanted:
        return result(check_id, target, FAIL, f"{name}: {values[0]}")
    return result(check_id, target, PASS, f"{name}: {values[0]}")


def find_cookie(response: httpx.Response, name: str):
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        try:
            cookie.load(header)
        except CookieError:
            continue
        if name in cookie:
            return cookie[name]
    return None


def evaluate_cookie(check_id: str, target: str, probe: Probe, name: str, httponly: bool) -> Result:
    if probe.response is None:
        return result(check_id, target, FAIL, probe.describe())
    morsel = find_cookie(probe.response, name)
    if morsel is None:
        return result(check_id, target, FAIL, f"no {name} cookie was set")
    missing = [flag for flag in ("secure", "httponly")[: 2 if httponly else 1] if not morsel[flag]]
    if missing:
        flags = " and ".join(flag.capitalize().replace("only", "Only") for flag in missing)
        return result(check_id, target, FAIL, f"{name} is not {flags}")
    flags = "Secure, HttpOnly" if httponly else "Secure"
    return result(check_id, target, PASS, f"{name}: {flags}")


def evaluate_forged_proto(target: str, baseline: Probe, forged: Probe) -> Result:
    if same_outcome(baseline, forged):
        return result(
            "forged-proto", target, PASS, f"X-Forwarded-Proto: http ignored ({forged.describe()})"
        )
    return result(
        "forged-proto",
        target,
        FAIL,
        f"X-Forwarded-Proto: http changed {baseline.describe()} into {forged.describe()}",
    )


def evaluate_forged_host(target: str, baseline: Probe, forged: Probe) -> Result:
    leaked = forged.response is not None and UNKNOWN_HOST in (
        forged.response.headers.get("location", "") + forged.response.text
    )
    if same_outcome(baseline, forged) and not leaked:
        return result(
            "forged-host", target, PASS, f"X-Forwarded-Host ignored ({forged.describe()})"
        )
    return result(
        "forged-host",
        target,
        FAIL,
        f"X-Forwarded-Host changed {baseline.describe()} into {forged.describe()}",
    )


def same_outcome(first: Probe, second: Probe) -> bool:
    if first.response is None or second.response is None:
        return first.response is None and second.response is None
    return (first.response.status_code, first.response.headers.get("location")) == (
        second.response.status_code,
        second.response.headers.get("location"),
    )


def evaluate_trace(target: str, probe: Probe) -> Result:
    if probe.response is None or probe.response.status_code in (405, 501):
        return result("trace", target, PASS, f"refused: {probe.describe()}")
    if 200 <= probe.response.status_code < 300:
        return result("trace", target, FAIL, f"answered {probe.response.status_code}")
    return result("trace", target, WARN, f"answered {probe.describe()}, expected 405 or 501")


def evaluate_ready(target: str, probe: Probe) -> Result:
    """The readiness path through the public front: 200 `ok` once the instance that
    answered reaches its database with every migration applied."""
    response = probe.response
    if response is not None and response.status_code == 200 and response.text.strip() == "ok":
        return result("ready", target, PASS, "200 ok")
    if response is not None and response.status_code == 503:
        return result("ready", target, FAIL, f"503 {one_line(response.text, 40)}")
    return result("ready", target, FAIL, probe.describe())


def evaluate_csrf_post(target: str, probe: Probe, logged_in: bool) -> Result:
    response = probe.response
    if response is None:
        return result("csrf-post", target, FAIL, probe.describe())
    if response.status_code == 403:
        reason = "CSRF verification failed" if "CSRF" in response.text else "forbidden"
        return result("csrf-post", target, FAIL, f"403 ({reason}) for the browser's Origin")
    if response.status_code >= 500:
        return result("csrf-post", target, FAIL, probe.describe())
    if logged_in and response.status_code != 302:
        detail = f"accepted ({response.status_code}), but the login was refused"
        return result("csrf-post", target, PASS, detail)
    outcome = "logged in" if logged_in else "login refused, as expected without credentials"
    return result("csrf-post", target, PASS, f"accepted: {probe.describe()}, {outcome}")


def evaluate_csp(target: str, probe: Probe, policy: content_security_policy.Policy) -> Result:
    """Sent, enforced unless the settings say report-only, without unsafe sources."""
    if probe.response is None:
        return result("csp", target, FAIL, probe.describe())
    enforced = probe.response.headers.get_list("content-security-policy")
    reported = probe.response.headers.get_list("content-security-policy-report-only")
    if not enforced and not reported:
        return result("csp", target, FAIL, "Content-Security-Policy missing")
    header = enforced[0] if enforced else reported[0]
    unsafe = content_security_policy.unsafe_sources(content_security_policy.parse(header))
    if unsafe:
        return result("csp", target, FAIL, f"allows {', '.join(unsafe)}", CSP_UNSAFE_FIX)
    if not enforced:
        fix = CSP_REPORT_ONLY_FIX % policy.setting
        if policy.report_only and not policy.enforced:
            return result("csp", target, WARN, f"report-only, as the settings say: {header}", fix)
        return result("csp", target, FAIL, f"report-only, blocks nothing: {header}", fix)
    return result("csp", target, PASS, f"Content-Security-Policy: {header}")


def evaluate_cookie_prefix(target: str, probes: list[Probe]) -> Result:
    """Every cookie the site sets carries __Host- and what the prefix demands."""
    names, faults = [], []
    for probe in probes:
        if probe.response is None:
            continue
        for header in probe.response.headers.get_list("set-cookie"):
            cookie = SimpleCookie()
            try:
                cookie.load(header)
            except CookieError:
                faults.append(f"unreadable Set-Cookie {one_line(header, 40)!r}")
                continue
            for name, morsel in cookie.items():
                names.append(name)
                if not name.startswith("__Host-"):
                    faults.append(f"{name} has no __Host- prefix")
                elif not morsel["secure"] or morsel["domain"] or morsel["path"] != "/":
                    faults.append(f"{name} is not Secure on path / without a domain")
    if faults:
        return result("cookie-prefix", target, FAIL, "; ".join(faults))
    if not names:
        return result("cookie-prefix", target, WARN, "no cookie was set to check")
    return result("cookie-prefix", target, PASS, ", ".join(dict.fromkeys(names)))


def evaluate_security_txt(target: str, probe: Probe, today: datetime.date) -> Result:
    response = probe.response
    if response is None:
        return result("security-txt", target, FAIL, probe.describe())
    if response.status_code != 200:
        return result("security-txt", target, FAIL, f"{probe.describe()}, expected 200")
    content_type = response.headers.get("content-type", "")
    if not content_type.lower().startswith("text/plain"):
        return result(
            "security-txt", target, FAIL, f"Content-Type {content_type!r}, not text/plain"
        )
    fields = {}
    for line in response.text.splitlines():
        name, colon, value = line.partition(":")
        if colon and not line.startswith("#"):
            fields.setdefault(name.strip().lower(), value.strip())
    if not fields.get("contact"):
        return result("security-txt", target, FAIL, "no Contact: field")
    try:
        expires = datetime.datetime.fromisoformat(fields.get("expires", "").replace("Z", "+00:00"))
    except ValueError:
        return result("security-txt", target, FAIL, f"Expires {fields.get('expires')!r} is no date")
    days = (expires.date() - today).days
    detail = f"Contact: {fields['contact']}, Expires: {fields['expires']}"
    if days <= 0:
        return result("security-txt", target, FAIL, f"expired: {detail}")
    if days <= SECURITY_TXT_WARN_DAYS:
        return result("security-txt", target, WARN, f"expires in {days} days: {detail}")
    return result("security-txt", target, PASS, detail)


CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


def summarise(results: list[Result]) -> dict[str, int]:
    return {status: sum(r.status == status for r in results) for status in (PASS, WARN, FAIL)}


# Arguments: each refused with one line from the argument parser. --------------------


def https_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:  # an unclosed [IPv6] bracket, a port that is not 0-65535
        raise argparse.ArgumentTypeError(f"{value!r} is not a URL ({exc})") from None
    if parts.scheme != "https":
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an https:// URL; give the site's public URL, https://example.com"
        )
    if not parts.hostname:
        raise argparse.ArgumentTypeError(f"{value!r} has no host; give https://example.com")
    if port == 0:
        raise argparse.ArgumentTypeError(f"{value!r}: port 0 is no port a site listens on")
    return value


def resolve_entry(value: str) -> tuple[str, int, str]:
    try:
        return parse_resolve(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def hostname(value: str) -> str:
    if not value or any(c.isspace() or c in "/:@[]" for c in value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a hostname; give e.g. www.example.com")
    return value.lower()


def port_number(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port; give a number 1-65535")
    return int(value)


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of seconds above 0; give e.g. 10"
        )
    return number


# The run -------------------------------------------------------------------------


class SmokeTest:
    """One run against one deployment: every request at once, then the evaluations."""

    def __init__(self, url, *, hosts, http_port, resolver, cafile, timeout, admin=None):
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise CommandError(f"'{url}' is not an https:// URL")
        self.host = parts.hostname.lower()
        self.suffix = "" if (parts.port or 443) == 443 else f":{parts.port}"
        self.http_suffix = "" if http_port == 80 else f":{http_port}"
        self.hosts = list(dict.fromkeys([h.lower() for h in hosts] or [self.host]))
        self.resolver = resolver
        self.resolver.alias(UNKNOWN_HOST, self.host)
        self.admin = admin
        self.timeout = timeout
        self.timings: list[float] = []
        # Certificates are verified as a browser would; only the unknown-host probe,
        # which expects no valid certificate for its name, skips the name check.
        self.verified = ssl.create_default_context(cafile=cafile or certifi.where())
        self.lenient = ssl.create_default_context(cafile=cafile or certifi.where())
        self.lenient.check_hostname = False
        shipshape = getattr(settings, "SHIPSHAPE", {})
        # Behind a load balancer Django answers health probes for any Host, on purpose.
        self.health_path = (
            getattr(settings, "HEALTH_CHECK_PATH", None)
            if shipshape.get("proxy") != "load_balancer"
            else None
        )
        self.readiness_path = getattr(settings, "READINESS_CHECK_PATH", None)

    def origin(self, host: str) -> str:
        return f"https://{host}{self.suffix}"

    def http_url(self, host: str, path: str = "/") -> str:
        return f"http://{host}{self.http_suffix}{path}"

    async def fetch(self, client, method, url, **kwargs) -> Probe:
        """One request, its body read whole: a response, or the one line that says why not.

        httpx's timeout bounds each read, which a server dripping a byte at a
        time never trips: the deadline here bounds the request as a whole.
        """
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                self.request(client, method, url, **kwargs), self.timeout
            )
            probe = Probe(response, None, 0)
        except TimeoutError:
            probe = Probe(None, f"no complete answer within {self.timeout:g}s", 0)
        except (httpx.HTTPError, ssl.SSLError, OSError, UnreadableBody) as exc:
            probe = Probe(None, short_error(exc), 0)
        probe.seconds = time.perf_counter() - started
        self.timings.append(probe.seconds)
        return probe

    async def request(self, client, method, url, **kwargs) -> httpx.Response:
        async with client.stream(method, url, timeout=self.timeout, **kwargs) as response:
            body = BoundedBody(response.headers.get("content-encoding", ""), MAX_BODY_BYTES)
            async for piece in response.aiter_raw():
                body.feed(piece)
            content = body.content()
        # The same response with its body decoded here, so httpx does not decode it again.
        headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-encoding"]
        return httpx.Response(
            response.status_code, headers=headers, content=content, request=response.request
        )

    async def run(self) -> list[Result]:
        self.transport = ResolvingTransport(self.resolver, self.verified)
        lenient = ResolvingTransport(self.resolver, self.lenient)
        headers = {"Accept-Encoding": ACCEPT_ENCODING}
        async with (
            httpx.AsyncClient(transport=self.transport, headers=headers) as self.client,
            httpx.AsyncClient(transport=lenient, headers=headers) as self.lenient_client,
        ):
            self.home = {
                host: asyncio.ensure_future(self.fetch(self.client, "GET", self.origin(host) + "/"))
                for host in dict.fromkeys([self.host, *self.hosts])
            }
            # A path nothing serves: the not-found check asks it on the real host, and the
            # unknown-host probes with their Host, so the two 404 pages can be compared.
            self.missing_path = f"/shipshape-smoketest-{secrets.token_hex(4)}/"
            self.own_not_found = asyncio.ensure_future(
                self.fetch(self.client, "GET", self.origin(self.host) + self.missing_path)
            )
            self.redirect_path = f"/shipshape-smoketest/?check={secrets.token_hex(4)}"
            self.redirect = {
                host: asyncio.ensure_future(
                    self.fetch(self.client, "GET", self.http_url(host, self.redirect_path))
                )
                for host in dict.fromkeys([self.host, *self.hosts])
            }
            groups = await asyncio.gather(
                self.served(),
                self.redirects(),
                self.unknown_host(),
                self.not_found(),
                self.security_headers(),
                self.security_txt(),
                self.forged_headers(),
                self.admin_login(),
                self.trace(),
                self.ready(),
            )
        return [r for group in groups for r in group]

    async def served(self) -> list[Result]:
        return [evaluate_served(host, await self.home[host]) for host in self.hosts]

    async def redirects(self) -> list[Result]:
        return [
            evaluate_redirect(
                host, await self.redirect[host], self.origin(host) + self.redirect_path
            )
            for host in self.hosts
        ]

    async def unknown_host(self) -> list[Result]:
        path = self.missing_path
        requests = {
            "forged Host over HTTPS": self.fetch(
                self.client, "GET", self.origin(self.host) + path, headers={"Host": UNKNOWN_HOST}
            ),
            "unknown SNI": self.fetch(self.lenient_client, "GET", self.origin(UNKNOWN_HOST) + path),
            "forged Host over HTTP": self.fetch(
                self.client, "GET", self.http_url(self.host, path), headers={"Host": UNKNOWN_HOST}
            ),
        }
        if self.health_path:
            requests["forged Host on the health path"] = self.fetch(
                self.client,
                "GET",
                self.origin(self.host) + self.health_path,
                headers={"Host": UNKNOWN_HOST},
            )
        probes = await asyncio.gather(*requests.values())
        own = await self.own_not_found
        return [evaluate_unknown_host(dict(zip(requests, probes, strict=True)), own)]

    async def not_found(self) -> list[Result]:
        return [evaluate_not_found(self.host, await self.own_not_found)]

    async def security_headers(self) -> list[Result]:
        home = await self.home[self.host]
        return [
            evaluate_hsts(self.host, home, settings.SECURE_HSTS_SECONDS),
            evaluate_header("nosniff", self.host, home, "x-content-type-options", {"nosniff"}),
            evaluate_header(
                "x-frame-options", self.host, home, "x-frame-options", {"deny", "sameorigin"}
            ),
            evaluate_header("referrer-policy", self.host, home, "referrer-policy"),
            evaluate_csp(self.host, home, content_security_policy.configured()),
            evaluate_header("permissions-policy", self.host, home, "permissions-policy"),
            evaluate_header(
                "corp",
                self.host,
                home,
                "cross-origin-resource-policy",
                {"same-origin", "same-site"},
            ),
        ]

    async def security_txt(self) -> list[Result]:
        url = self.origin(self.host) + "/.well-known/security.txt"
        probe = await self.fetch(self.client, "GET", url)
        return [evaluate_security_txt(self.host, probe, datetime.date.today())]

    async def forged_headers(self) -> list[Result]:
        url = self.origin(self.host) + "/"
        http_url = self.http_url(self.host, self.redirect_path)
        forged_https, forged_http, forged_host = await asyncio.gather(
            self.fetch(self.client, "GET", url, headers={"X-Forwarded-Proto": "http"}),
            self.fetch(self.client, "GET", http_url, headers={"X-Forwarded-Proto": "https"}),
            self.fetch(
                self.client,
                "GET",
                url,
                headers={"X-Forwarded-Host": UNKNOWN_HOST, "X-Forwarded-Port": "1"},
            ),
        )
        home, redirect = await self.home[self.host], await self.redirect[self.host]
        proto = evaluate_forged_proto(self.host, home, forged_https)
        if proto.status == PASS:
            proto = evaluate_forged_proto(self.host, redirect, forged_http)
        return [proto, evaluate_forged_host(self.host, home, forged_host)]

    async def admin_login(self) -> list[Result]:
        login_url = self.origin(self.host) + reverse("admin:login")
        # A client of its own, so the login's cookies stay with this flow.
        client = httpx.AsyncClient(
            transport=self.transport, headers={"Accept-Encoding": ACCEPT_ENCODING}
        )
        page = await self.fetch(client, "GET", login_url)
        results = [
            evaluate_cookie("csrf-cookie", self.host, page, settings.CSRF_COOKIE_NAME, False)
        ]
        token = CSRF_FIELD.search(page.response.text) if page.response is not None else None
        if page.response is None or page.response.status_code != 200 or not token:
            detail = page.describe() + ("" if token else ", no CSRF token in the page")
            results.append(result("admin-login", self.host, FAIL, detail))
            results.append(result("csrf-post", self.host, FAIL, "no login form to post"))
            results.append(evaluate_cookie_prefix(self.host, [page]))
            results.append(self.session_not_checked("no login form"))
            return results
        results.append(result("admin-login", self.host, PASS, f"200 at {login_url}"))
        username, password = self.admin or ("shipshape-smoketest", secrets.token_urlsafe(16))
        posted = await self.fetch(
            client,
            "POST",
            login_url,
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": username,
                "password": password,
                "next": reverse("admin:index"),
            },
            # What a browser sends with a same-origin form.
            headers={"Origin": self.origin(self.host), "Referer": login_url},
        )
        results.append(evaluate_csrf_post(self.host, posted, logged_in=bool(self.admin)))
        results.append(evaluate_cookie_prefix(self.host, [page, posted]))
        if self.admin and posted.response is not None and posted.response.status_code == 302:
            results.append(
                evaluate_cookie(
                    "session-cookie", self.host, posted, settings.SESSION_COOKIE_NAME, True
                )
            )
        elif self.admin:
            results.append(self.session_not_checked("the login did not go through (see csrf-post)"))
        else:
            results.append(self.session_not_checked())
        return results

    def session_not_checked(self, why: str = "") -> Result:
        if why:
            return Result("session-cookie", self.host, WARN, f"not checked: {why}", "")
        return Result(
            "session-cookie",
            self.host,
            WARN,
            "not checked: the session cookie is only set after a login",
            "pass --admin-user NAME --admin-password-env VAR to log in and check it",
        )

    async def ready(self) -> list[Result]:
        if not self.readiness_path:
            return []
        url = self.origin(self.host) + self.readiness_path
        return [evaluate_ready(self.host, await self.fetch(self.client, "GET", url))]

    async def trace(self) -> list[Result]:
        url = self.origin(self.host) + "/"
        return [evaluate_trace(self.host, await self.fetch(self.client, "TRACE", url))]


class Command(BaseCommand):
    help = "Check a live deployment over HTTPS from the outside; exit 1 if a check fails."

    # Runs against another machine; this one's configuration is not what is tested.
    requires_system_checks = []

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # A mistyped argument gets the one line that names it and the fix, not
        # the whole usage above it; --help still prints everything.
        parser.print_usage = lambda file=None: None
        return parser

    def add_arguments(self, parser):
        parser.add_argument("url", type=https_url, help="the site's public https:// URL")
        parser.add_argument(
            "--resolve",
            action="append",
            type=resolve_entry,
            default=[],
            metavar="HOST:PORT:ADDR",
            help="connect to ADDR for HOST (SNI and Host stay HOST), like curl; repeatable",
        )
        parser.add_argument(
            "--cacert", metavar="FILE", help="trust this CA instead of the system's"
        )
        parser.add_argument(
            "--host",
            action="append",
            type=hostname,
            default=[],
            dest="hosts",
            help="a hostname to check instead of ALLOWED_HOSTS; repeatable",
        )
        parser.add_argument(
            "--http-port",
            type=port_number,
            default=getattr(settings, "SHIPSHAPE", {}).get("http_port", 80),
            help="the public plain-HTTP port (default: SHIPSHAPE['http_port'] or 80)",
        )
        parser.add_argument("--admin-user", help="log in to the admin as this user")
        parser.add_argument(
            "--admin-password-env",
            metavar="VAR",
            help="the environment variable that holds --admin-user's password",
        )
        parser.add_argument(
            "--timeout",
            type=seconds,
            default=10.0,
            help="seconds each request may take, from connecting to its last byte",
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args, **options):
        entries = options["resolve"]
        admin = None
        if options["admin_user"]:
            variable = options["admin_password_env"]
            if not variable or variable not in os.environ:
                raise CommandError("--admin-user needs --admin-password-env naming a set variable")
            admin = (options["admin_user"], os.environ[variable])
        hosts = options["hosts"] or list(settings.ALLOWED_HOSTS)
        try:
            test = SmokeTest(
                options["url"],
                hosts=hosts,
                http_port=options["http_port"],
                resolver=Resolver(entries),
                cafile=options["cacert"],
                timeout=options["timeout"],
                admin=admin,
            )
        except (OSError, ssl.SSLError) as exc:
            # Only loading --cacert reads a file here.
            reason = exc.strerror or getattr(exc, "reason", None) or exc
            raise CommandError(
                f"--cacert {options['cacert']!r} cannot be read as PEM certificates ({reason})"
            ) from None
        # httpx logs every request at INFO, which the project's logging would print.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        started = time.perf_counter()
        results = asyncio.run(test.run())
        elapsed = time.perf_counter() - started
        counts = summarise(results)
        timing = {
            "requests": len(test.timings),
            "elapsed_seconds": round(elapsed, 3),
            "slowest_request_seconds": round(max(test.timings, default=0), 3),
            # Their sum: what the run would take one request after another.
            "sum_of_requests_seconds": round(sum(test.timings), 3),
        }
        if options["json"]:
            document = {"url": options["url"], "results": [asdict(r) for r in results]}
            self.stdout.write(json.dumps({**document, "summary": counts, **timing}, indent=2))
        else:
            self.table(results)
            line = (
                f"smoketest: {counts[PASS]} passed, {counts[WARN]} warnings, {counts[FAIL]} failed"
                f" ({timing['requests']} requests in {elapsed:.2f}s,"
                f" slowest {timing['slowest_request_seconds']:.2f}s)"
            )
            self.stdout.write("")
            self.stdout.write(line, style_func=style(self, FAIL if counts[FAIL] else PASS))
        if counts[FAIL]:
            failed = dict.fromkeys(r.id for r in results if r.status == FAIL)
            raise CommandError(f"failed: {', '.join(failed)}")

    def table(self, results: list[Result]) -> None:
        width_id = max(len(r.id) for r in results)
        width_target = max(len(r.target) for r in results)
        for r in results:
            line = (
                f"{r.status.upper():<4}  {r.id:<{width_id}}  {r.target:<{width_target}}  {r.detail}"
            )
            self.stdout.write(line, style_func=style(self, r.status))
            if r.fix:
                self.stdout.write(f"{'':<{width_id + width_target + 8}}fix: {r.fix}")
