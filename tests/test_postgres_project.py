"""The postgres answer works against a real PostgreSQL server, in both settings layouts.

The project's own .env names a server that does not exist here; DATABASE_URL in the
real environment wins over it, as it would on a server.
"""

from __future__ import annotations

import pytest

from .postgres import postgres_database, postgres_server  # noqa: F401
from .support.processes import run
from .support.project import settings_module

LAYOUTS = ["split", "single"]


@pytest.fixture(scope="module", params=LAYOUTS)
def migrated(request, rendered, project_python, postgres_database):  # noqa: F811
    """A postgres project migrated with its production settings into a fresh database."""
    layout = request.param
    project = rendered(database="postgres", settings_layout=layout)
    python = project_python("5.2")
    url = postgres_database("migrate")
    env = {
        "DJANGO_SETTINGS_MODULE": settings_module({"settings_layout": layout}),
        "DATABASE_URL": url,
    }
    result = run([python, "manage.py", "migrate", "--noinput"], cwd=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return project, python, env, url


def test_production_settings_migrate_a_real_postgresql_database(migrated, postgres_server):  # noqa: F811
    _, _, _, url = migrated
    database = url.rsplit("/", 1)[1]
    applied = postgres_server.psql(
        "SELECT count(*) FROM django_migrations WHERE app IN ('auth', 'admin', 'sessions')",
        database=database,
    )
    assert int(applied) >= 10
    assert postgres_server.psql("SELECT to_regclass('public.auth_user')", database=database) == (
        "auth_user"
    )


def test_check_with_the_database_passes_on_postgresql(migrated):
    project, python, env, _ = migrated
    result = run(
        [
            python,
            "manage.py",
            "check",
            "--deploy",
            "--database",
            "default",
            "--fail-level",
            "WARNING",
        ],
        cwd=project,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    vendor = run(
        [
            python,
            "manage.py",
            "shell",
            "--verbosity=0",
            "--command",
            "from django.db import connection; print(connection.vendor)",
        ],
        cwd=project,
        env=env,
    )
    assert vendor.stdout.strip() == "postgresql", vendor.stdout + vendor.stderr


def test_the_generated_test_suite_passes_on_postgresql(migrated, postgres_server):  # noqa: F811
    project, python, _, url = migrated
    database = url.rsplit("/", 1)[1]
    result = run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--create-db"],
        cwd=project,
        env={"DATABASE_URL": url},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    # pytest-django ran the suite in its own test database on this server.
    assert f"database=test_{database}" in postgres_server.log()
