"""Load from wrk against loopback, and the curl request that checks each URL first."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.stack import Stack


class Load:
    """wrk against loopback, bounded in time and connections.

    wrk takes the TLS server name and the Host header from the URL and resolves
    names through /etc/hosts; it runs in a private mount namespace where a hosts
    file of our own is bound over /etc/hosts, for that process only.
    """

    def __init__(self, workdir: Path, hosts: list[str], duration: int, connections: int):
        self.hosts_file = workdir / "hosts"
        self.hosts_file.write_text(f"127.0.0.1 localhost {' '.join(hosts)}\n")
        self.duration = duration
        self.connections = connections

    def requests_per_second(
        self, url: str, headers: dict[str, str] | None = None, duration: int | None = None
    ) -> float:
        wrk = [
            "wrk",
            "-t1",
            f"-c{self.connections}",
            f"-d{duration or self.duration}s",
            "--timeout",
            "5s",
        ]
        for name, value in (headers or {}).items():
            wrk += ["-H", f"{name}: {value}"]
        wrk.append(url)
        inner = f"mount --bind {self.hosts_file} /etc/hosts && exec {shlex.join(wrk)}"
        done = subprocess.run(
            ["unshare", "--mount", "--", "sh", "-c", inner],
            capture_output=True,
            text=True,
            check=False,
            timeout=(duration or self.duration) + 30,
        )
        output = done.stdout + done.stderr
        found = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if done.returncode != 0 or not found:
            raise RuntimeError(f"wrk failed for {url}:\n{output}")
        for problem in ("Non-2xx or 3xx responses", "Socket errors"):
            if problem in output:
                raise RuntimeError(f"wrk saw errors for {url}:\n{output}")
        return float(found.group(1))


def expect_status(url: str, stack: Stack, status: int, headers: dict | None = None) -> None:
    """One request with curl first: the load must hit the page we mean, not a redirect."""
    command = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        str(stack.ca_path),
        "--max-time",
        "60",
    ]
    parts = urlsplit(url)
    if parts.scheme == "https":
        command += ["--resolve", f"{parts.hostname}:{parts.port}:127.0.0.1"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    if done.stdout.strip() != str(status):
        raise RuntimeError(
            f"{url} answered {done.stdout.strip()} ({done.stderr.strip()}), "
            f"expected {status}\n{stack.logs()}"
        )
