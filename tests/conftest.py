"""Fixtures that render the template and give its projects a Python to run in.

Rendered projects and virtualenvs are shared: a project is rendered once per
answer set per worker, and a virtualenv once per Django version for the whole
machine (tests/support/venvs.py). The helpers themselves live in tests/support/,
shared with the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .support.git import commit_as_tests, git
from .support.paths import ARTIFACTS, ROOT
from .support.processes import run
from .support.rendering import SNAPSHOT_VERSION, answers_key, render, snapshot_template
from .support.validators import validation_paths as make_validation_paths
from .support.venvs import ensure_project_venv

# Names test modules imported from here before tests/support/ existed.
__all__ = ["ROOT", "SNAPSHOT_VERSION", "commit_as_tests", "git", "run"]


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory) -> Path:
    return snapshot_template(tmp_path_factory.mktemp("template") / "django-shipshape")


@pytest.fixture(scope="session")
def validation_paths(tmp_path_factory) -> dict[str, str]:
    """app_dir, tls_cert and tls_key answers that the deploy files' validators can check here."""
    return make_validation_paths(tmp_path_factory.mktemp("validation"))


@pytest.fixture(scope="session")
def rendered(template_repo, tmp_path_factory) -> Callable[..., Path]:
    """Render a project for these answers, once per worker; treat the result as read-only."""
    projects: dict[str, Path] = {}

    def get(**answers) -> Path:
        key = answers_key(answers)
        if key not in projects:
            dest = tmp_path_factory.mktemp("project") / answers.get("project_slug", "my_site")
            projects[key] = render(template_repo, dest, **answers)
        return projects[key]

    return get


@pytest.fixture
def fresh_project(template_repo, tmp_path) -> Callable[..., Path]:
    """Render a project of this test's own, free to change."""

    def get(**answers) -> Path:
        return render(template_repo, tmp_path / answers.get("project_slug", "my_site"), **answers)

    return get


@pytest.fixture(scope="session")
def project_python(template_repo, tmp_path_factory) -> Callable[[str], Path]:
    """`project_python("5.2")`: a Python with every dependency generated projects have."""
    pythons: dict[str, Path] = {}

    def get(series: str) -> Path:
        if series not in pythons:
            workdir = tmp_path_factory.mktemp("requirements")
            pythons[series] = ensure_project_venv(template_repo, series, workdir)
        return pythons[series]

    return get


@pytest.fixture
def artifacts_dir(request) -> Iterator[Path]:
    """A folder under artifacts/ for what a failing test leaves behind for a person to look at."""
    path = ARTIFACTS / request.node.name.replace("/", "_")
    yield path
