"""What a person sees in Chromium on a generated project behind each proxy over HTTPS.

The browser opens the site by hostname on the stack's ports and trusts only the
stacks' certificate keys (see chromium.py). Every step fails on a 403, a server
error, Django's CSRF failure page or a debug page, and on any Content-Security-Policy
violation or console complaint about the security headers (browsing.py).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from ..support.stack import Stack
from .browsing import Browsing
from .chromium import EVIL
from .conftest import BROWSER_PROXIES

every_proxy = pytest.mark.parametrize("site", BROWSER_PROXIES, indirect=True)

HOME_PAGE_TEXT = "It works."
# Django's AdminUserCreationForm checks passwords against the project's validators.
NEW_USER_PASSWORD = "Browser-test-passphrase-4821"


def admin_url(site: Stack, path: str = "") -> str:
    return site.url("/" + site.answers.get("admin_path", "admin/") + path)


def log_in(site: Stack, browsing: Browsing) -> None:
    """Log in on the admin's login page as a person does, and land on the admin index."""
    page = browsing.page
    response = browsing.open(admin_url(site, "login/"))
    assert response.status == 200
    page.fill("#id_username", site.admin_username)
    page.fill("#id_password", site.admin_password)
    with page.expect_navigation():
        page.click("#login-form [type=submit]")
    browsing.assert_clean()
    assert page.url == admin_url(site)
    assert site.admin_username in page.locator("#user-tools strong").text_content()


def database_user(site: Stack, username: str, password: str) -> dict | None:
    """The user as stored in the project's database, asked through manage.py, not the page."""
    code = f"""
import json
from django.contrib.auth import get_user_model
user = get_user_model().objects.filter(username={username!r}).first()
print("USER", json.dumps(user and {{
    "active": user.is_active,
    "staff": user.is_staff,
    "usable_password": user.has_usable_password(),
    "password_matches": user.check_password({password!r}),
}}))
"""
    result = site.manage("shell", "-c", code)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("USER "))
    return json.loads(line.removeprefix("USER "))


@every_proxy
def test_admin_login_in_a_browser_shows_the_styled_admin_index(site, browsing):
    log_in(site, browsing)
    page = browsing.page
    stylesheets = [url for status, _, url in browsing.responses if url.endswith(".css")]
    assert stylesheets, browsing.responses
    assert all(status == 200 for status, _, url in browsing.responses if url in stylesheets)
    # The admin's stylesheet colours the header; unstyled, it would be transparent.
    header = page.locator("#header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert header not in ("rgba(0, 0, 0, 0)", "transparent"), header


@every_proxy
def test_user_added_through_the_admin_in_a_browser_is_saved_to_the_database(site, browsing):
    username = f"browser-{site.proxy}-{uuid.uuid4().hex[:8]}"
    log_in(site, browsing)
    page = browsing.page
    response = browsing.open(admin_url(site, "auth/user/add/"))
    assert response.status == 200
    page.fill("#id_username", username)
    # Django 5.1+ asks whether the user may log in with a password; older forms do not.
    usable = page.locator("input[name=usable_password][value=true]")
    if usable.count():
        usable.check()
    page.fill("#id_password1", NEW_USER_PASSWORD)
    page.fill("#id_password2", NEW_USER_PASSWORD)
    with page.expect_navigation():
        page.click("input[name=_save]")
    browsing.assert_clean()
    assert re.search(r"/auth/user/\d+/change/$", page.url), page.url
    assert username in page.locator(".messagelist .success").text_content()

    posts = [r for r in browsing.responses if r[1] == "POST"]
    assert [status for status, _, _ in posts] == [302, 302], posts
    browsing.assert_no_violations()
    assert database_user(site, username, NEW_USER_PASSWORD) == {
        "active": True,
        "staff": False,
        "usable_password": True,
        "password_matches": True,
    }


@every_proxy
def test_unknown_host_in_a_browser_never_shows_the_site(site, browsing):
    seen = {}
    # http first: an https answer (Django's 400) carries HSTS, which would upgrade http.
    for scheme in ("http", "https"):
        outcome = browsing.try_open(site.url("/", host=EVIL, scheme=scheme))
        if isinstance(outcome, str):
            # Chromium's own error page: the site never answered.
            seen[scheme] = outcome
            continue
        seen[scheme] = outcome.status
        html = browsing.page.content()
        assert "Bad Request (400)" in html
        assert HOME_PAGE_TEXT not in html
    if site.proxy == "load_balancer":
        # The load balancer forwards every Host; Django refuses it.
        assert seen == {"http": 400, "https": 400}
    else:
        # nginx and Caddy close the connection before any page (Chromium 156 shows
        # ERR_EMPTY_RESPONSE on http; on https ERR_SSL_UNRECOGNIZED_NAME_ALERT from
        # nginx, which refuses the handshake, and ERR_HTTP2_PROTOCOL_ERROR from Caddy).
        assert all(isinstance(value, str) for value in seen.values()), seen


@every_proxy
def test_plain_http_in_a_browser_ends_on_the_https_site(site, browsing):
    for host in site.hosts:
        # A first visit: HSTS from an earlier host (includeSubDomains) would skip the redirect.
        browsing.new_visitor()
        # Every stack runs on high ports; the redirect keeps the public HTTPS port.
        start, end = site.url("/", host=host, scheme="http"), site.url("/", host=host)
        response = browsing.open(start)
        assert browsing.page.url == end
        assert response.status == 200
        assert HOME_PAGE_TEXT in browsing.page.content()
        redirect = response.request.redirected_from
        assert redirect is not None and redirect.url == start
        assert redirect.response().status == 301


@every_proxy
def test_admin_date_and_time_widgets_work_under_the_content_security_policy(site, browsing):
    """The user change form's calendar and clock, opened and used as a person does."""
    log_in(site, browsing)
    page = browsing.page
    browsing.open(admin_url(site, "auth/user/"))
    page.click(f"#result_list a:text-is('{site.admin_username}')")
    page.wait_for_url(re.compile(r".*/auth/user/\d+/change/$"))
    browsing.assert_clean()

    page.fill("#id_date_joined_0", "")
    page.click("#calendarlink1")
    assert page.locator("#calendarbox1").is_visible()
    page.click("#calendarbox1 .calendar-shortcuts a >> nth=1")  # Today
    today = page.evaluate("() => new Date().toISOString().slice(0, 10)")
    page.fill("#id_date_joined_1", "")
    page.click("#clocklink1")
    assert page.locator("#clockbox1").is_visible()
    page.click("#clockbox1 .timelist a >> nth=0")  # Now
    assert page.input_value("#id_date_joined_0") == today
    assert re.fullmatch(r"\d\d:\d\d:\d\d", page.input_value("#id_date_joined_1"))
    with page.expect_navigation():
        page.click("input[name=_save]")
    browsing.assert_clean()
    assert "was changed successfully" in page.locator(".messagelist .success").text_content()


@every_proxy
def test_content_security_policy_blocks_an_injected_inline_script(site, browsing):
    """The policy is enforced, and the violations the other tests count are really seen."""
    response = browsing.open(site.url("/"))
    policy = response.headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy and "unsafe" not in policy, response.headers
    assert "content-security-policy-report-only" not in response.headers
    page = browsing.page
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.append(script);
        }"""
    )
    page.wait_for_function("() => document.readyState === 'complete'")
    page.wait_for_timeout(200)  # the violation event is dispatched as a task
    assert page.evaluate("() => window.injected") is None
    assert [v["directive"] for v in browsing.violations] == ["script-src-elem"], browsing.violations
    assert browsing.violations[0]["disposition"] == "enforce"
