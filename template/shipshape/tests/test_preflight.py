"""preflight runs every step, reports each, and ends with one summary line and its exit status."""

import io
import secrets

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from shipshape.management.commands.preflight import Outcome, summarise
from shipshape.results import FAIL, PASS, SKIP


@pytest.fixture
def production_environment(monkeypatch):
    """Throwaway production values, isolated from .env and the shell."""
    monkeypatch.setenv("DJANGO_ENV_FILE", "")
    monkeypatch.setenv("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", ",".join(settings.PUBLIC_HOSTS))
    monkeypatch.setenv("DJANGO_CSRF_TRUSTED_ORIGINS", "")
    monkeypatch.setenv("DJANGO_DEBUG", "false")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{settings.BASE_DIR / 'test.sqlite3'}")
    # The test settings' own key is a committed literal, which check --deploy reports,
    # and the test runner adds 'testserver' to ALLOWED_HOSTS. With MAILERS (Django 6.1),
    # it also swaps the mailer for locmem, which mail.E001 reports: production's is SMTP.
    mailers = {"MAILERS": {"default": {"OPTIONS": {"host": "localhost"}}}}
    with override_settings(
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=list(settings.PUBLIC_HOSTS),
        **(mailers if hasattr(settings, "MAILERS") else {}),
    ):
        yield monkeypatch


def preflight() -> tuple[int, list[str]]:
    out = io.StringIO()
    try:
        call_command("preflight", stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue().splitlines()
    return 0, out.getvalue().splitlines()


def test_the_summary_counts_each_status_and_names_missing_tools():
    outcomes = [
        Outcome("environment", PASS, ""),
        Outcome("check --deploy", FAIL, ""),
        Outcome("nginx config", SKIP, "", missing_tool="nginx"),
        Outcome("systemd units", SKIP, "", missing_tool="systemd-analyze"),
    ]
    assert summarise(outcomes) == (
        "preflight: 1 passed, 1 failed, 2 skipped (not installed here: nginx, systemd-analyze)"
    )


@pytest.mark.django_db
def test_preflight_passes_on_a_valid_production_environment(production_environment):
    code, lines = preflight()
    assert code == 0, "\n".join(lines)
    assert lines[-1].startswith("preflight: ") and " 0 failed" in lines[-1]
    steps = "\n".join(lines)
    for step in ("environment", "check --deploy", "makemigrations --check", "collectstatic"):
        assert step in steps


@pytest.mark.django_db
def test_preflight_fails_when_one_check_fails(production_environment):
    with override_settings(ALLOWED_HOSTS=["*"]):
        code, lines = preflight()
    assert code == 1
    assert "shipshape.W002" in "\n".join(lines)
    assert " 1 failed" in lines[-1]


@pytest.mark.django_db
def test_preflight_reports_each_problem_of_the_environment(production_environment):
    production_environment.setenv("DJANGO_DEBUG", "true")
    production_environment.delenv("DJANGO_SECRET_KEY")
    code, lines = preflight()
    output = "\n".join(lines)
    assert code == 1
    assert "DJANGO_DEBUG is true" in output
    assert "DJANGO_SECRET_KEY is not set" in output
