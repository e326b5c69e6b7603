"""smoketest's parts: --resolve, the transport that honours it, and each evaluation."""

import asyncio
import datetime
import ssl
import zlib

import httpx
import pytest
from django.core.management import CommandError, call_command

from shipshape.content_security_policy import Policy
from shipshape.management.commands.smoketest import (
    FAIL,
    PASS,
    WARN,
    BoundedBody,
    Probe,
    UnreadableBody,
    evaluate_cookie,
    evaluate_cookie_prefix,
    evaluate_csp,
    evaluate_csrf_post,
    evaluate_forged_proto,
    evaluate_hsts,
    evaluate_not_found,
    evaluate_ready,
    evaluate_redirect,
    evaluate_security_txt,
    evaluate_trace,
    evaluate_unknown_host,
)
from shipshape.transport import Resolver, ResolvingTransport, parse_resolve


def probe(status=200, headers=None, text="") -> Probe:
    return Probe(httpx.Response(status, headers=headers or [], text=text), None, 0.01)


DROPPED = Probe(None, "Server disconnected without sending a response.", 0.01)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Example.com:443:203.0.113.7", ("example.com", 443, "203.0.113.7")),
        ("example.com:8443:[2001:db8::1]", ("example.com", 8443, "2001:db8::1")),
        ("example.com:80:2001:db8::1", ("example.com", 80, "2001:db8::1")),
    ],
)
def test_resolve_takes_curls_host_port_address(value, expected):
    assert parse_resolve(value) == expected


@pytest.mark.parametrize("value", ["example.com", "example.com:https:1.2.3.4", ":443:1.2.3.4"])
def test_a_malformed_resolve_is_refused(value):
    with pytest.raises(ValueError, match="HOST:PORT:ADDR"):
        parse_resolve(value)


def test_the_command_refuses_a_malformed_resolve():
    with pytest.raises(CommandError, match="--resolve"):
        call_command("smoketest", "https://example.com", "--resolve", "nonsense")


@pytest.mark.parametrize("content", [None, "not a certificate"], ids=["missing", "not-pem"])
def test_the_command_refuses_an_unreadable_cacert(tmp_path, content):
    cacert = tmp_path / "ca.pem"
    if content is not None:
        cacert.write_text(content)
    with pytest.raises(CommandError, match="--cacert .* cannot be read as PEM certificates"):
        call_command("smoketest", "https://example.com", "--cacert", str(cacert))


def test_the_resolver_covers_other_ports_and_aliases():
    resolver = Resolver([("example.com", 443, "10.0.0.1"), ("www.example.com", 8443, "10.0.0.2")])
    resolver.alias("unknown.invalid", "example.com")
    assert resolver.address("example.com", 443) == "10.0.0.1"
    assert resolver.address("EXAMPLE.com", 80) == "10.0.0.1"
    assert resolver.address("unknown.invalid", 443) == "10.0.0.1"
    assert resolver.address("other.example", 443) == "other.example"


def test_the_transport_connects_to_the_resolved_address_but_keeps_the_host():
    """A real socket on 127.0.0.1 receives the request for a name that resolves nowhere."""
    received = []

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        received.append(head.decode())
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def scenario():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        resolver = Resolver([("site.shipshape.invalid", port, "127.0.0.1")])
        transport = ResolvingTransport(resolver, ssl.create_default_context())
        async with server, httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"http://site.shipshape.invalid:{port}/path")
        return response, port

    response, port = asyncio.run(scenario())
    assert response.status_code == 204
    assert received[0].startswith("GET /path HTTP/1.1")
    assert f"Host: site.shipshape.invalid:{port}" in received[0]


def test_hsts_must_be_sent_exactly_once_with_the_expected_max_age():
    once = [("Strict-Transport-Security", "max-age=31536000; includeSubDomains")]
    assert evaluate_hsts("h", probe(headers=once), 31536000).status == PASS
    assert evaluate_hsts("h", probe(headers=once * 2), 31536000).status == FAIL
    assert evaluate_hsts("h", probe(headers=once), 3600).status == FAIL
    assert evaluate_hsts("h", probe(), 31536000).status == FAIL
    assert evaluate_hsts("h", probe(), 0).status == PASS


@pytest.mark.parametrize(
    "page",
    [
        "<code>DEBUG = True</code> in your Django settings file",
        "Using the URLconf, Django tried these URL patterns, in this order",
        "Traceback (most recent call last)",
    ],
)
def test_a_debug_page_fails_the_not_found_check(page):
    assert evaluate_not_found("h", probe(404, text=page)).status == FAIL


def test_a_plain_404_passes_and_anything_else_fails():
    assert evaluate_not_found("h", probe(404, text="<title>Not Found</title>")).status == PASS
    assert evaluate_not_found("h", probe(200)).status == FAIL


def test_redirects_must_be_permanent_and_to_the_same_host_over_https():
    target = "https://example.com/x?y=1"
    assert evaluate_redirect("h", probe(301, [("Location", target)]), target).status == PASS
    assert evaluate_redirect("h", probe(308, [("Location", target)]), target).status == PASS
    assert evaluate_redirect("h", probe(302, [("Location", target)]), target).status == FAIL
    other = [("Location", "https://example.com:80/x?y=1")]
    assert evaluate_redirect("h", probe(301, other), target).status == FAIL
    assert evaluate_redirect("h", probe(200), target).status == FAIL


def test_an_unknown_host_must_be_dropped_or_refused_never_served():
    refused = {"a": DROPPED, "b": probe(400), "c": probe(421)}
    assert evaluate_unknown_host(refused).status == PASS
    assert evaluate_unknown_host({**refused, "health": probe(200, text="ok")}).status == FAIL


def test_a_404_for_an_unknown_host_passes_only_when_it_is_not_the_sites_own():
    """An ingress controller's default backend answers 404; Django's own 404 page for
    the same path means the unknown Host reached Django."""
    own = probe(404, text="<title>Not Found</title>")
    front = {"https": probe(404, text="default backend - 404"), "sni": DROPPED}
    passed = evaluate_unknown_host(front, own)
    assert passed.status == PASS and "404 from the front" in passed.detail
    django = {"https": probe(404, text="<title>Not Found</title>"), "sni": DROPPED}
    assert evaluate_unknown_host(django, own).status == FAIL
    # Without the site's own page to compare with, a 404 proves nothing.
    assert evaluate_unknown_host(front).status == FAIL
    assert evaluate_unknown_host(front, DROPPED).status == FAIL


def test_ready_passes_on_ok_and_fails_with_the_reason_the_site_gives():
    assert evaluate_ready("h", probe(200, text="ok\n")).status == PASS
    not_ready = evaluate_ready("h", probe(503, text="migrations\n"))
    assert not_ready.status == FAIL and not_ready.detail == "503 migrations"
    assert "run migrate" in not_ready.fix
    assert evaluate_ready("h", probe(200, text="<html>a page</html>")).status == FAIL
    assert evaluate_ready("h", DROPPED).status == FAIL


def test_cookie_flags_are_read_from_set_cookie():
    secure = [("Set-Cookie", "sessionid=abc; HttpOnly; Path=/; SameSite=Lax; Secure")]
    plain = [("Set-Cookie", "sessionid=abc; Path=/; Secure")]
    assert (
        evaluate_cookie("session-cookie", "h", probe(302, secure), "sessionid", True).status == PASS
    )
    assert (
        evaluate_cookie("session-cookie", "h", probe(302, plain), "sessionid", True).status == FAIL
    )
    assert evaluate_cookie("csrf-cookie", "h", probe(200, plain), "csrftoken", False).status == FAIL


def test_a_forged_proto_header_must_change_nothing():
    baseline = probe(200)
    assert evaluate_forged_proto("h", baseline, probe(200)).status == PASS
    loop = probe(301, [("Location", "https://example.com/")])
    assert evaluate_forged_proto("h", baseline, loop).status == FAIL


def test_a_csrf_post_refused_with_403_fails():
    assert evaluate_csrf_post("h", probe(200), logged_in=False).status == PASS
    assert evaluate_csrf_post("h", probe(302), logged_in=True).status == PASS
    refused = probe(403, text="CSRF verification failed. Request aborted.")
    assert evaluate_csrf_post("h", refused, logged_in=False).status == FAIL


def test_trace_must_be_refused():
    assert evaluate_trace("h", probe(405)).status == PASS
    assert evaluate_trace("h", DROPPED).status == PASS
    assert evaluate_trace("h", probe(200, text="TRACE / HTTP/1.1")).status == FAIL
    assert evaluate_trace("h", probe(404)).status == WARN


def test_a_gzip_bomb_is_refused_at_the_limit_not_inflated_whole():
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = compressor.compress(bytes(64 * 1024 * 1024)) + compressor.flush()
    body = BoundedBody("gzip", 1024 * 1024)
    with pytest.raises(UnreadableBody, match="over the 1 MB limit"):
        body.feed(bomb)
    assert body.size <= 1024 * 1024 + 1


def test_a_body_within_the_limit_is_decoded_once():
    body = BoundedBody("gzip", 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body.feed(compressor.compress(b"<p>ok</p>") + compressor.flush())
    assert body.content() == b"<p>ok</p>"


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (["https://[::1"], "url"),
        (["https://example.com:65536"], "url"),
        (["https://"], "url"),
        (["https://example.com", "--timeout", "nan"], "--timeout"),
        (["https://example.com", "--timeout", "0"], "--timeout"),
        (["https://example.com", "--http-port", "65536"], "--http-port"),
    ],
)
def test_a_bad_argument_is_refused_by_the_parser(args, argument):
    with pytest.raises(CommandError, match=f"^Error: argument {argument}: "):
        call_command("smoketest", *args)


STRICT = "default-src 'none'; script-src 'self'; object-src 'none'; base-uri 'none'"
ENFORCING = Policy("csp", "SECURE_CSP", enforced={"default-src": ["'none'"]})
REPORTING = Policy("csp", "SECURE_CSP", report_only={"default-src": ["'none'"]})


def test_the_csp_must_be_sent_enforced_and_without_unsafe_sources():
    csp = [("Content-Security-Policy", STRICT)]
    assert evaluate_csp("h", probe(headers=csp), ENFORCING).status == PASS
    assert evaluate_csp("h", probe(), ENFORCING).status == FAIL
    unsafe = [("Content-Security-Policy", STRICT + "; style-src 'self' 'unsafe-inline'")]
    failed = evaluate_csp("h", probe(headers=unsafe), ENFORCING)
    assert failed.status == FAIL and "'unsafe-inline' in style-src" in failed.detail
    assert "nonce" in failed.fix
    report_only = [("Content-Security-Policy-Report-Only", STRICT)]
    assert evaluate_csp("h", probe(headers=report_only), ENFORCING).status == FAIL
    # Report-only because the settings say so (the csp_report_only answer): a warning.
    warned = evaluate_csp("h", probe(headers=report_only), REPORTING)
    assert warned.status == WARN and "SECURE_CSP" in warned.fix


def test_every_cookie_must_carry_the_host_prefix():
    good = [("Set-Cookie", "__Host-csrftoken=x; Path=/; Secure; SameSite=Lax")]
    assert evaluate_cookie_prefix("h", [probe(headers=good)]).status == PASS
    bare = [("Set-Cookie", "csrftoken=x; Path=/; Secure")]
    failed = evaluate_cookie_prefix("h", [probe(headers=bare)])
    assert failed.status == FAIL and "csrftoken has no __Host- prefix" in failed.detail
    domain = [("Set-Cookie", "__Host-sessionid=x; Domain=example.com; Path=/; Secure")]
    assert evaluate_cookie_prefix("h", [probe(headers=domain)]).status == FAIL
    assert evaluate_cookie_prefix("h", [probe(), DROPPED]).status == WARN


def test_security_txt_must_be_plain_text_with_a_contact_and_a_future_expiry():
    today = datetime.date(2027, 1, 1)
    text = "Contact: mailto:security@example.com\nExpires: %sT00:00:00Z\n"
    plain = [("Content-Type", "text/plain; charset=utf-8")]

    def judged(expires, headers=plain, status=200):
        return evaluate_security_txt("h", probe(status, headers, text % expires), today)

    assert judged("2027-06-01").status == PASS
    assert judged("2027-01-20").status == WARN
    assert judged("2026-12-31").status == FAIL
    assert judged("2027-06-01", headers=[("Content-Type", "text/html")]).status == FAIL
    assert judged("2027-06-01", status=404).status == FAIL
    assert judged("soon").status == FAIL
