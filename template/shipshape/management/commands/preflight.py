"""`manage.py preflight`: everything that must pass before a release, in one command.

Runs, in order: the production environment's validation, `check --deploy` at
warning level (Django's checks and shipshape's), `makemigrations --check`,
`collectstatic --dry-run`, deploy/gunicorn.conf.py through gunicorn's own
settings, and the rendered proxy config and systemd units through the real
nginx, caddy and systemd-analyze where they are installed. A
tool that is not installed is reported as skipped, not as a failure. With
`--send-test-mail ADDRESS`, a last step mails ADDRESS from SERVER_EMAIL through
the configured mail server, the way error reports travel. The last line sums it
up; the command fails (exit status 1) only when a step failed.
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
import runpy
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.management import BaseCommand, CommandError, call_command

from shipshape import proxy_config
from shipshape.results import FAIL, PASS, SKIP, WARN, style
from shipshape.tools import run, which


@dataclass
class Outcome:
    name: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    missing_tool: str | None = None


def summarise(outcomes: list[Outcome]) -> str:
    """The last line: counts per status and the tools that were not installed."""
    counts = {status: sum(o.status == status for o in outcomes) for status in (PASS, WARN, FAIL)}
    line = f"preflight: {counts[PASS]} passed, {counts[FAIL]} failed"
    if counts[WARN]:
        line += f", {counts[WARN]} warnings"
    skipped = [o for o in outcomes if o.status == SKIP]
    if skipped:
        line += f", {len(skipped)} skipped"
        missing = sorted({o.missing_tool for o in skipped if o.missing_tool})
        if missing:
            line += f" (not installed here: {', '.join(missing)})"
    return line


# The longest unix socket path the kernel takes (sun_path, less its final NUL).
UNIX_SOCKET_PATH_MAX = 107
HOSTNAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?", re.I)
# One recipient, nothing a mail header could be split on.
MAIL_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9.-]+")


def gunicorn_refuses(path: Path) -> str | None:
    """Why gunicorn could not start with this config file, in one line, or None.

    gunicorn's own loading, as `gunicorn -c` does it: the file runs as Python,
    every name gunicorn knows goes through that setting's validator, and each
    bind is parsed as gunicorn parses it before opening the socket. The WSGI
    application is not loaded; the other steps check what it needs.
    """
    try:
        # gunicorn's settings read WEB_CONCURRENCY, PORT and FORWARDED_ALLOW_IPS
        # from the environment as the module loads: a bad one fails here, as it
        # would fail gunicorn.
        from gunicorn.config import Config
    except ValueError as exc:
        return f"gunicorn cannot load its settings from the environment: {exc}"
    try:
        config = Config()
        namespace = runpy.run_path(str(path))
    except Exception as exc:  # the file is the project's own Python: any error is the result
        return f"{path.name} does not run: {type(exc).__name__}: {exc}"
    for key, value in namespace.items():
        if key in config.settings:
            try:
                config.set(key, value)
            except Exception as exc:  # gunicorn's validators raise ValueError, TypeError, ...
                return f"gunicorn refuses {key}: {exc}"
    for address in config.bind:
        problem = _unusable_bind(address)
        if problem:
            return f"gunicorn cannot bind {address!r}: {problem}"
    try:
        config.worker_class  # noqa: B018 - reading it imports the worker class
    except Exception as exc:  # gunicorn's class loader raises RuntimeError or ImportError
        # Its message goes on with the import's traceback: the first line says it.
        reason = str(exc).splitlines()[0].rstrip(": ")
        return f"gunicorn cannot load worker_class: {reason}"
    return None


def _unusable_bind(address: str) -> str | None:
    from gunicorn.util import parse_address

    try:
        parsed = parse_address(address)
    except RuntimeError as exc:
        return str(exc)
    if isinstance(parsed, str):
        length = len(os.fsencode(parsed))
        if length > UNIX_SOCKET_PATH_MAX:
            return f"a unix socket path of {length} bytes, over the {UNIX_SOCKET_PATH_MAX} allowed"
        return None
    if isinstance(parsed, int):  # fd://N, a socket handed over by systemd
        return None
    host, port = parsed
    if not 0 <= port <= 65535:
        return f"port {port} is out of range 0-65535"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host and not HOSTNAME.fullmatch(host):
            return f"{host!r} is neither an IP address nor a hostname"
    return None


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


class Command(BaseCommand):
    help = "Check everything a release needs before it goes out; exit 1 if anything fails."

    # `check --deploy` runs as one of the steps, with the result reported like the others.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--send-test-mail",
            metavar="ADDRESS",
            help="Also mail ADDRESS from SERVER_EMAIL through the configured mail server.",
        )

    def handle(self, *args, **options):
        test_mail_to = options.get("send_test_mail")
        if test_mail_to is not None and not MAIL_ADDRESS.fullmatch(test_mail_to):
            raise CommandError("--send-test-mail needs one email address, like ops@example.com")
        steps = [
            self.environment,
            self.deploy_checks,
            self.migrations,
            self.static_files,
            self.gunicorn,
            self.proxy,
            self.systemd_units,
        ]
        if test_mail_to is not None:
            steps.append(lambda: self.test_mail(test_mail_to))
        self.stdout.write(f"Preflight for {settings.SETTINGS_MODULE}\n")
        outcomes = []
        for step in steps:
            outcome = step()
            if outcome is None:
                continue
            outcomes.append(outcome)
            self.report(outcome)
        failed = [o.name for o in outcomes if o.status == FAIL]
        self.stdout.write("")
        self.stdout.write(summarise(outcomes), style_func=style(self, FAIL if failed else PASS))
        if failed:
            raise CommandError(f"failed: {', '.join(failed)}")

    def report(self, outcome: Outcome) -> None:
        self.stdout.write(
            f"  {outcome.status.upper():<4}  {outcome.name:<24} {outcome.summary}",
            style_func=style(self, outcome.status),
        )
        for detail in outcome.details:
            self.stdout.write(f"{'':<32}{detail}")

    # Steps ---------------------------------------------------------------------

    def environment(self) -> Outcome:
        name = "environment"
        dotted = getattr(settings, "SHIPSHAPE", {}).get("env_model")
        if not dotted:
            return Outcome(name, SKIP, "SHIPSHAPE['env_model'] is not set")
        # The model's module (the project's env.py) has the load() that reads and validates.
        module_name, _, model_name = dotted.rpartition(".")
        env = import_module(module_name)
        try:
            env.load(getattr(env, model_name))
        except ImproperlyConfigured as exc:
            problems = getattr(exc, "problems", None) or [str(exc)]
            return Outcome(name, FAIL, f"{model_name} refuses it", problems)
        return Outcome(name, PASS, f"{model_name} accepts every variable")

    def deploy_checks(self) -> Outcome:
        name = "check --deploy"
        out = io.StringIO()
        try:
            call_command("check", deploy=True, fail_level="WARNING", stdout=out, stderr=out)
        except CommandError as exc:  # SystemCheckError: the issues are its message
            return Outcome(name, FAIL, "issues at warning level or above", _lines(str(exc)))
        details = _lines(out.getvalue())
        return Outcome(name, PASS, details[-1] if details else "no issues", details[:-1])

    def migrations(self) -> Outcome:
        name = "makemigrations --check"
        out = io.StringIO()
        try:
            call_command("makemigrations", check=True, dry_run=True, stdout=out, stderr=out)
        except SystemExit:
            return Outcome(
                name,
                FAIL,
                "models have changes without a migration: run makemigrations",
                _lines(out.getvalue()),
            )
        return Outcome(name, PASS, "every model change has a migration")

    def static_files(self) -> Outcome:
        name = "collectstatic --dry-run"
        out = io.StringIO()
        try:
            call_command("collectstatic", dry_run=True, interactive=False, stdout=out, stderr=out)
        except Exception as exc:  # any failure here is the result of the step
            return Outcome(name, FAIL, f"{type(exc).__name__}: {exc}", _lines(out.getvalue()))
        lines = _lines(out.getvalue())
        return Outcome(name, PASS, f"dry run: {lines[-1]}" if lines else "nothing to collect")

    def gunicorn(self) -> Outcome | None:
        path = Path(settings.BASE_DIR) / "deploy" / "gunicorn.conf.py"
        if not path.is_file():
            return None
        problem = gunicorn_refuses(path)
        if problem:
            return Outcome("gunicorn config", FAIL, problem)
        return Outcome("gunicorn config", PASS, f"gunicorn accepts {path.name}")

    def proxy(self) -> Outcome | None:
        kind, path = proxy_config.configured()
        if path is None:
            return None
        name = f"{kind} config"
        try:
            config = proxy_config.read(kind, path)
        except proxy_config.UnreadableConfig as exc:
            return Outcome(name, FAIL, f"{path.name} cannot be read", [str(exc)])
        binary = which(kind)
        if binary is None:
            return Outcome(name, SKIP, f"{kind} is not installed here", missing_tool=kind)
        if kind == "nginx" and (too_old := proxy_config.nginx_too_old(binary, path)):
            return Outcome(name, SKIP, too_old)
        with tempfile.TemporaryDirectory(prefix="preflight-") as tmp:
            result, notes = proxy_config.validate(config, binary, Path(tmp))
        output = _lines(result.stdout + result.stderr)
        if result.returncode != 0:
            return Outcome(name, FAIL, f"{kind} rejects {path.name}", output + notes)
        return Outcome(name, PASS, f"{kind} accepts {path.name}", notes)

    def systemd_units(self) -> Outcome | None:
        folder = Path(settings.BASE_DIR) / "deploy" / "systemd"
        units = sorted([*folder.glob("*.service"), *folder.glob("*.socket")])
        if not units:
            return None
        name = "systemd units"
        binary = which("systemd-analyze")
        if binary is None:
            missing = "systemd-analyze"
            return Outcome(name, SKIP, f"{missing} is not installed here", missing_tool=missing)
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
            result = run([binary, "verify", "--man=no", *copies])
        # systemd-analyze exits 0 on unknown keys and other mistakes: any message is one.
        output = _lines(result.stderr)
        names = ", ".join(unit.name for unit in units)
        if result.returncode != 0 or output:
            return Outcome(name, FAIL, f"systemd-analyze verify rejects {names}", output + notes)
        return Outcome(name, PASS, f"systemd-analyze verify accepts {names}", notes)

    def test_mail(self, address: str) -> Outcome:
        name = "test mail"
        where = _mail_server()
        message = EmailMessage(
            subject=f"{settings.EMAIL_SUBJECT_PREFIX}preflight test mail",
            body=(
                "preflight sent this message to prove that error reports reach you: "
                f"from SERVER_EMAIL ({settings.SERVER_EMAIL}) through {where}.\n"
            ),
            from_email=settings.SERVER_EMAIL,
            to=[address],
        )
        try:
            sent = message.send()
        except Exception as exc:  # the mail server's refusal or the network's is the result
            # The exception names the server's answer, never the password.
            return Outcome(
                name, FAIL, f"not sent through {where}", [f"{type(exc).__name__}: {exc}"]
            )
        if not sent:
            return Outcome(name, FAIL, f"{where} accepted nothing")
        return Outcome(
            name, PASS, f"sent to {address} from {settings.SERVER_EMAIL} through {where}"
        )


def _mail_server() -> str:
    """Where mail goes, for the report: host and port of SMTP, or the backend's name."""
    # MAILERS from Django 6.1 on; EMAIL_* before it, or in a project that kept them.
    entry = getattr(settings, "MAILERS", {}).get("default")
    if entry is not None:
        backend = entry.get("BACKEND", "django.core.mail.backends.smtp.EmailBackend")
        options = entry.get("OPTIONS", {})
        host, port = options.get("host"), options.get("port")
    else:
        backend, host, port = settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT
    if backend.endswith("smtp.EmailBackend"):
        return f"SMTP {host}:{port}"
    return backend
