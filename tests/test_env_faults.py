"""Faults lose nothing: .env is written whole or not at all, and a bad environment is named.

- hooks/write_env.py under a full disk or a read-only folder leaves no empty .env that a
  later run keeps as if it held a key; an update that finds .env deleted says so loudly
  and does not invent a PostgreSQL password the existing database was not created with;
  its messages are true (nothing claims a new key when .env was left alone).
- A .env that is not UTF-8, a DJANGO_ENV_FILE that is missing or a folder, an invalid
  environment and an in-memory SQLite database stop a real gunicorn, started with the
  rendered deploy/gunicorn.conf.py, with one line per problem and a non-zero exit.
"""

from __future__ import annotations

import errno
import importlib.util
import resource
import signal
import stat
import sys
from pathlib import Path

import pytest

from .support.git import new_repo
from .support.paths import ROOT
from .support.ports import free_port
from .support.processes import run
from .support.project import check_deploy, settings_module
from .support.rendering import SNAPSHOT_VERSION, copier_cli

WRITE_ENV = ROOT / "hooks/write_env.py"
ARGS = [
    "--hosts=example.com",
    "--database=sqlite",
    "--deployment=systemd",
    "--project-slug=my_site",
]
GOOD_KEY = "k3y-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2


def write_env_module():
    spec = importlib.util.spec_from_file_location("write_env_under_test", WRITE_ENV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".env"))


def small_file_limit() -> None:
    """A disk that fills after 64 bytes: writes beyond fail with EFBIG instead of a signal."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


# -- .env written whole or not at all ------------------------------------------------------


def test_a_full_disk_leaves_no_env_and_the_next_run_writes_a_key(tmp_path):
    import subprocess

    failed = subprocess.run(
        [sys.executable, WRITE_ENV, *ARGS], cwd=tmp_path, capture_output=True, text=True,
        preexec_fn=small_file_limit, check=False,
    )  # fmt: skip
    assert failed.returncode == 1
    [line] = failed.stderr.splitlines()
    assert line.startswith("error: could not write .env: File too large; nothing was left")
    assert leftovers(tmp_path) == []
    again = run([sys.executable, WRITE_ENV, *ARGS], cwd=tmp_path)
    assert again.returncode == 0
    assert again.stdout == ".env written with a new secret key\n"
    assert "DJANGO_SECRET_KEY=" in (tmp_path / ".env").read_text()


@pytest.mark.parametrize(
    ("fails", "code"),
    [("fsync", errno.ENOSPC), ("replace", errno.ENOSPC), ("mkstemp", errno.EROFS)],
)
def test_a_failed_write_or_rename_leaves_nothing(tmp_path, monkeypatch, capsys, fails, code):
    module = write_env_module()

    def fail(*args, **kwargs):
        raise OSError(code, __import__("os").strerror(code))

    target = module.tempfile if fails == "mkstemp" else module.os
    monkeypatch.setattr(target, fails, fail)
    monkeypatch.chdir(tmp_path)
    assert module.main(ARGS) == 1
    assert leftovers(tmp_path) == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: could not write .env: ")


def test_an_empty_env_left_by_an_old_failure_is_written_again(tmp_path):
    (tmp_path / ".env").write_text("")
    result = run([sys.executable, WRITE_ENV, *ARGS], cwd=tmp_path)
    assert result.returncode == 0
    assert "WARNING: .env was empty" in result.stderr
    assert "DJANGO_SECRET_KEY=" in (tmp_path / ".env").read_text()
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


# -- updates: true messages, a deleted .env said loudly -------------------------------------


def update_in_place(project: Path):
    return copier_cli(
        "update", "--trust", "--defaults", "--conflict", "inline", "--vcs-ref", SNAPSHOT_VERSION,
        cwd=project, settings_dir=project.parent,
    )  # fmt: skip


def test_an_update_that_leaves_env_alone_says_only_that(fresh_project):
    project = new_repo(fresh_project(), "generated")
    before = (project / ".env").read_bytes()
    result = update_in_place(project)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "written with a new secret key" not in output
    assert output.count(".env exists: left unchanged") == 1
    assert (project / ".env").read_bytes() == before


def test_a_deleted_env_is_regenerated_loudly_without_a_new_database_password(
    fresh_project, project_python
):
    project = new_repo(fresh_project(database="postgres", deployment="compose"), "generated")
    old = (project / ".env").read_text()
    old_password = next(
        line.split("=", 1)[1] for line in old.splitlines() if line.startswith("POSTGRES_PASSWORD=")
    )
    (project / ".env").unlink()
    result = update_in_place(project)
    assert result.returncode == 0, result.stderr
    assert "WARNING: .env was missing, so a new one was written with a new secret key" in (
        result.stderr
    )
    assert "WARNING: .env holds no database password" in result.stderr
    new = (project / ".env").read_text()
    assert old_password not in new
    assert "\nPOSTGRES_PASSWORD=" not in new and "\nDATABASE_URL=" not in new
    assert "# POSTGRES_PASSWORD=THE-PASSWORD-THE-DATABASE-WAS-CREATED-WITH" in new
    # Production refuses to start until the team restores the password.
    check = check_deploy(project_python("5.2"), project, settings_module({}))
    assert check.returncode == 1
    assert "DATABASE_URL is not set" in check.stderr
    assert "Traceback" not in check.stderr


# -- a bad environment under a real gunicorn -----------------------------------------------


def gunicorn(project: Path, python: Path, env: dict[str, str]):
    return run(
        [python.parent / "gunicorn", "-c", "deploy/gunicorn.conf.py", "my_site.wsgi"],
        cwd=project,
        env={"WEB_CONCURRENCY": "1", **env},
        timeout=60,
    )


@pytest.fixture(scope="module")
def served(rendered, project_python):
    project = rendered(gunicorn_bind=f"127.0.0.1:{free_port()}")
    return project, project_python("5.2")


def valid_env(**changes: str) -> dict[str, str]:
    return {
        "DJANGO_ENV_FILE": "",
        "DJANGO_SECRET_KEY": GOOD_KEY,
        "DJANGO_ALLOWED_HOSTS": "example.com",
        **changes,
    }


def assert_stopped_with(result, *lines: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert "Booting worker" in output  # it was gunicorn that stopped, in a worker
    for line in lines:
        assert line in output, output
    problems = [row for row in output.splitlines() if row.startswith(("DJANGO_", "DATABASE_URL"))]
    assert len(problems) == len(lines), output


def test_an_invalid_environment_stops_gunicorn_with_one_line_per_variable(served, tmp_path):
    project, python = served
    result = gunicorn(
        project, python, valid_env(DJANGO_SECRET_KEY="short-secret", DJANGO_ALLOWED_HOSTS="*")
    )
    assert_stopped_with(
        result,
        "DJANGO_SECRET_KEY is too weak",
        "DJANGO_ALLOWED_HOSTS '*' is a wildcard",
    )
    assert "short-secret" not in result.stdout + result.stderr
    assert len((result.stdout + result.stderr).splitlines()) < 15


def test_an_env_file_that_is_not_utf8_stops_gunicorn(served, tmp_path):
    project, python = served
    env_file = tmp_path / "latin1.env"
    env_file.write_bytes(
        f"DJANGO_SECRET_KEY={GOOD_KEY}\nDJANGO_ALLOWED_HOSTS=caf\xe9.example\n".encode("latin-1")
    )
    result = gunicorn(project, python, valid_env(DJANGO_ENV_FILE=str(env_file)))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output, output
    assert f"{env_file} is not UTF-8 text" in output


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_django_env_file_that_is_missing_or_a_folder_stops_gunicorn(served, tmp_path, kind):
    project, python = served
    target = tmp_path / "prod.env"
    if kind == "folder":
        target.mkdir()
    result = gunicorn(project, python, valid_env(DJANGO_ENV_FILE=str(target)))
    expected = "which does not exist" if kind == "missing" else "is not a file"
    assert_stopped_with(result, "DJANGO_ENV_FILE")
    assert expected in result.stdout + result.stderr


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite://:memory:"])
def test_an_in_memory_sqlite_database_is_refused_in_production(served, url):
    project, python = served
    result = gunicorn(project, python, valid_env(DATABASE_URL=url))
    assert_stopped_with(result, "DATABASE_URL is an in-memory SQLite database")


def test_a_valid_environment_still_boots(served):
    """The refusals above are the environment's, not gunicorn's: a good one serves."""
    project, python = served
    result = run(
        [python, "-c", "import my_site.wsgi as w; print(callable(w.application))"],
        cwd=project,
        env=valid_env(DATABASE_URL=f"sqlite:///{project}/db.sqlite3"),
    )
    assert result.stdout.strip() == "True", result.stderr


# -- mail and key fallbacks: hostile and clumsy values ---------------------------------------

SECOND_KEY = "k3y-" + "zyxwvutsrqponmlkjihgfedcba9876543210" * 2
MAIL_PASSWORD = "hunter2-mail-password"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("DJANGO_SECRET_KEY_FALLBACKS", "short-old-key", "entry 1 is too weak"),
        ("DJANGO_SECRET_KEY_FALLBACKS", f"{SECOND_KEY},short-old-key", "entry 2 is too weak"),
        ("DJANGO_SECRET_KEY_FALLBACKS", "django-insecure-" + "x1y2z3" * 9, "entry 1 is a development key"),
        ("DJANGO_SECRET_KEY_FALLBACKS", "replace-me-with-the-output-of-the-command-in-env-example", "entry 1 is still the placeholder"),
        ("DJANGO_SECRET_KEY_FALLBACKS", GOOD_KEY, "entry 1 repeats DJANGO_SECRET_KEY"),
        ("DJANGO_EMAIL_URL", "console://", "is console://, which prints mail to the log"),
        ("DJANGO_EMAIL_URL", "smtps://mail.example.com", "has no known scheme 'smtps'"),
        ("DJANGO_EMAIL_URL", f"user:{MAIL_PASSWORD}@mail.example.com:587", "has no known scheme:"),
        ("DJANGO_EMAIL_URL", f"smtp://user:{MAIL_PASSWORD}@mail.example.com", "would send its password unencrypted"),
        ("DJANGO_EMAIL_URL", f"smtp+tls://user:{MAIL_PASSWORD}@mail.example.com:99999", "has a port that is not a number"),
        ("DJANGO_EMAIL_URL", f"smtp+tls://user:{MAIL_PASSWORD}@mail.example.com:58x", "has a port that is not a number"),
        ("DJANGO_EMAIL_URL", f"smtp+tls://user:{MAIL_PASSWORD}@", "names no mail server host"),
        ("DJANGO_EMAIL_URL", f"smtp+ssl://user:{MAIL_PASSWORD}@mail.example.com/inbox?x=1", "has a path, query or fragment"),
        ("DJANGO_EMAIL_URL", f"smtp+ssl://:{MAIL_PASSWORD}@mail.example.com", "has a password but no user name"),
        ("DJANGO_EMAIL_URL", f"smtp+ssl://user:{MAIL_PASSWORD}%0d%0aQUIT@mail.example.com", "holds a control character"),
        ("DJANGO_ADMINS", "Ops Team <ops@example.com>", "entry 1 holds a name, spaces or a line break"),
        ("DJANGO_ADMINS", "ops@example.com,nobody", "entry 2 'nobody' is not an email address"),
        ("DJANGO_ADMINS", "ops@example.com;evil@example.net", "entry 1 'ops@example.com;evil@example.net' is not"),
        ("DJANGO_SERVER_EMAIL", "errors@example.com\nBcc: everyone@example.net", "holds a name, spaces or a line break"),
        ("DJANGO_SERVER_EMAIL", "root", "'root' is not an email address"),
        ("DJANGO_DEFAULT_FROM_EMAIL", "My Site <noreply@example.com>", "holds a name, spaces or a line break"),
        ("DJANGO_DEFAULT_FROM_EMAIL", "noreply@-example.com", "'noreply@-example.com' is not an email"),
    ],
)  # fmt: skip
def test_a_bad_mail_or_fallback_value_stops_gunicorn_without_printing_secrets(
    served, variable, value, problem
):
    project, python = served
    result = gunicorn(project, python, valid_env(**{variable: value}))
    assert_stopped_with(result, f"{variable} {problem}")
    output = result.stdout + result.stderr
    assert MAIL_PASSWORD not in output
    if variable == "DJANGO_SECRET_KEY_FALLBACKS":
        for key in value.split(","):
            assert key not in output


def test_good_mail_and_fallback_values_still_boot(served):
    """The refusals above are about the values: well-formed ones serve, password and all."""
    project, python = served
    env = valid_env(
        DJANGO_SECRET_KEY_FALLBACKS=f"{SECOND_KEY}, {SECOND_KEY[::-1]}",
        DJANGO_EMAIL_URL=f"smtp+tls://user%40example.com:{MAIL_PASSWORD}%2F@mail.example.com",
        DJANGO_ADMINS="ops@example.com, oncall@example.com",
        DJANGO_SERVER_EMAIL="errors@example.com",
        DJANGO_DEFAULT_FROM_EMAIL="noreply@example.com",
    )
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD == 'hunter2-mail-password/', s.EMAIL_PORT, "
        "s.EMAIL_USE_TLS, len(s.SECRET_KEY_FALLBACKS), s.ADMINS[1][1])"
    )
    result = run(
        [python, "-c", code],
        cwd=project,
        env={**env, "DJANGO_SETTINGS_MODULE": "my_site.settings.production"},
    )
    assert result.stdout.split() == [
        "user@example.com",
        "True",
        "587",
        "True",
        "2",
        "oncall@example.com",
    ], result.stderr
