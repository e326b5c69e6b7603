"""Run a command that sees a stack at its public names and ports, on loopback only.

Scanners take a hostname and reach it the way the public would: through the
resolver, on ports 80 and 443. The command runs in private network and mount
namespaces (`unshare --net --mount`): a hosts file of our own is bound over
/etc/hosts there, sending the stack's names to 127.0.0.1, and that loopback
belongs to the command alone, so it can listen on 80 and 443 without taking
the machine's own ports or clashing with anything else running here.

The listening sockets are opened inside the namespace and handed back over a
socket pair; this process accepts on them and relays each connection to the
stack's real port on the machine's loopback. Bytes pass through untouched: the
scanner does its own TLS handshake with the proxy.

Like the benchmarks' `unshare --mount` for wrk, this needs root (CAP_SYS_ADMIN).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

# Runs inside the namespaces, before the command: loopback up, the hosts file in
# place, one listener per port handed to the parent, then the command itself.
INSIDE = """
import json, os, socket, subprocess, sys
channel = socket.socket(fileno=int(sys.argv[1]))
hosts, ports, command = sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["mount", "--bind", hosts, "/etc/hosts"], check=True)
listeners = []
for port in ports:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    listeners.append(listener)
socket.send_fds(channel, [b"L"], [listener.fileno() for listener in listeners])
channel.recv(1)
for listener in listeners:
    listener.close()
os.execvp(command[0], command)
"""


def run_seeing_stack(
    command: list[str],
    hosts: list[str],
    ports: dict[int, int],
    workdir: Path,
    env: dict[str, str],
    timeout: float = 180,
) -> subprocess.CompletedProcess:
    """Run `command` where `hosts` resolve to 127.0.0.1 and port p reaches the stack's ports[p]."""
    workdir.mkdir(parents=True, exist_ok=True)
    hosts_file = workdir / "hosts"
    hosts_file.write_text(f"127.0.0.1 localhost {' '.join(hosts)}\n")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    listen_ports = list(ports)
    with ExitStack() as cleanup:
        cleanup.callback(ours.close)
        child = subprocess.Popen(
            ["unshare", "--net", "--mount", "--", sys.executable, "-c", INSIDE,
             str(theirs.fileno()), str(hosts_file), json.dumps(listen_ports), *command],
            pass_fds=(theirs.fileno(),), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        theirs.close()
        ours.settimeout(30)
        try:
            _, fds, _, _ = socket.recv_fds(ours, 1, len(listen_ports))
        except OSError:
            fds = []
        if len(fds) != len(listen_ports):
            child.kill()
            out, err = child.communicate()
            raise RuntimeError(f"the namespace for {command[0]} did not come up:\n{out}\n{err}")
        for port, fd in zip(listen_ports, fds, strict=True):
            listener = socket.socket(fileno=fd)
            cleanup.callback(listener.close)
            target = ("127.0.0.1", ports[port])
            threading.Thread(target=accept_and_relay, args=(listener, target), daemon=True).start()
        ours.sendall(b"G")
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            raise RuntimeError(
                f"{command[0]} ran longer than {timeout:.0f} s:\n{out}\n{err}"
            ) from None
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def accept_and_relay(listener: socket.socket, target: tuple[str, int]) -> None:
    """Relay every connection the listener accepts to `target`, until it is closed."""
    while True:
        try:
            inside, _ = listener.accept()
        except OSError:
            return
        try:
            outside = socket.create_connection(target, timeout=10)
        except OSError:
            inside.close()
            continue
        outside.settimeout(None)
        threading.Thread(target=relay, args=(inside, outside), daemon=True).start()


def relay(inside: socket.socket, outside: socket.socket) -> None:
    """Both directions of one connection; each end of stream is passed on (half-close)."""
    back = threading.Thread(target=pump, args=(outside, inside), daemon=True)
    back.start()
    pump(inside, outside)
    back.join()
    inside.close()
    outside.close()


def pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        # A reset on one side ends both directions.
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
