"""Each deploy check fires on the one setting that breaks it, and on nothing else.

The checks run as `check --deploy` runs them (Django's run_checks with deployment
checks), on the test settings with one value overridden at a time.
"""

import datetime
import secrets
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from shipshape import content_security_policy

NGINX_SITE = """
server {
    listen 443 ssl;
    server_name %(host)s;
    ssl_certificate /etc/ssl/site.pem;
    %(extra)s
    location ^~ /static/ {
        alias %(static)s/;
    }
    location / {
        proxy_pass http://127.0.0.1:8000;
    }
}
"""

CADDYFILE = """
{
\tadmin off
}

%(host)s {
\t%(extra)s
\thandle_path /static/* {
\t\troot * %(static)s
\t\tfile_server
\t}
\treverse_proxy 127.0.0.1:8000
}
"""


def shipshape_ids():
    return {
        message.id
        for message in run_checks(include_deployment_checks=True)
        if message.id.startswith("shipshape.")
    }


@pytest.fixture(autouse=True)
def deployed_values():
    """The values a deployment has where the test run differs.

    The test settings' key is a committed literal, which is exactly what W001
    reports, and the test runner adds 'testserver' to ALLOWED_HOSTS.
    """
    with override_settings(
        SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS=list(settings.PUBLIC_HOSTS)
    ):
        yield


def proxy_config(tmp_path: Path, kind: str, extra: str = "", static: str | None = None) -> dict:
    """SHIPSHAPE pointing at a small proxy config of this kind written for the test."""
    static = static or str(Path(settings.SHIPSHAPE["app_dir"]) / "staticfiles")
    template, name = (NGINX_SITE, "site.conf") if kind == "nginx" else (CADDYFILE, "Caddyfile")
    path = tmp_path / name
    path.write_text(template % {"host": settings.PUBLIC_HOSTS[0], "extra": extra, "static": static})
    return {**settings.SHIPSHAPE, "proxy": kind, "proxy_config": path}


def test_the_generated_settings_raise_none_of_the_checks():
    assert shipshape_ids() == set()


def test_the_env_example_placeholder_is_reported():
    committed = Path(settings.BASE_DIR, ".env.example").read_text()
    placeholder = committed.split("DJANGO_SECRET_KEY=", 1)[1].splitlines()[0]
    with override_settings(SECRET_KEY=placeholder):
        assert shipshape_ids() == {"shipshape.W001"}


def test_a_secret_key_from_git_history_is_reported(tmp_path):
    key = secrets.token_urlsafe(50)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    settings_file = tmp_path / "site" / "settings.py"
    settings_file.parent.mkdir()
    settings_file.write_text(f'SECRET_KEY = "{key}"\n')
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "key"], check=True)
    settings_file.write_text('SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]\n')
    subprocess.run([*git, "commit", "-q", "-am", "no key"], check=True)
    # A project whose repository is tmp_path, with STATIC_ROOT inside it as usual.
    project = {"BASE_DIR": tmp_path, "STATIC_ROOT": tmp_path / "staticfiles"}
    with override_settings(**project, SECRET_KEY=key):
        assert shipshape_ids() == {"shipshape.W001"}
    with override_settings(**project):
        assert shipshape_ids() == set()


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["*"], "shipshape.W002"),
        ([".example.com"], "shipshape.W003"),
        (["localhost"], "shipshape.W004"),
        (["127.0.0.1"], "shipshape.W004"),
        (["[::1]"], "shipshape.W004"),
        (["staging.old-name.example"], "shipshape.W005"),
    ],
)
def test_allowed_hosts_problems_are_reported(hosts, expected):
    with override_settings(ALLOWED_HOSTS=[*settings.PUBLIC_HOSTS, *hosts]):
        assert shipshape_ids() == {expected}


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://{host}", "shipshape.W006"),
        ("{host}", "shipshape.W007"),
        ("https://*.{host}", "shipshape.W008"),
        ("https://partner.example.org", "shipshape.W009"),
        ("https://{host}", "shipshape.I001"),
    ],
)
def test_csrf_trusted_origin_problems_are_reported(origin, expected):
    origin = origin.format(host=settings.PUBLIC_HOSTS[0])
    with override_settings(CSRF_TRUSTED_ORIGINS=[origin]):
        assert shipshape_ids() == {expected}


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_a_missing_proxy_ssl_header_behind_a_tls_proxy_is_reported(tmp_path, kind):
    with override_settings(SHIPSHAPE=proxy_config(tmp_path, kind)):
        assert shipshape_ids() == set()
        with override_settings(SECURE_PROXY_SSL_HEADER=None):
            assert shipshape_ids() == {"shipshape.W010"}


def test_a_missing_proxy_ssl_header_behind_a_load_balancer_is_reported():
    shipshape = {**settings.SHIPSHAPE, "proxy": "load_balancer", "proxy_config": None}
    with override_settings(SHIPSHAPE=shipshape, SECURE_PROXY_SSL_HEADER=None):
        assert shipshape_ids() == {"shipshape.W010"}


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("USE_X_FORWARDED_HOST", "shipshape.W011"), ("USE_X_FORWARDED_PORT", "shipshape.W012")],
)
def test_trusting_forwarded_host_or_port_is_reported(setting, expected):
    with override_settings(**{setting: True}):
        assert shipshape_ids() == {expected}


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        ("nginx", 'add_header Strict-Transport-Security "max-age=31536000" always;'),
        ("caddy", "header Strict-Transport-Security max-age=31536000"),
    ],
)
def test_hsts_from_both_the_proxy_and_django_is_reported(tmp_path, kind, header):
    with override_settings(SHIPSHAPE=proxy_config(tmp_path, kind, extra=header)):
        assert shipshape_ids() == {"shipshape.W013"}
        with override_settings(SECURE_HSTS_SECONDS=0):
            assert "shipshape.W013" not in shipshape_ids()


@pytest.mark.parametrize(
    ("kind", "comment"),
    [("nginx", "# Never: add_header Strict-Transport-Security"), ("caddy", "# no HSTS here")],
)
def test_a_comment_about_hsts_is_not_a_header(tmp_path, kind, comment):
    with override_settings(SHIPSHAPE=proxy_config(tmp_path, kind, extra=comment)):
        assert shipshape_ids() == set()


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_a_static_root_the_proxy_does_not_serve_is_reported(tmp_path, kind):
    with override_settings(SHIPSHAPE=proxy_config(tmp_path, kind, static="/var/www/elsewhere")):
        assert shipshape_ids() == {"shipshape.W014"}


@pytest.mark.parametrize("static", [None, "/var/www/elsewhere"], ids=["served", "elsewhere"])
def test_a_static_location_in_an_included_file_is_read(tmp_path, static):
    """nginx follows `include`, so the checks do: the location moved out is still seen."""
    shipshape = proxy_config(tmp_path, "nginx", static=static)
    site = shipshape["proxy_config"]
    text = site.read_text()
    location = text[text.index("    location ^~ /static/") : text.index("    location / {")]
    included = tmp_path / "static.conf"
    included.write_text(location)
    site.write_text(text.replace(location, f"    include {included};\n"))
    expected = {"shipshape.W014"} if static else set()
    with override_settings(SHIPSHAPE=shipshape):
        assert shipshape_ids() == expected


@pytest.mark.parametrize("static", [None, "/var/www/elsewhere"], ids=["served", "elsewhere"])
def test_without_caddy_the_caddyfile_is_read_by_the_fallback_which_says_so(
    tmp_path, monkeypatch, static
):
    monkeypatch.setattr("shipshape.proxy_config.which", lambda tool: None)
    shipshape = proxy_config(tmp_path, "caddy", static=static)
    with override_settings(SHIPSHAPE=shipshape):
        messages = [
            m for m in run_checks(include_deployment_checks=True) if m.id.startswith("shipshape.")
        ]
        with override_settings(SECURE_PROXY_SSL_HEADER=None):
            assert shipshape_ids() == {"shipshape.W010", *({"shipshape.W014"} if static else ())}
    assert {m.id for m in messages} == ({"shipshape.W014"} if static else set())
    for message in messages:
        assert "caddy is not installed here" in message.msg


@pytest.mark.parametrize(
    "config",
    [None, "server {\n    listen 80;\n", "server {\n    include /nonexistent/static.conf;\n}\n"],
    ids=["missing", "unbalanced", "missing-include"],
)
def test_a_proxy_config_that_cannot_be_read_is_reported(tmp_path, config):
    path = tmp_path / "site.conf"
    if config is not None:
        path.write_text(config)
    shipshape = {**settings.SHIPSHAPE, "proxy": "nginx", "proxy_config": path}
    with override_settings(SHIPSHAPE=shipshape):
        assert shipshape_ids() == {"shipshape.E001"}


# Mail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mail", "expected"),
    [
        ({"ADMINS": []}, {"shipshape.W016"}),
        ({"SERVER_EMAIL": "root@localhost"}, {"shipshape.W017"}),
        ({"SERVER_EMAIL": "django@localhost.localdomain"}, {"shipshape.W017"}),
        ({"DEFAULT_FROM_EMAIL": "webmaster@localhost"}, {"shipshape.W018"}),
        ({"DEFAULT_FROM_EMAIL": "My Site <webmaster@localhost>"}, {"shipshape.W018"}),
        # Errors mailed to nobody: where they would come from no longer matters.
        ({"ADMINS": [], "SERVER_EMAIL": "root@localhost"}, {"shipshape.W016"}),
        (
            {"SERVER_EMAIL": "errors@example.com", "DEFAULT_FROM_EMAIL": "Site <no@example.com>"},
            set(),
        ),
    ],
)
def test_error_mail_to_nobody_or_from_localhost_is_reported(mail, expected):
    with override_settings(**mail):
        assert shipshape_ids() == expected


# Security headers, cookies and security.txt: what a production settings file can drop.


def csp_settings(directives: dict | None) -> dict:
    """The CSP middleware's setting holding these directives, in its own shape."""
    policy = content_security_policy.configured()
    nested = policy.setting == "CONTENT_SECURITY_POLICY"
    value = {"DIRECTIVES": directives} if nested and directives else (directives or {})
    return {policy.setting: value}


def test_a_settings_file_without_a_content_security_policy_is_reported():
    policy = content_security_policy.configured()
    assert policy.middleware and policy.enforced, "the settings send a CSP"
    with override_settings(**csp_settings(None)):
        assert shipshape_ids() == {"shipshape.W030"}
    without = [name for name in settings.MIDDLEWARE if name != policy.middleware]
    with override_settings(MIDDLEWARE=without):
        assert shipshape_ids() == {"shipshape.W030"}


def test_a_report_only_policy_is_reported():
    policy = content_security_policy.configured()
    report_only = {policy.report_only_setting: csp_settings(policy.enforced)[policy.setting]}
    with override_settings(**csp_settings(None), **report_only):
        assert shipshape_ids() == {"shipshape.W031"}


@pytest.mark.parametrize("source", ["'unsafe-inline'", "'unsafe-eval'", "data:", "*"])
def test_an_unsafe_source_in_the_policy_is_reported(source):
    directives = dict(content_security_policy.configured().enforced)
    directives["script-src"] = [*directives["script-src"], source]
    with override_settings(**csp_settings(directives)):
        assert shipshape_ids() == {"shipshape.W032"}


def test_a_policy_without_script_src_is_judged_by_default_src():
    directives = dict(content_security_policy.configured().enforced)
    del directives["script-src"]
    directives["default-src"] = ["https:"]
    with override_settings(**csp_settings(directives)):
        messages = run_checks(include_deployment_checks=True)
    [message] = [m for m in messages if m.id == "shipshape.W032"]
    assert "https: in default-src" in message.msg


def test_dropped_permissions_policy_or_cross_origin_resource_policy_is_reported():
    with override_settings(PERMISSIONS_POLICY={}):
        assert shipshape_ids() == {"shipshape.W033"}
    for value in (None, "cross-origin"):
        with override_settings(SECURE_CROSS_ORIGIN_RESOURCE_POLICY=value):
            assert shipshape_ids() == {"shipshape.W034"}
    without = [m for m in settings.MIDDLEWARE if not m.endswith("SecurityHeadersMiddleware")]
    with override_settings(MIDDLEWARE=without):
        assert shipshape_ids() == {"shipshape.W033", "shipshape.W034"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"SESSION_COOKIE_NAME": "sessionid"}, {"shipshape.W035"}),
        ({"CSRF_COOKIE_NAME": "csrftoken"}, {"shipshape.W035"}),
        # A cookie shared with subdomains cannot have the prefix: no warning for its name.
        ({"SESSION_COOKIE_NAME": "sessionid", "SESSION_COOKIE_DOMAIN": ".example.com"}, set()),
        # The browser drops a __Host- cookie with a Domain, a path or without Secure.
        ({"SESSION_COOKIE_DOMAIN": ".example.com"}, {"shipshape.E030"}),
        ({"CSRF_COOKIE_PATH": "/admin/"}, {"shipshape.E030"}),
        ({"SESSION_COOKIE_SECURE": False}, {"shipshape.E030"}),
    ],
    ids=["session", "csrf", "shared-domain", "host-with-domain", "host-with-path", "insecure"],
)
def test_cookie_prefix_problems_are_reported(changes, expected):
    with override_settings(**changes):
        assert shipshape_ids() - {"shipshape.W001"} == expected


@pytest.mark.parametrize(
    ("expires", "expected", "words"),
    [
        (datetime.date.today() + datetime.timedelta(days=10), "shipshape.W037", "expires in 10"),
        (datetime.date.today() - datetime.timedelta(days=1), "shipshape.W037", "has expired"),
        ("next spring", "shipshape.E031", "not a date"),
    ],
    ids=["within-30-days", "expired", "not-a-date"],
)
def test_a_security_txt_near_or_past_its_expiry_is_reported(expires, expected, words):
    security_txt = {**settings.SECURITY_TXT, "EXPIRES": str(expires)}
    with override_settings(SECURITY_TXT=security_txt):
        messages = [m for m in run_checks(include_deployment_checks=True) if m.id == expected]
        assert shipshape_ids() == {expected}
    assert words in messages[0].msg


def test_security_txt_expiring_in_31_days_is_not_reported_yet():
    expires = datetime.date.today() + datetime.timedelta(days=31)
    with override_settings(SECURITY_TXT={**settings.SECURITY_TXT, "EXPIRES": str(expires)}):
        assert shipshape_ids() == set()


def test_a_settings_file_without_security_txt_is_reported():
    with override_settings(SECURITY_TXT={}):
        assert shipshape_ids() == {"shipshape.W036"}


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        ("nginx", 'add_header Permissions-Policy "camera=()" always;'),
        ("caddy", "header Cross-Origin-Resource-Policy same-origin"),
    ],
)
def test_a_security_header_from_both_the_proxy_and_django_is_reported(tmp_path, kind, header):
    with override_settings(SHIPSHAPE=proxy_config(tmp_path, kind, extra=header)):
        assert shipshape_ids() == {"shipshape.W038"}
        with override_settings(PERMISSIONS_POLICY={}, SECURE_CROSS_ORIGIN_RESOURCE_POLICY=None):
            assert "shipshape.W038" not in shipshape_ids()
