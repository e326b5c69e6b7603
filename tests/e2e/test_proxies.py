"""What a client sees of a generated project served through its real proxy over real TLS.

Each test sends requests to 127.0.0.1 as a browser would to the public site (SNI,
Host, certificates from a local test CA) and asserts on status, headers and body.
Tests shared by every proxy are parametrized over PROXIES; load_balancer runs
behind a test-only TLS front, so what that front does is not what they prove.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from ..support.client import DROPPED, cookie_header, log_in_to_admin, stylesheets
from .conftest import OWN_PROXIES, PROXIES

EVIL = "evil.example"
DEBUG_MARKERS = ("DEBUG = True", "Django tried these URL patterns", "Traceback")

every_proxy = pytest.mark.parametrize("served", PROXIES, indirect=True)
own_proxies = pytest.mark.parametrize("served", OWN_PROXIES, indirect=True)


def assert_not_served(send) -> None:
    """The request gets no answer at all, or Django's 400 at most: never a page."""
    try:
        response = send()
    except DROPPED:
        return
    assert response.status_code == 400, (response.status_code, response.headers, response.text)
    assert "Bad Request" in response.text
    assert "location" not in response.headers


# 1. Every configured host is served.


@every_proxy
def test_every_configured_host_is_served_over_https(served):
    stack, client = served
    for host in stack.hosts:
        response = client.get("/", host=host)
        assert response.status_code == 200, (host, response.status_code, stack.logs())
        assert "text/html" in response.headers["content-type"]


# 2. An unknown Host on the same address is never served.


@own_proxies
def test_unknown_host_on_https_is_dropped_by_the_proxy(served):
    stack, client = served
    with pytest.raises(DROPPED):
        client.get("/", host=EVIL, sni=stack.domain, check_hostname=False)


@every_proxy
def test_forged_host_under_valid_sni_is_never_served(served):
    stack, client = served
    assert_not_served(lambda: client.get("/", host=stack.domain, host_header=EVIL))
    assert_not_served(
        lambda: client.get("/", host=stack.domain, host_header=f"{EVIL}:{stack.https_port}")
    )


@pytest.mark.xdist_group("e2e-nginx")
def test_unknown_sni_gets_no_certificate_from_nginx(stack, client_for):
    served = stack("nginx")
    # The name check is off so that a certificate served for the wrong name would
    # be accepted here: nginx must refuse the handshake itself. (Caddy completes
    # the handshake with the site's certificate, then aborts: the test below.)
    with pytest.raises(httpx.ConnectError):
        client_for(served).get("/", host=EVIL, check_hostname=False)


@every_proxy
def test_unknown_host_is_never_served_whatever_the_sni(served):
    stack, client = served
    assert_not_served(lambda: client.get("/", host=EVIL, check_hostname=False))
    assert_not_served(lambda: client.get("/", host=EVIL, scheme="http"))


# 3. http:// redirects permanently to https:// on the same host and the public port.


@own_proxies
def test_plain_http_redirects_permanently_to_https_on_the_public_port(served):
    stack, client = served
    for host in stack.hosts:
        response = client.get("/some/path/?q=1", host=host, scheme="http")
        assert response.status_code == 301, (host, response.status_code, response.text)
        assert response.headers["location"] == stack.url("/some/path/?q=1", host=host)


@own_proxies
def test_unknown_host_on_http_is_never_redirected(served):
    stack, client = served
    with pytest.raises(DROPPED):
        client.get("/", host=EVIL, scheme="http")


@pytest.mark.xdist_group("e2e-nginx")
def test_acme_challenge_is_answered_from_the_webroot_by_nginx(stack, client_for):
    served = stack("nginx")
    webroot = served.project / "acme" / ".well-known" / "acme-challenge"
    webroot.mkdir(parents=True, exist_ok=True)
    (webroot / "token-123").write_text("token-123.key\n")
    for host in served.hosts:
        response = client_for(served).get(
            "/.well-known/acme-challenge/token-123", host=host, scheme="http"
        )
        assert response.status_code == 200, (host, response.status_code)
        assert response.text == "token-123.key\n"


@pytest.mark.xdist_group("e2e-load_balancer")
def test_plain_http_behind_load_balancer_is_redirected_by_django(stack, client_for):
    served = stack("load_balancer")
    client = client_for(served)
    # A browser sends the bare host (the front forwards it with X-Forwarded-Proto: http);
    # the redirect goes to the public HTTPS port, which is not 443 here.
    response = client.get("/some/path/?q=1", host=served.domain, scheme="http",
                          host_header=served.domain)  # fmt: skip
    assert response.status_code == 301, response.text
    assert response.headers["location"] == served.url("/some/path/?q=1")


# 4. Forged X-Forwarded-Proto and X-Forwarded-Host change nothing.

FORGED = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": EVIL}


@every_proxy
def test_forged_forwarded_headers_cause_no_redirect_loop(served):
    stack, client = served
    response = client.get("/", host=stack.domain, headers=FORGED)
    assert response.status_code == 200, (response.status_code, response.headers)


@every_proxy
def test_forged_forwarded_host_never_reaches_a_location(served):
    stack, client = served
    admin = stack.answers.get("admin_path", "admin/")
    response = client.get(f"/{admin}", host=stack.domain, headers=FORGED)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert EVIL not in location
    assert location.startswith(("/", stack.origin()))
    # Plain HTTP with forged headers still goes to the real host, over HTTPS.
    if stack.proxy != "load_balancer":
        plain = client.get("/x", host=stack.domain, scheme="http", headers=FORGED)
        assert plain.headers["location"] == stack.url("/x")


# 5. A missing page is a plain 404.


@every_proxy
def test_missing_page_is_404_without_debug_page(served):
    stack, client = served
    response = client.get("/no-such-page/", host=stack.domain)
    assert response.status_code == 404
    for marker in DEBUG_MARKERS:
        assert marker not in response.text


# 6. One HSTS header, and the admin's static files load.


@every_proxy
def test_exactly_one_hsts_header(served):
    stack, client = served
    for path in ("/", "/no-such-page/"):
        response = client.get(path, host=stack.domain)
        values = response.headers.get_list("strict-transport-security")
        assert len(values) == 1, (path, values)
        # Two years, the minimum of Mozilla's guidelines.
        assert "max-age=63072000" in values[0]


# What the scanners grade: each header once, from Django, on every page it renders.
SENT_ONCE = (
    "content-security-policy", "permissions-policy", "cross-origin-resource-policy",
    "cross-origin-opener-policy", "referrer-policy", "x-content-type-options",
)  # fmt: skip


def csp_directives(header: str) -> dict[str, list[str]]:
    return {words[0]: words[1:] for part in header.split(";") if (words := part.split())}


@every_proxy
def test_security_headers_are_sent_once_each_with_a_strict_policy(served):
    stack, client = served
    admin = stack.answers.get("admin_path", "admin/")
    for path in ("/", "/no-such-page/", f"/{admin}login/"):
        response = client.get(path, host=stack.domain)
        for name in SENT_ONCE:
            assert len(response.headers.get_list(name)) == 1, (path, name, response.headers)
        assert "content-security-policy-report-only" not in response.headers
        policy = csp_directives(response.headers["content-security-policy"])
        for directive in ("default-src", "object-src", "base-uri", "frame-ancestors"):
            assert policy[directive] == ["'none'"], (path, directive, policy)
        assert policy["form-action"] == ["'self'"]
        assert policy["script-src"][0] == "'self'" and policy["style-src"][0] == "'self'"
        assert not [s for v in policy.values() for s in v if "unsafe" in s or s == "*"], policy
        assert response.headers["cross-origin-resource-policy"] == "same-origin"
        permissions = response.headers["permissions-policy"]
        for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
            assert feature in permissions, permissions


@every_proxy
def test_session_and_csrf_cookies_carry_the_host_prefix(served):
    stack, client = served
    form, response = log_in_to_admin(client, stack, stack.origin())
    assert response.status_code == 302, response.text[:3000]
    cookies = {}
    for answer in (form, response):
        for header in answer.headers.get_list("set-cookie"):
            name, _, attributes = header.partition("=")
            cookies[name] = [a.strip().lower() for a in attributes.split(";")[1:]]
    assert set(cookies) == {"__Host-csrftoken", "__Host-sessionid"}, cookies
    for name, attributes in cookies.items():
        assert "secure" in attributes and "path=/" in attributes, (name, attributes)
        assert not [a for a in attributes if a.startswith("domain=")], (name, attributes)


@every_proxy
def test_security_txt_is_served_as_plain_text_for_the_sites_hosts_only(served):
    stack, client = served
    response = client.get("/.well-known/security.txt", host=stack.domain)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    contact, expires = response.text.splitlines()
    assert contact == f"Contact: mailto:security@{stack.domain}"
    day = time.strptime(expires, "Expires: %Y-%m-%dT00:00:00Z")
    days_ahead = (time.mktime(day) - time.time()) / 86400
    assert 300 < days_ahead <= 366, expires
    assert_not_served(lambda: client.get("/.well-known/security.txt", host=EVIL))


@every_proxy
def test_admin_static_files_load_with_long_cache_lifetimes(served):
    stack, client = served
    admin = stack.answers.get("admin_path", "admin/")
    page = client.get(f"/{admin}login/", host=stack.domain)
    assert page.status_code == 200
    sheets = stylesheets(page.text)
    assert sheets, page.text[:2000]
    for href in sheets:
        response = client.get(href, host=stack.domain)
        assert response.status_code == 200, href
        assert response.headers["content-type"].startswith("text/css")
        cache_control = response.headers["cache-control"]
        assert "immutable" in cache_control, (href, cache_control)
        max_age = int(cache_control.split("max-age=")[1].split(",")[0])
        assert max_age >= 31536000
        assert response.headers["x-content-type-options"] == "nosniff"


@own_proxies
def test_missing_static_file_is_404_from_the_proxy(served):
    stack, client = served
    response = client.get("/static/admin/css/no-such-file.css", host=stack.domain)
    assert response.status_code == 404
    assert "immutable" not in response.headers.get("cache-control", "")


# 7. Admin login as a browser sends it.


@every_proxy
def test_admin_login_as_a_browser_sends_it_reaches_the_admin_index(served):
    stack, client = served
    admin = stack.answers.get("admin_path", "admin/")
    form, response = log_in_to_admin(client, stack, stack.origin())
    assert response.status_code == 302, response.text[:3000]
    assert response.headers["location"] in (f"/{admin}", stack.origin() + f"/{admin}")
    index = client.get(f"/{admin}", host=stack.domain,
                       headers={"Cookie": cookie_header(form, response)})  # fmt: skip
    assert index.status_code == 200
    assert f"<strong>{stack.admin_username}</strong>" in index.text
    assert "Log out" in index.text


@every_proxy
def test_admin_login_from_a_foreign_origin_is_refused(served):
    stack, client = served
    _, response = log_in_to_admin(client, stack, f"https://{EVIL}")
    assert response.status_code == 403
    assert "__Host-sessionid" not in response.cookies


# 8. Load balancer health probes by IP address.


@pytest.mark.xdist_group("e2e-load_balancer")
def test_health_probe_with_an_ip_host_succeeds_on_health_path_only(stack):
    served = stack("load_balancer")
    health = served.answers.get("health_path", "/healthz")
    host, port = served.gunicorn_address
    with httpx.Client(timeout=10) as probe:
        ok = probe.get(f"http://{host}:{port}{health}", headers={"Host": "10.1.2.3"})
        refused = probe.get(f"http://{host}:{port}/", headers={"Host": "10.1.2.3"})
    assert ok.status_code == 200
    assert ok.text == "ok\n"
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("client_address", "scheme_django_sees"),
    [("127.0.0.1", "https"), ("127.0.0.2", "http")],
    ids=["from-the-load-balancer", "around-the-load-balancer"],
)
def test_only_the_load_balancer_can_claim_https(stack, client_address, scheme_django_sees):
    """X-Forwarded-Proto counts only from lb_trusted_cidrs, although Django trusts the header.

    A plain-HTTP request that claims HTTPS is served (200) when it comes from the
    load balancer's network, and redirected to HTTPS (Django saw http) when it
    reaches gunicorn from anywhere else.
    """
    served = stack("load_balancer")
    host, port = served.gunicorn_address
    transport = httpx.HTTPTransport(local_address=client_address)
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.get(
            f"http://{host}:{port}/",
            headers={"Host": served.domain, "X-Forwarded-Proto": "https"},
        )
    if scheme_django_sees == "https":
        assert response.status_code == 200
    else:
        assert response.status_code == 301
        assert response.headers["location"] == served.url("/")


# gunicorn's own settings, seen from outside.


@every_proxy
def test_gunicorn_access_log_records_the_client_address_the_proxy_saw(served):
    stack, client = served
    path = "/no-such-page/access-log-probe/"
    client.get(path, host=stack.domain)
    gunicorn = next(p for p in stack.processes if p.name == "gunicorn")
    # gunicorn writes the line once the response is sent: give it a moment.
    for _ in range(50):
        lines = [line for line in gunicorn.log.read_text().splitlines() if f"GET {path}" in line]
        if lines:
            break
        time.sleep(0.05)
    assert lines, gunicorn.tail()
    assert lines[-1].startswith("127.0.0.1 "), lines[-1]


@own_proxies
def test_gunicorn_control_socket_stays_in_the_project_run_folder(served):
    stack, _ = served
    run_folder = Path(stack.gunicorn_address).parent
    assert (run_folder / "gunicorn.ctl").is_socket()


@own_proxies
def test_uploaded_media_is_served_by_the_proxy_as_a_sandboxed_download(served):
    stack, client = served
    media = stack.project / "media"
    media.mkdir(exist_ok=True)
    (media / "upload.html").write_text("<script>alert(1)</script>\n")
    response = client.get("/media/upload.html", host=stack.domain)
    assert response.status_code == 200
    assert response.text == "<script>alert(1)</script>\n"
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
