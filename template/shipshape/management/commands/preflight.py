"""`manage.py preflight`: everything that must pass before a release, in one command.

Runs, in order: the production environment's validation, `check --deploy` at
warning level (Django's checks and shipshape's), `makemigrations --check`,
`collectstatic --dry-run`, and the rendered proxy config and systemd units
through the real nginx, caddy and systemd-analyze where they are installed. A
tool that is not installed is reported as skipped, not as a failure. The last
line sums it up; the exit status is 0 only when nothing failed.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import BaseCommand, CommandError, call_command
from django.utils.module_loading import import_string

from shipshape import proxy_config

TOOL_TIMEOUT_SECONDS = 60
# Where Debian and most distributions put nginx when /usr/sbin is not on PATH.
SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class Outcome:
    name: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    missing_tool: str | None = None


def summarise(outcomes: list[Outcome]) -> str:
    """The last line: counts per status and the tools that were not installed."""
    counts = {status: sum(o.status == status for o in outcomes) for status in (PASSED, FAILED)}
    line = f"preflight: {counts[PASSED]} passed, {counts[FAILED]} failed"
    skipped = [o for o in outcomes if o.status == SKIPPED]
    if skipped:
        line += f", {len(skipped)} skipped"
        missing = sorted({o.missing_tool for o in skipped if o.missing_tool})
        if missing:
            line += f" (not installed here: {', '.join(missing)})"
    return line


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), SBIN]))


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, check=False, **kwargs
    )


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


class Command(BaseCommand):
    help = "Check everything a release needs before it goes out; exit 1 if anything fails."

    # `check --deploy` runs as one of the steps, with the result reported like the others.
    requires_system_checks = []

    def handle(self, *args, **options):
        steps = [
            self.environment,
            self.deploy_checks,
            self.migrations,
            self.static_files,
            self.proxy,
            self.systemd_units,
        ]
        self.stdout.write(f"Preflight for {settings.SETTINGS_MODULE}\n")
        outcomes = []
        for step in steps:
            outcome = step()
            if outcome is None:
                continue
            outcomes.append(outcome)
            self.report(outcome)
        line = summarise(outcomes)
        failed = any(o.status == FAILED for o in outcomes)
        self.stdout.write("")
        self.stdout.write(line, style_func=self.style.ERROR if failed else self.style.SUCCESS)
        if failed:
            sys.exit(1)

    def report(self, outcome: Outcome) -> None:
        style = {
            PASSED: self.style.SUCCESS,
            FAILED: self.style.ERROR,
            SKIPPED: self.style.WARNING,
        }[outcome.status]
        label = {PASSED: "ok", FAILED: "FAIL", SKIPPED: "skip"}[outcome.status]
        self.stdout.write(f"  {label:<4}  {outcome.name:<24} {outcome.summary}", style_func=style)
        for detail in outcome.details:
            self.stdout.write(f"{'':<32}{detail}")

    # Steps ---------------------------------------------------------------------

    def environment(self) -> Outcome:
        name = "environment"
        dotted = getattr(settings, "SHIPSHAPE", {}).get("env_model")
        if not dotted:
            return Outcome(name, SKIPPED, "SHIPSHAPE['env_model'] is not set")
        model = import_string(dotted)
        load = sys.modules[model.__module__].load
        try:
            load(model)
        except ImproperlyConfigured as exc:
            problems = getattr(exc, "problems", None) or [str(exc)]
            return Outcome(name, FAILED, f"{model.__name__} refuses it", problems)
        return Outcome(name, PASSED, f"{model.__name__} accepts every variable")

    def deploy_checks(self) -> Outcome:
        name = "check --deploy"
        out = io.StringIO()
        try:
            call_command("check", deploy=True, fail_level="WARNING", stdout=out, stderr=out)
        except CommandError as exc:  # SystemCheckError: the issues are its message
            return Outcome(name, FAILED, "issues at warning level or above", _lines(str(exc)))
        details = _lines(out.getvalue())
        return Outcome(name, PASSED, details[-1] if details else "no issues", details[:-1])

    def migrations(self) -> Outcome:
        name = "makemigrations --check"
        out = io.StringIO()
        try:
            call_command("makemigrations", check=True, dry_run=True, stdout=out, stderr=out)
        except SystemExit:
            return Outcome(
                name,
                FAILED,
                "models have changes without a migration: run makemigrations",
                _lines(out.getvalue()),
            )
        return Outcome(name, PASSED, "every model change has a migration")

    def static_files(self) -> Outcome:
        name = "collectstatic --dry-run"
        out = io.StringIO()
        try:
            call_command("collectstatic", dry_run=True, interactive=False, stdout=out, stderr=out)
        except Exception as exc:  # any failure here is the result of the step
            return Outcome(name, FAILED, f"{type(exc).__name__}: {exc}", _lines(out.getvalue()))
        lines = _lines(out.getvalue())
        return Outcome(name, PASSED, f"dry run: {lines[-1]}" if lines else "nothing to collect")

    def proxy(self) -> Outcome | None:
        kind, path = proxy_config.configured()
        if path is None:
            return None
        name = f"{kind} config"
        if not path.exists():
            return Outcome(name, FAILED, f"{path} does not exist")
        tool = "nginx" if kind == "nginx" else "caddy"
        binary = _which(tool)
        if binary is None:
            return Outcome(name, SKIPPED, f"{tool} is not installed here", missing_tool=tool)
        with tempfile.TemporaryDirectory(prefix="preflight-") as tmp:
            text, notes = self._stand_in_certificates(path.read_text(), kind, Path(tmp))
            if kind == "nginx":
                text, more = _loopback_upstreams(text)
                result = self._nginx_test(binary, text, Path(tmp))
            else:
                more = []
                result = self._caddy_validate(binary, text, Path(tmp))
        notes += more
        output = _lines(result.stdout + result.stderr)
        if result.returncode != 0:
            return Outcome(name, FAILED, f"{tool} rejects {path.name}", output + notes)
        return Outcome(name, PASSED, f"{tool} accepts {path.name}", notes)

    def systemd_units(self) -> Outcome | None:
        folder = Path(settings.BASE_DIR) / "deploy" / "systemd"
        units = sorted([*folder.glob("*.service"), *folder.glob("*.socket")])
        if not units:
            return None
        name = "systemd units"
        binary = _which("systemd-analyze")
        if binary is None:
            missing = "systemd-analyze"
            return Outcome(name, SKIPPED, f"{missing} is not installed here", missing_tool=missing)
        app_dir = getattr(settings, "SHIPSHAPE", {}).get("app_dir")
        base_dir = str(Path(settings.BASE_DIR).resolve())
        notes = []
        with tempfile.TemporaryDirectory(prefix="preflight-") as tmp:
            copies = []
            for unit in units:
                text = unit.read_text()
                if app_dir and app_dir != base_dir:
                    # Not on the server: verify against this checkout and this
                    # virtualenv, so ExecStart names a binary that exists.
                    text = text.replace(f"{app_dir}/.venv", sys.prefix)
                    text = text.replace(app_dir, base_dir)
                copy = Path(tmp) / unit.name
                copy.write_text(text)
                copies.append(str(copy))
            if app_dir and app_dir != base_dir:
                notes.append(f"verified with this checkout's paths in place of {app_dir}")
            result = _run([binary, "verify", "--man=no", *copies])
        # systemd-analyze exits 0 on unknown keys and other mistakes: any message is one.
        output = _lines(result.stderr)
        names = ", ".join(unit.name for unit in units)
        if result.returncode != 0 or output:
            return Outcome(name, FAILED, f"systemd-analyze verify rejects {names}", output + notes)
        return Outcome(name, PASSED, f"systemd-analyze verify accepts {names}", notes)

    # Tools -----------------------------------------------------------------------

    def _stand_in_certificates(self, text: str, kind: str, tmp: Path) -> tuple[str, list[str]]:
        """Replace certificate files that do not exist here (e.g. in CI) with a throwaway pair."""
        if kind == "nginx":
            paths = re.findall(r"^\s*ssl_certificate(?:_key)?\s+(\S+?);", text, re.MULTILINE)
        else:
            pairs = re.findall(r"^\s*tls\s+(\S+)\s+(\S+)\s*$", text, re.MULTILINE)
            paths = [path for pair in pairs for path in pair]
        missing = sorted({p for p in paths if p.startswith("/") and not Path(p).exists()})
        if not missing:
            return text, []
        openssl = _which("openssl")
        if openssl is None:
            return text, [f"{', '.join(missing)} missing and openssl not installed"]
        cert, key = tmp / "stand-in.crt", tmp / "stand-in.key"
        _run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
            + ["-subj", "/CN=preflight.invalid", "-keyout", str(key), "-out", str(cert)]
        )
        for path in missing:
            is_key = "key" in Path(path).name or "priv" in Path(path).name
            text = text.replace(path, str(key if is_key else cert))
        return text, [f"a throwaway certificate stood in for {', '.join(missing)}"]

    def _nginx_test(self, binary: str, text: str, tmp: Path) -> subprocess.CompletedProcess:
        site = tmp / "site.conf"
        site.write_text(text)
        mime = Path("/etc/nginx/mime.types")
        temp_paths = "\n".join(
            f"    {kind}_temp_path {tmp / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        main = tmp / "nginx.conf"
        main.write_text(
            f"pid {tmp / 'nginx.pid'};\n"
            "error_log stderr;\n"
            "events {}\n"
            "http {\n"
            + (f"    include {mime};\n" if mime.exists() else "")
            + "    access_log off;\n"
            + temp_paths
            + f"\n    include {site};\n"
            "}\n"
        )
        return _run([binary, "-t", "-q", "-e", "stderr", "-p", str(tmp), "-c", str(main)])

    def _caddy_validate(self, binary: str, text: str, tmp: Path) -> subprocess.CompletedProcess:
        caddyfile = tmp / "Caddyfile"
        caddyfile.write_text(text)
        # Caddy keeps state under HOME; validation must not touch the user's.
        env = {
            **os.environ,
            **{name: str(tmp) for name in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")},
        }
        return _run(
            [binary, "validate", "--config", str(caddyfile), "--adapter", "caddyfile"], env=env
        )


def _loopback_upstreams(text: str) -> tuple[str, list[str]]:
    """nginx -t resolves upstream names; a compose service name only resolves inside compose."""
    notes = []

    def replace(match: re.Match) -> str:
        host, port = match.group(2), match.group(3)
        try:
            socket.getaddrinfo(host, port)
        except OSError:
            notes.append(f"upstream {host}:{port} does not resolve here; tested as 127.0.0.1")
            return f"{match.group(1)}127.0.0.1:{port}"
        return match.group(0)

    text = re.sub(r"(\bserver\s+)([A-Za-z][\w.-]*):(\d+)", replace, text)
    return text, notes
