"""Mail from the environment reaches a real SMTP server, and the deploy checks watch its addresses.

`manage.py preflight --send-test-mail ADDRESS` sends through whatever DJANGO_EMAIL_URL
says, here an aiosmtpd server on loopback started by the test: plain SMTP on Django
5.2 (EMAIL_* settings) and 6.1 (MAILERS), and SMTP over TLS with a login whose
password holds a percent-encoded '@', checked by the server. A refused login fails
the step without printing the password. With the addresses unset, `check --deploy`
warns that errors would be mailed to nobody, or from Django's @localhost defaults.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .support.ports import free_port
from .support.processes import run
from .support.project import check_deploy, settings_module

USER = "mailer"
PASSWORD = "p@ss-w0rd-9f3b"  # written %40 in the URL
ADDRESS = "ops@example.com"

# aiosmtpd warns that auth_require_tls is off: the TLS server below is TLS from the first byte.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@dataclass
class Inbox:
    """What the SMTP server accepted: each message, and the logins it saw."""

    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        ok = login == USER and auth_data.password.decode() == PASSWORD
        self.logins.append((login, ok))
        # handled=False: aiosmtpd answers a refusal with 535 itself.
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """Plain SMTP on a loopback port."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture
def tls_smtp_server(tmp_path) -> Iterator[tuple[int, Inbox, Path]]:
    """SMTP over TLS from the first byte (smtps), with a login, and the CA clients must trust.

    The connection is TLS before any command, so aiosmtpd's STARTTLS-only
    auth_require_tls is off (it warns about that).
    """
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    inbox = Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), ssl_context=context,
        authenticator=inbox.authenticate, auth_required=True, auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    try:
        yield controller.port, inbox, ca_path
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def project_for(rendered):
    """A project whose preflight has no proxy config or unit to check: only Django's steps."""

    def get(series: str) -> Path:
        return rendered(django_version=series, proxy="load_balancer", deployment="compose")

    return get


def preflight(project: Path, python: Path, *args: str, **env: str):
    return run(
        [python, "manage.py", "preflight", *args],
        cwd=project,
        env={"DJANGO_SETTINGS_MODULE": settings_module({}), **env},
    )


@pytest.mark.parametrize("series", ["5.2", "6.1"])
def test_preflight_mails_the_test_message_from_server_email(
    project_for, project_python, smtp_server, series
):
    port, inbox = smtp_server
    project = project_for(series)
    result = preflight(
        project, project_python(series), "--send-test-mail", ADDRESS,
        DJANGO_EMAIL_URL=f"smtp://127.0.0.1:{port}", DJANGO_SERVER_EMAIL="errors@example.com",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"sent to {ADDRESS} from errors@example.com through SMTP 127.0.0.1:{port}" in output
    [(sender, recipients, message)] = inbox.messages
    assert (sender, recipients) == ("errors@example.com", [ADDRESS])
    assert message["From"] == "errors@example.com" and message["To"] == ADDRESS
    assert "preflight test mail" in message["Subject"]


def test_preflight_logs_in_over_tls_with_the_decoded_password(
    project_for, project_python, tls_smtp_server
):
    port, inbox, ca_path = tls_smtp_server
    url = f"smtp+ssl://{USER}:{PASSWORD.replace('@', '%40')}@localhost:{port}"
    result = preflight(
        project_for("5.2"), project_python("5.2"), "--send-test-mail", ADDRESS,
        DJANGO_EMAIL_URL=url, SSL_CERT_FILE=str(ca_path),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert inbox.logins == [(USER, True)]
    [(_, recipients, _)] = inbox.messages
    assert recipients == [ADDRESS]
    assert PASSWORD not in output


def test_a_refused_login_fails_the_step_without_printing_the_password(
    project_for, project_python, tls_smtp_server
):
    port, inbox, ca_path = tls_smtp_server
    wrong = "wrong-password-7c1e"
    result = preflight(
        project_for("5.2"), project_python("5.2"), "--send-test-mail", ADDRESS,
        DJANGO_EMAIL_URL=f"smtp+ssl://{USER}:{wrong}@localhost:{port}",
        SSL_CERT_FILE=str(ca_path),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"FAIL  test mail                not sent through SMTP localhost:{port}" in output
    assert "SMTPAuthenticationError" in output
    assert wrong not in output and "Traceback" not in output
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN): all refused.
    assert inbox.logins and all(login == (USER, False) for login in inbox.logins)
    assert inbox.messages == []


def test_a_server_that_does_not_answer_fails_the_step(project_for, project_python):
    closed = free_port()
    result = preflight(
        project_for("5.2"), project_python("5.2"), "--send-test-mail", ADDRESS,
        DJANGO_EMAIL_URL=f"smtp://127.0.0.1:{closed}",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "ConnectionRefusedError" in output and "Traceback" not in output


@pytest.mark.parametrize(
    "address", ["not-an-address", "a@example.com,b@example.com", "a@b\nBcc: x@y"]
)
def test_send_test_mail_takes_one_address(project_for, project_python, address):
    result = preflight(project_for("5.2"), project_python("5.2"), "--send-test-mail", address)
    assert result.returncode == 1
    assert "--send-test-mail needs one email address" in result.stderr
    assert "Traceback" not in result.stderr


# -- the deploy checks on mail addresses ----------------------------------------------------


def deploy_check_ids(project: Path, python: Path, **env: str) -> str:
    result = check_deploy(python, project, settings_module({}), env)
    return result.stdout + result.stderr


@pytest.mark.parametrize("series", ["5.2", "6.1"])
def test_check_deploy_warns_while_errors_would_be_mailed_to_nobody_or_from_localhost(
    project_for, project_python, series
):
    project, python = project_for(series), project_python(series)
    # The generated .env names addresses of the domain: nothing to warn about.
    assert "shipshape.W01" not in deploy_check_ids(project, python)
    nobody = deploy_check_ids(project, python, DJANGO_ENV_FILE="", **production_env())
    assert "shipshape.W016" in nobody and "ADMINS is empty" in nobody
    assert "shipshape.W018" in nobody and "webmaster@localhost" in nobody
    from_root = deploy_check_ids(
        project, python, DJANGO_ENV_FILE="", DJANGO_ADMINS=ADDRESS, **production_env()
    )
    assert "shipshape.W016" not in from_root
    assert "shipshape.W017" in from_root and "root@localhost" in from_root


def production_env() -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": "k3y-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2,
        "DJANGO_ALLOWED_HOSTS": "example.com",
    }
