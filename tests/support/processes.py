"""Commands and servers run for a generated project, in an environment it decides.

The environment of the machine running the tests may hold Django's variables
(DJANGO_SETTINGS_MODULE, DJANGO_SECRET_KEY, DATABASE_URL, ...): they are dropped,
so that only the project's .env and what a test passes count.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Django's variables, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return {**base, **extra}


def run(
    args: list, cwd: Path, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run a command in a generated project with a clean environment, capturing output."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServerFailed(RuntimeError):
    """A server did not come up; the message carries the end of its log."""


@dataclass
class Process:
    """A server process whose output goes to a log file."""

    name: str
    popen: subprocess.Popen
    log: Path
    stop_signal: int = signal.SIGTERM

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log ({self.log}) ---\n{text[-chars:]}"

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise ServerFailed(f"{self.name} exited with {self.popen.returncode}\n{self.tail()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def start_process(name: str, args: list, cwd: Path, env: dict, log: Path, **kw) -> Process:
    """Start a server in a session of its own, its output appended to `log`."""
    handle = open(log, "ab")
    try:
        popen = subprocess.Popen(
            [str(a) for a in args], cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    finally:
        handle.close()
    return Process(name, popen, log, **kw)


def wait_until(ready: Callable[[], bool], processes: list[Process], what: str) -> None:
    """Poll `ready` until it holds; fail with the logs if a process dies or time runs out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for process in processes:
            process.check_alive()
        if ready():
            return
        time.sleep(0.05)
    logs = "\n".join(p.tail() for p in processes)
    raise ServerFailed(f"{what} not ready after {STARTUP_TIMEOUT:.0f} s\n{logs}")
