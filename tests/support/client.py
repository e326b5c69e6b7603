"""An HTTP client that reaches a stack on 127.0.0.1 as a browser reaches the real site.

Each request opens its own connection to 127.0.0.1:<port> and sends the SNI and Host
of the hostname asked for, verifying the certificate against the stack's test CA.
One connection per request: a pooled connection would carry an earlier request's SNI.
"""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import httpx

# Errors that mean the server closed or refused the connection without an HTTP answer.
DROPPED = (httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError)


class Client:
    def __init__(self, ca_path: Path, http_port: int, https_port: int, timeout: float = 30):
        self.ca_path = ca_path
        self.http_port = http_port
        self.https_port = https_port
        self.timeout = timeout

    def tls_context(self, check_hostname: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        # Without the name check, the chain is still verified against the test CA:
        # used only to see what a server does with a name it has no certificate for.
        context.check_hostname = check_hostname
        return context

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str,
        scheme: str = "https",
        sni: str | None = None,
        host_header: str | None = None,
        headers: dict | list | None = None,
        data: dict | None = None,
        check_hostname: bool = True,
    ) -> httpx.Response:
        """Send one request; Host is `host:port` unless `host_header` says otherwise."""
        port = self.https_port if scheme == "https" else self.http_port
        sent = httpx.Headers(headers or {})
        sent["Host"] = host_header if host_header is not None else f"{host}:{port}"
        extensions = {"sni_hostname": sni or host} if scheme == "https" else {}
        verify = self.tls_context(check_hostname) if scheme == "https" else True
        transport = httpx.HTTPTransport(verify=verify, retries=0)
        with httpx.Client(transport=transport, timeout=self.timeout) as client:
            request = client.build_request(
                method, f"{scheme}://127.0.0.1:{port}{path}", headers=sent, data=data,
                extensions=extensions,
            )  # fmt: skip
            return client.send(request, follow_redirects=False)

    def raw(
        self, head: str, *, sni: str | None, scheme: str = "https", body: bytes = b""
    ) -> int | None:
        """Send a request exactly as written: see `raw_status`."""
        port = self.https_port if scheme == "https" else self.http_port
        tls = self.tls_context(check_hostname=False) if scheme == "https" else None
        return raw_status(("127.0.0.1", port), head, body=body, tls=tls, sni=sni,
                          timeout=self.timeout)  # fmt: skip

    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.request("POST", path, **kw)


def raw_status(
    address: tuple[str, int],
    head: str,
    *,
    body: bytes = b"",
    tls: ssl.SSLContext | None = None,
    sni: str | None = None,
    timeout: float = 30,
) -> int | None:
    """Send a request exactly as written (`head` without the blank line that ends it).

    For what an HTTP library will not send: an absolute-form request line, a NUL byte
    in the path, a body larger than the server takes. Returns the status code, or None
    when the server closed the connection without an answer. A server may answer and
    close before the whole body is sent: its answer is still read.
    """
    with socket.create_connection(address, timeout=timeout) as plain:
        try:
            conn = tls.wrap_socket(plain, server_hostname=sni) if tls else plain
        except (ConnectionError, ssl.SSLError):
            return None
        try:
            conn.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        except (ConnectionError, ssl.SSLError):
            pass
        try:
            answer = conn.recv(4096)
        except (ConnectionError, ssl.SSLError):
            return None
    if not answer:
        return None
    status = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    assert status, answer[:200]
    return int(status.group(1))


def cookie_header(*responses: httpx.Response) -> str:
    """A Cookie header from the Set-Cookie headers of earlier responses, later ones winning."""
    jar: dict[str, str] = {}
    for response in responses:
        jar.update(response.cookies.items())
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no csrfmiddlewaretoken in the form"
    return match.group(1)


def stylesheets(html: str) -> list[str]:
    return re.findall(r'<link rel="stylesheet"[^>]*href="([^"]+)"', html)


def log_in_to_admin(client: Client, stack, origin: str) -> tuple[httpx.Response, httpx.Response]:
    """Log in to the admin as a browser does: GET the form, POST it with the CSRF token,
    the cookie, Origin and Referer. Returns the form page and the POST's response."""
    admin = stack.answers.get("admin_path", "admin/")
    login = f"/{admin}login/?next=/{admin}"
    form = client.get(login, host=stack.domain)
    assert form.status_code == 200, form.text
    response = client.post(
        login,
        host=stack.domain,
        headers={
            "Cookie": cookie_header(form),
            "Origin": origin,
            "Referer": stack.origin() + login,
        },
        data={
            "csrfmiddlewaretoken": csrf_token(form.text),
            "username": stack.admin_username,
            "password": stack.admin_password,
            "next": f"/{admin}",
        },
    )
    return form, response
