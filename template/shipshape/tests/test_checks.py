"""Each deploy check fires on the one setting that breaks it, and on nothing else.

The checks run as `check --deploy` runs them (Django's run_checks with deployment
checks), on the test settings with one value overridden at a time.
"""

import secrets
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

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
