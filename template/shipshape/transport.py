"""An httpx transport that connects where `--resolve` says, like curl's option.

`--resolve example.com:443:203.0.113.7` tests a server before DNS points at it:
the TCP connection goes to 203.0.113.7, while the TLS handshake still sends
example.com as SNI and the request still carries `Host: example.com`, so the
server sees exactly what a browser would send. httpx has no such option, and
its transports only take a local address, so this wraps httpcore's connection
pool with a network backend that swaps the address at connect time. Everything
above the socket, TLS included, is httpcore's own.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable

import httpcore
import httpx


def parse_resolve(value: str) -> tuple[str, int, str]:
    """HOST:PORT:ADDR as curl takes it; ADDR may be an IPv6 address, with or without brackets."""
    try:
        host, port, address = value.split(":", 2)
        number = int(port)
    except ValueError:
        raise ValueError(f"'{value}' is not HOST:PORT:ADDR") from None
    address = address.strip("[]")
    if not host or not address or not 0 < number < 65536:
        raise ValueError(f"'{value}' is not HOST:PORT:ADDR")
    return host.lower(), number, address


class Resolver:
    """Where to connect for a host and port: --resolve entries first, then the name itself.

    An entry for a host applies to its other ports too, so one --resolve covers
    both the http:// and the https:// checks. `alias` sends a made-up name (the
    smoke test's unknown host) to wherever a real one goes.
    """

    def __init__(self, entries: Iterable[tuple[str, int, str]] = ()):
        self.exact = {(host, port): address for host, port, address in entries}
        self.any_port = {host: address for (host, _), address in self.exact.items()}
        self.aliases: dict[str, str] = {}

    def alias(self, name: str, host: str) -> None:
        self.aliases[name.lower()] = host.lower()

    def address(self, host: str, port: int) -> str:
        host = host.lower()
        host = self.aliases.get(host, host)
        return self.exact.get((host, port)) or self.any_port.get(host) or host


class ResolvingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, resolver: Resolver):
        self.resolver = resolver
        self.backend = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return await self.backend.connect_tcp(
            self.resolver.address(host, port),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return await self.backend.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream):
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self.stream:
                yield part
        except httpcore.TimeoutException as exc:
            raise httpx.ReadTimeout(str(exc)) from exc
        except httpcore.NetworkError as exc:
            raise httpx.ReadError(str(exc)) from exc
        # A body cut short or a broken chunk: the server's fault, told apart from a timeout.
        except httpcore.ProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc

    async def aclose(self) -> None:
        await self.stream.aclose()


class ResolvingTransport(httpx.AsyncBaseTransport):
    """httpx.AsyncHTTPTransport's request handling on a pool that uses ResolvingBackend."""

    def __init__(self, resolver: Resolver, ssl_context: ssl.SSLContext):
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            network_backend=ResolvingBackend(resolver),
            max_connections=50,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self.pool.handle_async_request(core_request)
        except httpcore.ConnectTimeout as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except httpcore.TimeoutException as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except httpcore.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except httpcore.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        except httpcore.NetworkError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()
