"""Load from wrk against loopback, and the curl request that checks each URL first."""

from __future__ import annotations

import os
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

    def run(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        duration: int | None = None,
        connections: int | None = None,
    ) -> str:
        """wrk's whole report for one run (with its latency distribution)."""
        seconds = duration or self.duration
        wrk = ["wrk", "-t1", f"-c{connections or self.connections}", f"-d{seconds}s"]
        wrk += ["--timeout", "5s", "--latency"]
        for name, value in (headers or {}).items():
            wrk += ["-H", f"{name}: {value}"]
        wrk.append(url)
        inner = f"mount --bind {self.hosts_file} /etc/hosts && exec {shlex.join(wrk)}"
        done = subprocess.run(
            ["unshare", "--mount", "--", *pinned(), "sh", "-c", inner],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 30,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0 or "Requests/sec:" not in output:
            raise RuntimeError(f"wrk failed for {url}:\n{output}")
        return output

    def requests_per_second(
        self, url: str, headers: dict[str, str] | None = None, duration: int | None = None
    ) -> float:
        """Requests per second; any error or non-2xx/3xx answer fails the run."""
        output = self.run(url, headers, duration)
        for problem in ("Non-2xx or 3xx responses", "Socket errors"):
            if problem in output:
                raise RuntimeError(f"wrk saw errors for {url}:\n{output}")
        return parse_rps(output)

    def cost(self, url: str, server_pid: int) -> dict:
        """Requests per second, and the server's CPU time per request, from one run.

        The CPU time of the server's process tree (an nginx master and its workers, or
        Caddy's one process) over the run, divided by the requests wrk completed: what a
        config costs, which other work on the machine barely moves, unlike throughput.
        """
        before = tree_cpu_seconds(server_pid)
        output = self.run(url)
        spent = tree_cpu_seconds(server_pid) - before
        for problem in ("Non-2xx or 3xx responses", "Socket errors"):
            if problem in output:
                raise RuntimeError(f"wrk saw errors for {url}:\n{output}")
        requests = int(re.search(r"(\d+) requests in", output).group(1))
        return {"rps": parse_rps(output), "cpu_us_per_request": spent / requests * 1e6}

    def latency(self, url: str, connections: int, server_pids: list[int] = ()) -> dict:
        """Requests per second, p50 and p99 (ms), and the errors wrk counted, if any.

        With `server_pids`, also the CPU time those processes and their descendants
        spent per completed request. Errors are recorded
        rather than raised: a peer that times out under 256 connections is a
        result, not a broken benchmark.
        """
        before = sum(tree_cpu_seconds(pid) for pid in server_pids)
        output = self.run(url, connections=connections)
        spent = sum(tree_cpu_seconds(pid) for pid in server_pids) - before
        completed = int(re.search(r"(\d+) requests in", output).group(1))
        # When nothing completed, the run's CPU time counts as one request's.
        cpu = spent / max(completed, 1) * 1e6 if server_pids else None
        errors = [
            line.strip()
            for line in output.splitlines()
            if "Socket errors" in line or "Non-2xx" in line
        ]
        if completed == 0:
            # Nothing came back within the run: every request waited at least that long.
            waited = self.duration * 1000.0
            errors.append(f"no request completed in {self.duration} s")
            return {"rps": 0.0, "p50_ms": waited, "p99_ms": waited, "errors": errors,
                    "cpu_us_per_request": cpu}  # fmt: skip
        return {
            "rps": parse_rps(output),
            "p50_ms": percentile_ms(output, "50%"),
            "p99_ms": percentile_ms(output, "99%"),
            "errors": errors,
            "cpu_us_per_request": cpu,
        }


def pinned() -> list[str]:
    """wrk and the slow clients run on the last usable CPU, always the same one.

    The servers are left to the scheduler; pinning the load generator keeps it
    from migrating between runs, so both sides of a ratio meet the same client.
    """
    cpus = sorted(os.sched_getaffinity(0))
    return ["taskset", "-c", str(cpus[-1])] if len(cpus) > 1 else []


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of `pid` and its living descendants, from /proc."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += times.get(current, 0.0)
        pending += children.get(current, [])
    return total


def parse_rps(output: str) -> float:
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def percentile_ms(output: str, percentile: str) -> float:
    """One line of wrk's --latency distribution ("99%   12.34ms"), in milliseconds."""
    found = re.search(rf"^\s*{re.escape(percentile)}\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    if not found:
        raise RuntimeError(f"no {percentile} latency in wrk's output:\n{output}")
    return float(found.group(1)) * UNITS_MS[found.group(2)]


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
