"""`manage.py smoketest` against broken and hostile servers, and against bad arguments.

Each server here is a small asyncio server of this module's own on 127.0.0.1,
speaking TLS (a trustme certificate for example.com) on one port and plain HTTP
on another, that misbehaves in one way on every request: it cuts a body short,
sends a broken chunk, drips a byte a second, sends 50 MB or a gzip bomb,
redirects to itself, shows a self-signed certificate, or closes the connection.
The rendered project's smoketest must fail on one line per check, within a
bounded time (--timeout bounds a whole request, not each read) and bounded
memory (bodies are read up to a limit), with no traceback. Servers stop on
their own after a bounded time, whatever the client does.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from .support.processes import clean_env

DOMAIN = "example.com"
# smoketest's --timeout in these runs.
TIMEOUT = 3
# The admin login is two requests one after the other, each within TIMEOUT;
# Django's start and the evaluations take a few seconds more on a busy machine.
WALL_SECONDS = 2 * TIMEOUT + 12
# How long a hostile server keeps any one connection busy, whatever the client does.
SERVER_SECONDS = TIMEOUT + 4
BIG_BODY_BYTES = 50 * 1024 * 1024
BOMB_BYTES = 256 * 1024 * 1024
# Above what one smoketest process takes with bodies of a few kilobytes; reading
# a 50 MB body (a dozen requests at once) or inflating a bomb goes far past it.
MEMORY_MARGIN_MB = 64
SUMMARY = re.compile(
    r"smoketest: \d+ passed, \d+ warnings, \d+ failed \(\d+ requests in [\d.]+s, slowest [\d.]+s\)"
)


# Hostile behaviours: each gets the request's head and the two streams. --------------------


def head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def truncated_body(request, reader, writer):
    writer.write(head(Content_Type="text/html", Content_Length="100000") + b"<html><p>cut")


async def bad_chunk(request, reader, writer):
    writer.write(head(Transfer_Encoding="chunked") + b"zz\r\nhello\r\n0\r\n\r\n")


async def drip_body(request, reader, writer):
    writer.write(head(Content_Type="text/html", Content_Length="1000"))
    for _ in range(SERVER_SECONDS):
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(1)


async def drip_status_line(request, reader, writer):
    for byte in head()[:SERVER_SECONDS]:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1)


async def silent(request, reader, writer):
    await asyncio.sleep(SERVER_SECONDS)


async def big_body(request, reader, writer):
    writer.write(head(Content_Type="text/html", Content_Length=str(BIG_BODY_BYTES)))
    block = b"a" * (1024 * 1024)
    for _ in range(BIG_BODY_BYTES // len(block)):
        writer.write(block)
        await writer.drain()


def gzip_bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))]
    return b"".join(parts) + compressor.flush()


BOMB = gzip_bomb()


async def gzip_bomb_body(request, reader, writer):
    headers = {"Content_Type": "text/html", "Content_Encoding": "gzip"}
    writer.write(head(**headers, Content_Length=str(len(BOMB))) + BOMB)


async def broken_gzip(request, reader, writer):
    body = gzip.compress(b"<html>fine</html>")[:12] + b"not deflate at all"
    writer.write(head(Content_Encoding="gzip", Content_Length=str(len(body))) + body)


async def redirect_to_itself(request, reader, writer):
    scheme = "https" if writer.get_extra_info("sslcontext") else "http"
    target = request.split(b" ")[1].decode()
    host = re.search(rb"\r\nhost: ([^\r]+)", request, re.I).group(1).decode()
    writer.write(head("301 Moved Permanently", Location=f"{scheme}://{host}{target}",
                      Content_Length="0"))  # fmt: skip


async def closed_at_once(request, reader, writer):
    pass


async def reset(request, reader, writer):
    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def not_http(request, reader, writer):
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")


async def endless_headers(request, reader, writer):
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for number in range(20000):  # 1 MB of headers, far past any client's limit
        writer.write(f"X-Filler-{number}: {'a' * 40}\r\n".encode())
        await writer.drain()


async def ok(request, reader, writer):
    writer.write(head(Content_Type="text/html", Content_Length="2") + b"ok")


# A hostile server: TLS and plain HTTP, each connection bounded in time. ------------------------


@dataclass
class HostileServer:
    behaviour: object
    certificate: Path
    key: Path

    def __enter__(self) -> HostileServer:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, context: None)  # TLS errors are the point
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10), "the hostile server did not start"
        return self

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.certificate, self.key)
        self.https = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=tls)
        )
        self.http = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.https_port = self.https.sockets[0].getsockname()[1]
        self.http_port = self.http.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _connection(self, reader, writer):
        try:
            async with asyncio.timeout(SERVER_SECONDS + 2):
                request = b""
                if self.behaviour is not closed_at_once:
                    request = await reader.readuntil(b"\r\n\r\n")
                await self.behaviour(request, reader, writer)
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def __exit__(self, *exc) -> None:
        async def stop():
            for server in (self.https, self.http):
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile-tls")
    ca = trustme.CA()
    leaf = ca.issue_cert(DOMAIN, f"www.{DOMAIN}")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(paths["ca"])
    leaf.private_key_pem.write_to_path(paths["key"])
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(paths["cert"], append=True)
    # One no CA vouches for: issued by itself.
    paths["self_cert"], paths["self_key"] = folder / "self.pem", folder / "self.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN}",
         "-keyout", paths["self_key"], "-out", paths["self_cert"]],
        check=True, capture_output=True,
    )  # fmt: skip
    return paths


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


def run_measured(args: list, cwd: Path, limit: float) -> Run:
    """Run a command, killed after `limit` seconds, with its own peak memory (os.wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen([str(a) for a in args], cwd=cwd, env=clean_env(),
                                   stdout=out, stderr=err, stdin=subprocess.DEVNULL)  # fmt: skip
        killer = threading.Timer(limit, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(process.returncode, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"), seconds, usage.ru_maxrss / 1024)  # fmt: skip


def smoketest_against(server: HostileServer, project: Path, python: Path, ca: Path) -> Run:
    args = [python, "manage.py", "smoketest", f"https://{DOMAIN}:{server.https_port}",
            "--host", DOMAIN, "--http-port", server.http_port,
            "--resolve", f"{DOMAIN}:{server.https_port}:127.0.0.1",
            "--cacert", ca, "--timeout", TIMEOUT]  # fmt: skip
    return run_measured(args, project, limit=WALL_SECONDS * 3)


@pytest.fixture(scope="module")
def project(rendered) -> Path:
    return rendered()


@pytest.fixture(scope="module")
def baseline_rss_mb(project, project_python, certificates) -> float:
    """Peak memory of a smoketest whose every request gets a two-byte answer."""
    with HostileServer(ok, certificates["cert"], certificates["key"]) as server:
        run = smoketest_against(server, project, project_python("5.2"), certificates["ca"])
    assert run.returncode == 1 and SUMMARY.fullmatch(run.stdout.splitlines()[-1]), run.stdout
    return run.max_rss_mb


# (id, behaviour, TLS certificate, what the https-served line says, memory-bound case)
HOSTILE = [
    ("truncated-body", truncated_body, "cert",
     "broken HTTP: peer closed connection without sending complete message body", False),
    ("bad-chunk", bad_chunk, "cert", "broken HTTP: ", False),
    ("drip-one-byte-a-second", drip_body, "cert", f"no complete answer within {TIMEOUT}s", False),
    ("drip-the-status-line", drip_status_line, "cert", f"no complete answer within {TIMEOUT}s",
     False),
    ("never-answers", silent, "cert", f"no complete answer within {TIMEOUT}s", False),
    ("50-mb-body", big_body, "cert", "the body is over the 2 MB limit", True),
    ("gzip-bomb", gzip_bomb_body, "cert", "the body is over the 2 MB limit", True),
    ("broken-gzip", broken_gzip, "cert", "the compressed body is broken", False),
    ("redirect-to-itself", redirect_to_itself, "cert", f"301 -> https://{DOMAIN}:", False),
    ("self-signed-certificate", ok, "self", "certificate not trusted: self-signed certificate",
     False),
    ("closed-at-once", closed_at_once, "cert", "", False),
    ("connection-reset", reset, "cert", "", False),
    ("not-http", not_http, "cert", "broken HTTP: ", False),
    ("endless-headers", endless_headers, "cert", "broken HTTP: ", False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("behaviour", "tls", "expected", "memory_bound"),
    [pytest.param(*case[1:], id=case[0]) for case in HOSTILE],
)
def test_a_hostile_server_fails_checks_in_one_line_each_in_bounded_time_and_memory(
    project, project_python, certificates, baseline_rss_mb, behaviour, tls, expected, memory_bound
):
    cert, key = (certificates["cert"], certificates["key"]) if tls == "cert" else (
        certificates["self_cert"], certificates["self_key"])  # fmt: skip
    with HostileServer(behaviour, cert, key) as server:
        run = smoketest_against(server, project, project_python("5.2"), certificates["ca"])
    output = run.stdout + run.stderr
    assert "Traceback" not in output, output
    assert run.returncode == 1, output
    assert run.stderr.strip().startswith("CommandError: failed: ") and run.stderr.count("\n") == 1
    lines = run.stdout.rstrip("\n").splitlines()
    assert SUMMARY.fullmatch(lines[-1]), lines[-1]
    results = [line for line in lines[:-1] if line and not line.lstrip().startswith("fix: ")]
    assert all(re.match(r"(PASS|WARN|FAIL) ", line) for line in results), run.stdout
    assert all(len(line) < 300 for line in lines), run.stdout
    served = [line for line in results if line.split()[1] == "https-served"]
    assert len(served) == 1 and served[0].startswith("FAIL"), run.stdout
    assert expected in served[0], served[0]
    assert run.seconds < WALL_SECONDS, f"{run.seconds:.1f}s\n{run.stdout}"
    if memory_bound:
        assert run.max_rss_mb < baseline_rss_mb + MEMORY_MARGIN_MB, (
            f"{run.max_rss_mb:.0f} MB against {baseline_rss_mb:.0f} MB for small answers"
        )


# A Kubernetes ingress controller or Gateway: unknown hosts get its default backend's 404. ----

# What ingress-nginx's default backend (nginx's own page) answers a Host it routes nowhere.
DEFAULT_BACKEND_404 = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
# Django's 404 page with DEBUG off.
DJANGO_404 = (
    b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    b"  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    b"</body>\n</html>\n"
)


def request_host(request: bytes) -> str:
    found = re.search(rb"\r\nhost: ([^\r:]+)", request, re.I)
    return found.group(1).decode().lower() if found else ""


async def behind_a_default_backend(request, reader, writer):
    """The site's own host reaches the site (a 404 page for a path it lacks); any other
    Host gets the controller's 404 page."""
    path = request.split(b" ")[1]
    if request_host(request) != DOMAIN:
        body, status = DEFAULT_BACKEND_404, "404 Not Found"
    elif path.startswith(b"/shipshape-smoketest-"):
        body, status = DJANGO_404, "404 Not Found"
    else:
        body, status = b"<html>the site</html>", "200 OK"
    writer.write(head(status, Content_Type="text/html", Content_Length=str(len(body))) + body)


async def django_for_any_host(request, reader, writer):
    """ALLOWED_HOSTS = ["*"] behind the controller: every Host reaches the site."""
    path = request.split(b" ")[1]
    body, status = (DJANGO_404, "404 Not Found")
    if not path.startswith(b"/shipshape-smoketest-"):
        body, status = b"<html>the site</html>", "200 OK"
    writer.write(head(status, Content_Type="text/html", Content_Length=str(len(body))) + body)


def unknown_host_line(run: Run) -> str:
    (line,) = [line for line in run.stdout.splitlines() if line.split()[1:2] == ["unknown-host"]]
    return line


def test_a_default_backend_404_for_an_unknown_host_passes(project, project_python, certificates):
    """Ingress controllers and Gateways answer a Host they route nowhere with their own
    404 instead of closing: the unknown host never reached Django."""
    with HostileServer(
        behind_a_default_backend, certificates["cert"], certificates["key"]
    ) as server:
        run = smoketest_against(server, project, project_python("5.2"), certificates["ca"])
    line = unknown_host_line(run)
    assert line.startswith("PASS "), run.stdout
    assert "every probe: 404 from the front, not the site's own 404 page" in line, line


def test_the_sites_own_404_for_an_unknown_host_fails(project, project_python, certificates):
    """A 404 that is the site's own page means the unknown Host reached Django."""
    with HostileServer(django_for_any_host, certificates["cert"], certificates["key"]) as server:
        run = smoketest_against(server, project, project_python("5.2"), certificates["ca"])
    line = unknown_host_line(run)
    assert line.startswith("FAIL ") and "answered (" in line and "404" in line, run.stdout


# Weak security headers: each new check fails on its own line, with its fix. ------------------


def site_with(headers: dict[str, str], security_txt: tuple[str, str, str]):
    """A site that answers every page with these headers, and security.txt as given
    (status, Content-Type, body)."""

    async def behaviour(request, reader, writer):
        if request.split(b" ")[1].startswith(b"/.well-known/security.txt"):
            status, content_type, body = security_txt
            extra = {"Content_Type": content_type}
        else:
            status, body, extra = (
                "200 OK",
                "<html><p>a page</p></html>",
                {"Content_Type": "text/html"},
            )
        fields = {**extra, **{name.replace("-", "_"): value for name, value in headers.items()}}
        writer.write(head(status, **fields, Content_Length=str(len(body))) + body.encode())

    return behaviour


EXPIRED = "Contact: mailto:security@example.com\nExpires: 2020-01-01T00:00:00Z\n"
CURRENT = "Contact: mailto:security@example.com\nExpires: 2999-01-01T00:00:00Z\n"

# (id, headers, security.txt, {check: what its FAIL line says})
WEAK_HEADERS = [
    ("none-of-them", {"Set-Cookie": "csrftoken=x; Path=/; Secure"},
     ("404 Not Found", "text/html", "no"),
     {"csp": "Content-Security-Policy missing", "permissions-policy": "permissions-policy missing",
      "corp": "cross-origin-resource-policy missing",
      "cookie-prefix": "csrftoken has no __Host- prefix", "security-txt": "404, expected 200"}),
    ("report-only-and-cross-origin",
     {"Content-Security-Policy-Report-Only": "default-src 'self'", "Permissions-Policy": "camera=()",
      "Cross-Origin-Resource-Policy": "cross-origin",
      "Set-Cookie": "__Host-csrftoken=x; Domain=example.com; Path=/; Secure"},
     ("200 OK", "text/plain", EXPIRED),
     {"csp": "report-only, blocks nothing", "corp": "cross-origin-resource-policy: cross-origin",
      "cookie-prefix": "__Host-csrftoken is not Secure on path / without a domain",
      "security-txt": "expired: Contact: mailto:security@example.com"}),
    ("unsafe-policy",
     {"Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'",
      "Permissions-Policy": "camera=()", "Cross-Origin-Resource-Policy": "same-origin"},
     ("200 OK", "text/html", CURRENT),
     {"csp": "allows 'unsafe-inline' in script-src, 'unsafe-eval' in script-src",
      "security-txt": "Content-Type 'text/html', not text/plain"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "security_txt", "failures"),
    [pytest.param(*case[1:], id=case[0]) for case in WEAK_HEADERS],
)
def test_weak_security_headers_fail_their_checks_each_with_a_fix(
    project, project_python, certificates, headers, security_txt, failures
):
    behaviour = site_with(headers, security_txt)
    with HostileServer(behaviour, certificates["cert"], certificates["key"]) as server:
        run = smoketest_against(server, project, project_python("5.2"), certificates["ca"])
    assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr
    assert run.returncode == 1, run.stdout
    lines = run.stdout.splitlines()
    for check, detail in failures.items():
        [index] = [i for i, line in enumerate(lines) if line.split()[1:2] == [check]]
        assert lines[index].startswith("FAIL") and detail in lines[index], lines[index]
        assert lines[index + 1].lstrip().startswith("fix: "), lines[index : index + 2]
    passed = {line.split()[1] for line in lines if line.startswith("PASS")}
    new_checks = {"csp", "permissions-policy", "corp", "cookie-prefix", "security-txt"}
    assert passed & new_checks == new_checks - set(failures) - {"cookie-prefix"}, run.stdout


# Bad arguments: one line from the argument parser, exit status 2. ---------------------------

BAD_ARGUMENTS = [
    ("unclosed-ipv6-bracket", ["https://[::1"], "argument url: 'https://[::1' is not a URL"),
    ("port-over-65535", ["https://example.com:65536"], "argument url: 'https://example.com:65536' "
     "is not a URL (Port out of range 0-65535)"),
    ("plain-http", ["http://example.com"], "argument url: 'http://example.com' is not an https://"),
    ("empty-host", ["https://"], "argument url: 'https://' has no host"),
    ("empty-host-with-port", ["https://:8443/"], "argument url: 'https://:8443/' has no host"),
    ("timeout-zero", ["https://example.com", "--timeout", "0"], "argument --timeout: '0' is not"),
    ("timeout-negative", ["https://example.com", "--timeout=-1"], "argument --timeout: '-1' is not"),
    ("timeout-nan", ["https://example.com", "--timeout", "nan"], "argument --timeout: 'nan' is not"),
    ("timeout-inf", ["https://example.com", "--timeout", "inf"], "argument --timeout: 'inf' is not"),
    ("timeout-words", ["https://example.com", "--timeout", "soon"],
     "argument --timeout: 'soon' is not"),
    ("http-port-over-65535", ["https://example.com", "--http-port", "70000"],
     "argument --http-port: '70000' is not a port"),
    ("empty-extra-host", ["https://example.com", "--host", ""], "argument --host: '' is not a hostname"),
    ("resolve-without-address", ["https://example.com", "--resolve", "example.com:443:"],
     "argument --resolve: 'example.com:443:' is not HOST:PORT:ADDR"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"), [pytest.param(*case[1:], id=case[0]) for case in BAD_ARGUMENTS]
)
def test_a_bad_argument_gets_one_line_from_the_argument_parser(
    project, project_python, args, expected
):
    run = run_measured([project_python("5.2"), "manage.py", "smoketest", *args], project, limit=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"manage.py smoketest: error: {expected}"), lines[0]


def test_help_still_shows_the_usage(project, project_python):
    run = run_measured([project_python("5.2"), "manage.py", "smoketest", "--help"], project, 60)
    assert run.returncode == 0 and "usage: manage.py smoketest" in run.stdout
