"""The real validators of deploy files, run the way the tests and preflight run them.

nginx -t through the rendered project's own shipshape (its one nginx.conf wrapper),
caddy validate, systemd-analyze verify; each with its caches and state kept out of the
real home directory. And the paths those validators can check on this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import trustme

from .binaries import NGINX
from .processes import run


def validation_paths(root: Path) -> dict[str, str]:
    """app_dir with a stand-in gunicorn, and a test CA's certificate for the default hosts.

    systemd-analyze verify refuses a unit whose ExecStart does not exist, and nginx -t
    and caddy validate read the certificate files.
    """
    app_dir = root / "app"
    gunicorn = app_dir / ".venv" / "bin" / "gunicorn"
    gunicorn.parent.mkdir(parents=True)
    gunicorn.write_text("#!/bin/sh\nexit 0\n")
    gunicorn.chmod(0o755)
    ca = trustme.CA()
    cert = ca.issue_cert("example.com", "www.example.com")
    cert.cert_chain_pems[0].write_to_path(root / "fullchain.pem")
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(root / "fullchain.pem", append=True)
    cert.private_key_pem.write_to_path(root / "privkey.pem")
    return {
        "app_dir": str(app_dir),
        "tls_cert": str(root / "fullchain.pem"),
        "tls_key": str(root / "privkey.pem"),
    }


def tool_env(tmp_path: Path) -> dict[str, str]:
    """Keep validators' caches and state out of the real home directory."""
    return {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


def tool(args: list, cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=tool_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# The project's own nginx -t, as preflight runs it: shipshape reads the site config
# (includes and all) and tests it inside the one minimal nginx.conf it writes, with a
# stand-in named in the notes for what exists only on the server.
NGINX_VALIDATE = """
import json, sys
from pathlib import Path
from shipshape.proxy_config import read, validate
result, notes = validate(read("nginx", Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3]))
print(json.dumps({"returncode": result.returncode, "stderr": result.stderr, "notes": notes}))
"""


def nginx_test(
    project: Path, python: Path, site_conf: Path, tmp_path: Path, nginx: str = NGINX
) -> dict:
    """nginx -t on a site config through the project's shipshape: returncode, stderr, notes."""
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    result = run([python, "-c", NGINX_VALIDATE, site_conf, nginx, workdir], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def caddy_validate(caddy: str, caddyfile: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return tool(
        [caddy, "validate", "--config", caddyfile, "--adapter", "caddyfile"],
        caddyfile.parent,
        tmp_path,
    )


def systemd_verify(unit_dir: Path, units: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return tool(["systemd-analyze", "verify", "--man=no", *units], unit_dir, tmp_path)
