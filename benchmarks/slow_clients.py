"""Slow clients: connections that trickle a request and never finish it (loopback only).

    python -m benchmarks.slow_clients HOST PORT CA_FILE COUNT SECONDS

Opens COUNT TLS connections to 127.0.0.1:PORT (SNI and Host: HOST), sends a
request line, then one more header line every second, and never the blank line
that ends the request. A connection the server closes is opened again, so COUNT
are held for SECONDS; then every one is closed and the process exits. It prints
"ready" once all COUNT are open. Bounded in count and time, and it can reach
nothing but loopback.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time

TRICKLE_INTERVAL = 1.0


async def hold(host: str, port: int, context: ssl.SSLContext, until: float, opened) -> None:
    first = True
    while time.monotonic() < until:
        try:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname=host
            )
        except OSError:
            await asyncio.sleep(0.1)
            continue
        if first:
            opened()
            first = False
        try:
            writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
            line = 0
            while time.monotonic() < until and not writer.is_closing():
                await writer.drain()
                await asyncio.sleep(TRICKLE_INTERVAL)
                writer.write(f"X-Slow-{line}: {line}\r\n".encode())
                line += 1
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def main(host: str, port: int, ca: str, count: int, seconds: float) -> None:
    context = ssl.create_default_context(cafile=ca)
    until = time.monotonic() + seconds
    remaining = count

    def opened() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            print("ready", flush=True)

    await asyncio.gather(*(hold(host, port, context, until, opened) for _ in range(count)))


if __name__ == "__main__":
    host, port, ca, count, seconds = sys.argv[1:6]
    if int(count) > 500 or float(seconds) > 120:
        sys.exit("slow_clients: at most 500 connections for at most 120 s")
    asyncio.run(main(host, int(port), ca, int(count), float(seconds)))
