"""`manage.py smoketest https://example.com`: check a live deployment from the outside.

What the checklist asks to verify with real requests after every release: each
host is served over HTTPS, unknown hosts are refused, HTTP redirects to HTTPS,
no debug page, the security headers and cookie flags, forged proxy headers
change nothing, the admin login's CSRF check passes, TRACE is refused. Every
request runs at once, so the run takes about as long as its slowest request.

    python manage.py smoketest https://example.com
    python manage.py smoketest https://example.com --resolve example.com:443:203.0.113.7
    python manage.py smoketest https://example.com --admin-user ops --admin-password-env OPS_PW

The command fails (exit status 1) only when a check failed; warnings (such as
a check skipped for want of a login) do not fail the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import ssl
import time
from dataclasses import asdict, dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

import certifi
import httpx
from django.conf import settings
from django.core.management import BaseCommand, CommandError
from django.urls import reverse

from shipshape.results import FAIL, PASS, WARN, style
from shipshape.transport import Resolver, ResolvingTransport, parse_resolve

# Pages only Django's debug mode renders (5.2 and 6.x): the technical 404 and 500.
DEBUG_MARKERS = ("DEBUG = True", "Django tried these URL patterns", "Traceback")

# A name no deployment serves; it must be refused, never answered.
UNKNOWN_HOST = "unknown-host.shipshape.invalid"

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
}


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


def short_error(exc: Exception) -> str:
    """What ended the connection, in a few words."""
    text = str(exc)
    tls = re.search(r"\[SSL: ([A-Z0-9_]+)\]", text)
    if tls:
        return f"TLS handshake refused: {tls.group(1)}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "closed without an answer"
    return text or type(exc).__name__


def result(check_id: str, target: str, status: str, detail: str) -> Result:
    return Result(check_id, target, status, detail, FIXES[check_id] if status != PASS else "")


# Evaluations: each takes what came back and decides; no network here. -------------


def evaluate_served(host: str, probe: Probe) -> Result:
    if probe.response is not None and 200 <= probe.response.status_code < 300:
        return result("https-served", host, PASS, f"{probe.response.status_code} over HTTPS")
    return result("https-served", host, FAIL, probe.describe())


def evaluate_unknown_host(probes: dict[str, Probe]) -> Result:
    served = {
        how: probe
        for how, probe in probes.items()
        if probe.response is not None and probe.response.status_code not in (400, 421)
    }
    if served:
        detail = "; ".join(f"{how}: {probe.describe()}" for how, probe in served.items())
        return result("unknown-host", UNKNOWN_HOST, FAIL, f"answered ({detail})")
    detail = "; ".join(f"{how}: {probe.describe()}" for how, probe in probes.items())
    return result("unknown-host", UNKNOWN_HOST, PASS, f"refused ({detail})")


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


CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


def summarise(results: list[Result]) -> dict[str, int]:
    return {status: sum(r.status == status for r in results) for status in (PASS, WARN, FAIL)}


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

    def origin(self, host: str) -> str:
        return f"https://{host}{self.suffix}"

    def http_url(self, host: str, path: str = "/") -> str:
        return f"http://{host}{self.http_suffix}{path}"

    async def fetch(self, client, method, url, **kwargs) -> Probe:
        started = time.perf_counter()
        try:
            response = await client.request(method, url, timeout=self.timeout, **kwargs)
            probe = Probe(response, None, 0)
        except (httpx.HTTPError, ssl.SSLError) as exc:
            probe = Probe(None, short_error(exc), 0)
        probe.seconds = time.perf_counter() - started
        self.timings.append(probe.seconds)
        return probe

    async def run(self) -> list[Result]:
        self.transport = ResolvingTransport(self.resolver, self.verified)
        lenient = ResolvingTransport(self.resolver, self.lenient)
        async with (
            httpx.AsyncClient(transport=self.transport) as self.client,
            httpx.AsyncClient(transport=lenient) as self.lenient_client,
        ):
            self.home = {
                host: asyncio.ensure_future(self.fetch(self.client, "GET", self.origin(host) + "/"))
                for host in dict.fromkeys([self.host, *self.hosts])
            }
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
                self.forged_headers(),
                self.admin_login(),
                self.trace(),
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
        requests = {
            "forged Host over HTTPS": self.fetch(
                self.client, "GET", self.origin(self.host) + "/", headers={"Host": UNKNOWN_HOST}
            ),
            "unknown SNI": self.fetch(self.lenient_client, "GET", self.origin(UNKNOWN_HOST) + "/"),
            "forged Host over HTTP": self.fetch(
                self.client, "GET", self.http_url(self.host), headers={"Host": UNKNOWN_HOST}
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
        return [evaluate_unknown_host(dict(zip(requests, probes, strict=True)))]

    async def not_found(self) -> list[Result]:
        url = self.origin(self.host) + f"/shipshape-smoketest-{secrets.token_hex(4)}/"
        return [evaluate_not_found(self.host, await self.fetch(self.client, "GET", url))]

    async def security_headers(self) -> list[Result]:
        home = await self.home[self.host]
        return [
            evaluate_hsts(self.host, home, settings.SECURE_HSTS_SECONDS),
            evaluate_header("nosniff", self.host, home, "x-content-type-options", {"nosniff"}),
            evaluate_header(
                "x-frame-options", self.host, home, "x-frame-options", {"deny", "sameorigin"}
            ),
            evaluate_header("referrer-policy", self.host, home, "referrer-policy"),
        ]

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
        client = httpx.AsyncClient(transport=self.transport)
        page = await self.fetch(client, "GET", login_url)
        results = [
            evaluate_cookie("csrf-cookie", self.host, page, settings.CSRF_COOKIE_NAME, False)
        ]
        token = CSRF_FIELD.search(page.response.text) if page.response is not None else None
        if page.response is None or page.response.status_code != 200 or not token:
            detail = page.describe() + ("" if token else ", no CSRF token in the page")
            results.append(result("admin-login", self.host, FAIL, detail))
            results.append(result("csrf-post", self.host, FAIL, "no login form to post"))
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

    async def trace(self) -> list[Result]:
        url = self.origin(self.host) + "/"
        return [evaluate_trace(self.host, await self.fetch(self.client, "TRACE", url))]


class Command(BaseCommand):
    help = "Check a live deployment over HTTPS from the outside; exit 1 if a check fails."

    # Runs against another machine; this one's configuration is not what is tested.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("url", help="the site's public https:// URL")
        parser.add_argument(
            "--resolve",
            action="append",
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
            default=[],
            dest="hosts",
            help="a hostname to check instead of ALLOWED_HOSTS; repeatable",
        )
        parser.add_argument(
            "--http-port",
            type=int,
            default=getattr(settings, "SHIPSHAPE", {}).get("http_port", 80),
            help="the public plain-HTTP port (default: SHIPSHAPE['http_port'] or 80)",
        )
        parser.add_argument("--admin-user", help="log in to the admin as this user")
        parser.add_argument(
            "--admin-password-env",
            metavar="VAR",
            help="the environment variable that holds --admin-user's password",
        )
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args, **options):
        try:
            entries = [parse_resolve(value) for value in options["resolve"]]
        except ValueError as exc:
            raise CommandError(f"--resolve {exc}") from None
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
