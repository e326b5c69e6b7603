"""Deploy checks Django's own `check --deploy` does not make.

Each one runs inside `manage.py check --deploy` beside Django's security checks,
in the same shape: the messages live here at module level with a stable id and a
hint that names the fix, and each small function only decides which apply.
Silence one deliberately with SILENCED_SYSTEM_CHECKS, like any Django check.

They cover what production-checklist incidents come from and Django cannot see:
a SECRET_KEY that is in the repository, hosts and origins left from other
environments, settings that disagree with the proxy config in deploy/, and error
reports mailed to nobody or from an address mail servers refuse.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
from email.utils import parseaddr
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Info, Tags, Warning, register
from django.http.request import validate_host

from . import content_security_policy, proxy_config

# Bounds for searching git history, so `check --deploy` stays fast on a big repository:
# the trees of the last GIT_HISTORY_COMMITS commits, within GIT_TIMEOUT_SECONDS.
GIT_HISTORY_COMMITS = 500
GIT_TIMEOUT_SECONDS = 5

# Without git there is no telling which files are committed: these are the
# settings and env files a generated project commits (the real .env is ignored).
FILES_WITHOUT_GIT = (
    ".env.example",
    "*/settings.py",
    "*/settings/*.py",
    "*/env.py",
    "tests/settings.py",
)

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}

W001 = Warning(
    "Your SECRET_KEY is a value committed to the repository (%s), so anyone who "
    "can read the code can forge sessions and password reset links.",
    hint="Generate a new key for this deployment and set it in the environment "
    "(DJANGO_SECRET_KEY in the server's .env), never in a tracked file.",
    id="shipshape.W001",
)

W002 = Warning(
    "ALLOWED_HOSTS contains '*', so Django answers requests for any Host header.",
    hint="List each public hostname the site serves in DJANGO_ALLOWED_HOSTS.",
    id="shipshape.W002",
)

W003 = Warning(
    "ALLOWED_HOSTS entry '%s' is a wildcard that matches the domain and every subdomain.",
    hint="List each hostname the site serves instead of a leading-dot pattern.",
    id="shipshape.W003",
)

W004 = Warning(
    "ALLOWED_HOSTS entry '%s' is a local address, which a public deployment never serves.",
    hint="Remove it from DJANGO_ALLOWED_HOSTS; health probes use the health path, "
    "which needs no host.",
    id="shipshape.W004",
)

W005 = Warning(
    "ALLOWED_HOSTS entry '%s' is not one of the hostnames this project was generated "
    "for (PUBLIC_HOSTS), so the proxy in deploy/ never forwards it.",
    hint="Remove the stale name from DJANGO_ALLOWED_HOSTS, or add it to PUBLIC_HOSTS "
    "and to the proxy config if the site really moved.",
    id="shipshape.W005",
)

W006 = Warning(
    "CSRF_TRUSTED_ORIGINS entry '%s' is an http:// origin, so forms posted over "
    "plain HTTP are trusted.",
    hint="Use the https:// origin; browsers reach this site over HTTPS only.",
    id="shipshape.W006",
)

W007 = Warning(
    "CSRF_TRUSTED_ORIGINS entry '%s' has no scheme, so it never matches a browser's Origin.",
    hint="Write the full origin, https://host[:port].",
    id="shipshape.W007",
)

W008 = Warning(
    "CSRF_TRUSTED_ORIGINS entry '%s' is a wildcard that trusts every matching subdomain.",
    hint="List each origin that really posts to this site.",
    id="shipshape.W008",
)

W009 = Warning(
    "CSRF_TRUSTED_ORIGINS entry '%s' names a host that ALLOWED_HOSTS does not serve.",
    hint="Remove the stale origin; keep it only if that other site really posts "
    "forms here, and then silence shipshape.W009.",
    id="shipshape.W009",
)

I001 = Info(
    "CSRF_TRUSTED_ORIGINS entry '%s' repeats a host Django already serves, and "
    "Django accepts a site's own origin without it.",
    hint="Remove it; if the admin login fails without it, the proxy is not passing "
    "Host or X-Forwarded-Proto, and that is what to fix.",
    id="shipshape.I001",
)

W010 = Warning(
    "SECURE_PROXY_SSL_HEADER is not set although %s terminates TLS, so every request "
    "looks like plain HTTP to Django.",
    hint="Set SECURE_PROXY_SSL_HEADER = ('HTTP_X_FORWARDED_PROTO', 'https') and make "
    "the proxy overwrite X-Forwarded-Proto.",
    id="shipshape.W010",
)

W011 = Warning(
    "USE_X_FORWARDED_HOST is True, so a client's X-Forwarded-Host can choose the host "
    "Django validates and puts in links.",
    hint="Set USE_X_FORWARDED_HOST = False; the proxy passes the real Host header.",
    id="shipshape.W011",
)

W012 = Warning(
    "USE_X_FORWARDED_PORT is True, so a client's X-Forwarded-Port can change the port "
    "in URLs Django builds.",
    hint="Set USE_X_FORWARDED_PORT = False; the proxy passes the port in the Host header.",
    id="shipshape.W012",
)

W013 = Warning(
    "Both %s and Django (SECURE_HSTS_SECONDS) send Strict-Transport-Security, so "
    "responses carry the header twice.",
    hint="Remove the Strict-Transport-Security header from the proxy config; Django sends it.",
    id="shipshape.W013",
)

W014 = Warning(
    "STATIC_ROOT is deployed at %s but %s serves STATIC_URL from %s, so collectstatic "
    "writes where the proxy never looks.",
    hint="Make the proxy's static location point at STATIC_ROOT (or STATIC_ROOT at it).",
    id="shipshape.W014",
)

W015 = Warning(
    "%s does not serve STATIC_URL (%s), so static files are not served.",
    hint="Add a location for STATIC_URL that serves STATIC_ROOT to the proxy config.",
    id="shipshape.W015",
)

W016 = Warning(
    "ADMINS is empty, so the reports of server errors (500s) are mailed to nobody.",
    hint="List the addresses that must hear about errors in DJANGO_ADMINS, then prove "
    "the path with `manage.py preflight --send-test-mail ADDRESS`.",
    id="shipshape.W016",
)

W017 = Warning(
    "Error reports are mailed from %s (SERVER_EMAIL), Django's default, which mail "
    "servers reject or file as spam.",
    hint="Set DJANGO_SERVER_EMAIL to an address of your domain that your mail server "
    "may send from.",
    id="shipshape.W017",
)

W018 = Warning(
    "Password resets and other mail are sent from %s (DEFAULT_FROM_EMAIL), Django's "
    "default, which mail servers reject or file as spam.",
    hint="Set DJANGO_DEFAULT_FROM_EMAIL to an address of your domain that your mail "
    "server may send from.",
    id="shipshape.W018",
)

E001 = Error(
    "The proxy config named in SHIPSHAPE['proxy_config'] cannot be read: %s.",
    hint="Point SHIPSHAPE['proxy_config'] at the file in deploy/, or render it again "
    "with `copier update`.",
    id="shipshape.E001",
)


def _copy(message, *args):
    """The module-level message with the details of this occurrence filled in."""
    return type(message)(message.msg % args, hint=message.hint, id=message.id)


# SECRET_KEY ---------------------------------------------------------------------


def _base_dir() -> Path:
    return Path(getattr(settings, "BASE_DIR", Path.cwd()))


class _NoGit(Exception):
    """git is not installed, this is not a repository, or git gave up."""


def _git_grep(base_dir: Path, keys: list[str], *trees: str) -> list[str]:
    """The files (`tree:path` for a tree) holding any of the keys, as `git grep -F -l` lists them.

    The whole repository, even when BASE_DIR is a folder of it. The keys go to
    git on its standard input, so they appear in no process list, and git
    prints only file names, never a matching line.
    """
    result = _git(
        base_dir, "grep", "-F", "-l", "-z", "--full-name", "-f", "-", *trees, "--", ":(top)",
        input="".join(f"{key}\n" for key in keys),
    )  # fmt: skip
    # git grep exits 1 when nothing matches, 128 outside a repository.
    if result is None or result.returncode not in (0, 1):
        raise _NoGit
    return [name for name in result.stdout.split("\0") if name]


def _recent_commits(base_dir: Path) -> list[str]:
    result = _git(
        base_dir, "rev-list", "--all", "--abbrev-commit", f"--max-count={GIT_HISTORY_COMMITS}"
    )
    return result.stdout.split() if result is not None and result.returncode == 0 else []


def _git(base_dir: Path, *args: str, input: str | None = None):
    """git in the project's repository, within the time bound; None when it cannot run."""
    try:
        return subprocess.run(
            ["git", "-C", str(base_dir), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def where_committed(base_dir: Path, keys: list[str]) -> str | None:
    """Where one of the keys is committed, naming the file (and commit), or None.

    In a git repository: every tracked file as it is now, then every file of the
    last GIT_HISTORY_COMMITS commits on any branch; a history search that runs
    out of time finds nothing. Without git: FILES_WITHOUT_GIT on disk.
    """
    # A pattern file holds one key a line; an empty line would match everything.
    keys = [key for key in keys if key and "\n" not in key]
    if not keys:
        return None
    try:
        tracked = _git_grep(base_dir, keys)
    except _NoGit:
        for pattern in FILES_WITHOUT_GIT:
            for path in sorted(base_dir.glob(pattern)):
                text = path.read_text(errors="replace")
                if any(key in text for key in keys):
                    return str(path.relative_to(base_dir))
        return None
    if tracked:
        more = f" and {len(tracked) - 3} more files" if len(tracked) > 3 else ""
        return ", ".join(tracked[:3]) + more
    commits = _recent_commits(base_dir)
    if not commits:
        return None
    try:
        found = _git_grep(base_dir, keys, *commits)
    except _NoGit:
        return None
    if not found:
        return None
    # Listed newest commit first: the last one is the oldest in reach, where it came in.
    commit, _, path = found[-1].partition(":")
    return f"git history: {path} in commit {commit}"


@register(Tags.security, deploy=True)
def check_secret_key_not_committed(app_configs, **kwargs):
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    where = where_committed(_base_dir(), [key for key in keys if isinstance(key, str)])
    return [_copy(W001, f"found in {where}")] if where else []


# Hosts and origins --------------------------------------------------------------


def _is_local(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


@register(Tags.security, deploy=True)
def check_allowed_hosts(app_configs, **kwargs):
    public = getattr(settings, "PUBLIC_HOSTS", None)
    errors = []
    for host in settings.ALLOWED_HOSTS:
        if host == "*":
            errors.append(W002)
        elif host.startswith("."):
            errors.append(_copy(W003, host))
        elif _is_local(host):
            errors.append(_copy(W004, host))
        elif public is not None and host.lower() not in public:
            errors.append(_copy(W005, host))
    return errors


@register(Tags.security, deploy=True)
def check_csrf_trusted_origins(app_configs, **kwargs):
    errors = []
    for origin in settings.CSRF_TRUSTED_ORIGINS:
        if "://" not in origin:
            errors.append(_copy(W007, origin))
        elif origin.startswith("http://"):
            errors.append(_copy(W006, origin))
        elif "*" in origin:
            errors.append(_copy(W008, origin))
        else:
            host = urlsplit(origin).hostname or ""
            if validate_host(host, settings.ALLOWED_HOSTS):
                errors.append(_copy(I001, origin))
            else:
                errors.append(_copy(W009, origin))
    return errors


# Proxy headers ------------------------------------------------------------------


def _read_proxy_config():
    """The proxy config as read, None without one, or the E001 error when it is unreadable."""
    try:
        return proxy_config.load(), None
    except proxy_config.UnreadableConfig as exc:
        return None, _copy(E001, exc)


@register(Tags.security, deploy=True)
def check_proxy_config_readable(app_configs, **kwargs):
    _, error = _read_proxy_config()
    return [error] if error else []


@register(Tags.security, deploy=True)
def check_proxy_ssl_header(app_configs, **kwargs):
    if settings.SECURE_PROXY_SSL_HEADER:
        return []
    kind, _ = proxy_config.configured()
    if kind == "load_balancer":
        return [_copy(W010, "the load balancer")]
    config, _ = _read_proxy_config()
    if config is not None and config.terminates_tls:
        return [_copy(W010, config.name)]
    return []


@register(Tags.security, deploy=True)
def check_forwarded_host_and_port(app_configs, **kwargs):
    errors = []
    if settings.USE_X_FORWARDED_HOST:
        errors.append(W011)
    if settings.USE_X_FORWARDED_PORT:
        errors.append(W012)
    return errors


@register(Tags.security, deploy=True)
def check_hsts_sent_once(app_configs, **kwargs):
    if not settings.SECURE_HSTS_SECONDS:
        return []
    config, _ = _read_proxy_config()
    if config is not None and config.sends_hsts:
        return [_copy(W013, config.name)]
    return []


# Static files -------------------------------------------------------------------


def deployed_path(path: str | os.PathLike) -> str:
    """Where a path under BASE_DIR lives on the server (SHIPSHAPE['app_dir'])."""
    app_dir = getattr(settings, "SHIPSHAPE", {}).get("app_dir")
    path = Path(path)
    if app_dir:
        try:
            relative = path.resolve().relative_to(_base_dir().resolve())
        except ValueError:
            pass
        else:
            return str(PurePosixPath(app_dir, *relative.parts))
    return str(PurePosixPath(path))


@register(Tags.security, deploy=True)
def check_static_root_matches_proxy(app_configs, **kwargs):
    # A STATIC_URL on another host (a CDN) is not the proxy's to serve.
    if not settings.STATIC_ROOT or not settings.STATIC_URL or urlsplit(settings.STATIC_URL).netloc:
        return []
    config, _ = _read_proxy_config()
    if config is None:
        return []
    served = config.directories_served(settings.STATIC_URL)
    if not served:
        return [_copy(W015, config.name, settings.STATIC_URL)]
    expected = deployed_path(settings.STATIC_ROOT)
    return [
        _copy(W014, expected, config.name, directory)
        for directory in dict.fromkeys(served)
        if directory != expected
    ]


# Mail -----------------------------------------------------------------------------


def _unsendable(address: str) -> bool:
    """An address no mail server outside this machine accepts mail from: Django's defaults."""
    domain = parseaddr(str(address))[1].lower().rpartition("@")[2]
    return domain in ("localhost", "localhost.localdomain")


@register(Tags.security, deploy=True)
def check_error_mail(app_configs, **kwargs):
    if not settings.ADMINS:
        return [W016]
    if _unsendable(settings.SERVER_EMAIL):
        return [_copy(W017, settings.SERVER_EMAIL)]
    return []


@register(Tags.security, deploy=True)
def check_default_from_email(app_configs, **kwargs):
    if _unsendable(settings.DEFAULT_FROM_EMAIL):
        return [_copy(W018, settings.DEFAULT_FROM_EMAIL)]
    return []


# Security headers, cookies and security.txt -------------------------------------

W030 = Warning(
    "No Content-Security-Policy is sent: %s.",
    hint="Keep the CSP middleware in MIDDLEWARE and the policy in %s, as the "
    "template's production settings have them.",
    id="shipshape.W030",
)

W031 = Warning(
    "The Content-Security-Policy is report-only (%s), so browsers report what it "
    "would block and block nothing.",
    hint="Once no violation is reported, move the policy to %s (the csp_report_only "
    "answer: false).",
    id="shipshape.W031",
)

W032 = Warning(
    "The Content-Security-Policy allows %s, so a script injected into a page can run.",
    hint="Remove those sources; give an inline script or style the response's nonce "
    "instead, and list other sites by origin.",
    id="shipshape.W032",
)

W033 = Warning(
    "No Permissions-Policy is sent: %s.",
    hint="Keep SecurityHeadersMiddleware in MIDDLEWARE and PERMISSIONS_POLICY in the "
    "production settings, denying the features the site does not use.",
    id="shipshape.W033",
)

W034 = Warning(
    "SECURE_CROSS_ORIGIN_RESOURCE_POLICY is %s, so other sites may load this site's "
    "pages and files as resources.",
    hint="Set SECURE_CROSS_ORIGIN_RESOURCE_POLICY = 'same-origin' and keep "
    "SecurityHeadersMiddleware in MIDDLEWARE.",
    id="shipshape.W034",
)

W035 = Warning(
    "%s is '%s', without the __Host- prefix, so a subdomain or a man in the middle "
    "on plain HTTP can plant or overwrite the cookie.",
    hint="Name it '__Host-%s'; the rename logs everyone out once.",
    id="shipshape.W035",
)

E030 = Error(
    "%s has the __Host- prefix but %s, so browsers refuse the cookie and nobody can log in.",
    hint="A __Host- cookie must be Secure, on path '/' and without a domain: fix the "
    "setting, or drop the prefix from the name.",
    id="shipshape.E030",
)

W038 = Warning(
    "Both %s and Django send %s, so responses carry the header twice.",
    hint="Remove the header from the proxy config; Django sends it (SecurityHeadersMiddleware).",
    id="shipshape.W038",
)

W036 = Warning(
    "/.well-known/security.txt is not served: %s.",
    hint="Set SECURITY_TXT = {'CONTACT': 'mailto:...', 'EXPIRES': 'YYYY-MM-DD'} and keep "
    "SecurityTxtMiddleware in MIDDLEWARE.",
    id="shipshape.W036",
)

W037 = Warning(
    "security.txt %s (SECURITY_TXT['EXPIRES'] is %s), so readers take its contact as stale.",
    hint="Move SECURITY_TXT['EXPIRES'] forward, less than a year ahead, and deploy.",
    id="shipshape.W037",
)

E031 = Error(
    "SECURITY_TXT['EXPIRES'] is %r, not a date, so the site does not start.",
    hint="Give a date such as 2027-06-30, less than a year ahead.",
    id="shipshape.E031",
)

# security.txt warns this many days before it expires.
SECURITY_TXT_WARN_DAYS = 30


def _has_middleware(suffix: str) -> bool:
    return any(str(name).endswith(suffix) for name in settings.MIDDLEWARE)


@register(Tags.security, deploy=True)
def check_content_security_policy(app_configs, **kwargs):
    policy = content_security_policy.configured()
    if policy.middleware is None:
        return [_copy_with_hint(W030, ("no CSP middleware is in MIDDLEWARE",), (policy.setting,))]
    if not policy.enforced and not policy.report_only:
        reason = f"{policy.setting} and {policy.report_only_setting} are empty"
        return [_copy_with_hint(W030, (reason,), (policy.setting,))]
    errors = []
    if not policy.enforced:
        errors.append(_copy_with_hint(W031, (policy.report_only_setting,), (policy.setting,)))
    unsafe = content_security_policy.unsafe_sources(policy.enforced or policy.report_only)
    if unsafe:
        errors.append(_copy(W032, ", ".join(unsafe)))
    return errors


@register(Tags.security, deploy=True)
def check_permissions_policy(app_configs, **kwargs):
    if not getattr(settings, "PERMISSIONS_POLICY", None):
        return [_copy(W033, "PERMISSIONS_POLICY is empty or missing")]
    if not _has_middleware("SecurityHeadersMiddleware"):
        return [_copy(W033, "SecurityHeadersMiddleware is not in MIDDLEWARE")]
    return []


@register(Tags.security, deploy=True)
def check_cross_origin_resource_policy(app_configs, **kwargs):
    value = getattr(settings, "SECURE_CROSS_ORIGIN_RESOURCE_POLICY", None)
    if value not in ("same-origin", "same-site"):
        return [_copy(W034, repr(value) if value else "not set")]
    if not _has_middleware("SecurityHeadersMiddleware"):
        return [_copy(W034, f"{value!r} but SecurityHeadersMiddleware is not in MIDDLEWARE")]
    return []


@register(Tags.security, deploy=True)
def check_security_headers_sent_once(app_configs, **kwargs):
    config, _ = _read_proxy_config()
    if config is None or not _has_middleware("SecurityHeadersMiddleware"):
        return []
    sent_by_django = {
        "Permissions-Policy": getattr(settings, "PERMISSIONS_POLICY", None),
        "Cross-Origin-Resource-Policy": getattr(
            settings, "SECURE_CROSS_ORIGIN_RESOURCE_POLICY", None
        ),
    }
    return [
        _copy(W038, config.name, header)
        for header, value in sent_by_django.items()
        if value and config.sends_header(header.lower())
    ]


def _cookie_faults(prefix: str) -> list[str]:
    """Why a cookie with these settings (SESSION or CSRF) cannot carry __Host-."""
    faults = []
    if not getattr(settings, f"{prefix}_COOKIE_SECURE"):
        faults.append(f"{prefix}_COOKIE_SECURE is False")
    if getattr(settings, f"{prefix}_COOKIE_DOMAIN"):
        faults.append(f"{prefix}_COOKIE_DOMAIN is set")
    if getattr(settings, f"{prefix}_COOKIE_PATH") != "/":
        faults.append(f"{prefix}_COOKIE_PATH is not '/'")
    return faults


@register(Tags.security, deploy=True)
def check_cookie_prefixes(app_configs, **kwargs):
    errors = []
    cookies = ["SESSION"] + ([] if settings.CSRF_USE_SESSIONS else ["CSRF"])
    for prefix in cookies:
        setting = f"{prefix}_COOKIE_NAME"
        name = getattr(settings, setting)
        faults = _cookie_faults(prefix)
        if name.startswith("__Host-") and faults:
            errors.append(_copy(E030, setting, " and ".join(faults)))
        elif not name.startswith("__Host-") and not faults:
            errors.append(_copy_with_hint(W035, (setting, name), (name,)))
    return errors


@register(Tags.security, deploy=True)
def check_security_txt(app_configs, **kwargs):
    config = getattr(settings, "SECURITY_TXT", None) or {}
    if not config.get("CONTACT") or not config.get("EXPIRES"):
        return [_copy(W036, "SECURITY_TXT has no CONTACT or no EXPIRES")]
    if not _has_middleware("SecurityTxtMiddleware"):
        return [_copy(W036, "SecurityTxtMiddleware is not in MIDDLEWARE")]
    try:
        expires = datetime.date.fromisoformat(str(config["EXPIRES"]))
    except ValueError:
        return [_copy(E031, config["EXPIRES"])]
    days = (expires - datetime.date.today()).days
    if days <= 0:
        return [_copy(W037, "has expired", expires.isoformat())]
    if days <= SECURITY_TXT_WARN_DAYS:
        return [_copy(W037, f"expires in {days} days", expires.isoformat())]
    return []


def _copy_with_hint(message, args, hint_args):
    """Like _copy, for a message whose hint has details to fill in too."""
    return type(message)(message.msg % args, hint=message.hint % hint_args, id=message.id)
