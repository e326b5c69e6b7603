"""Sessions: `nox -s tests` (the whole suite, as CI runs it), `browser`, `deploy`, `lint`, `demo`,
`bench`."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
TEST_REQUIREMENTS = nox.project.dependency_groups(PYPROJECT, "test")


@nox.session
def tests(session: nox.Session) -> None:
    """Every test, every answer combination: what CI runs. Installs missing system packages."""
    session.run("bash", str(ROOT / ".ci/system-packages"), external=True)
    session.install(*TEST_REQUIREMENTS)
    args = session.posargs or ["-m", "slow or not slow"]
    session.run("pytest", "-n", "auto", "--durations=15", *args)


@nox.session
def browser(session: nox.Session) -> None:
    """Only the browser tests: Debian's Chromium logs in through each proxy over HTTPS."""
    session.run("bash", str(ROOT / ".ci/system-packages"), external=True)
    session.install(*TEST_REQUIREMENTS)
    session.run("pytest", "-n", "auto", "--durations=10", "tests/browser", *session.posargs)


@nox.session
def deploy(session: nox.Session) -> None:
    """Only the deploy tests: compose.yaml and the Dockerfile on the suite's own Docker engine."""
    session.run("bash", str(ROOT / ".ci/system-packages"), external=True)
    session.install(*TEST_REQUIREMENTS)
    session.run("pytest", "-n", "auto", "--durations=10", "tests/deploy", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the template's own Python (generated Python is linted by the tests)."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """Render the defaults into demo/ and run the generated project's deploy checks."""
    session.install("copier", "copier-template-extensions")
    target = ROOT / "demo"
    shutil.rmtree(target, ignore_errors=True)
    session.run(
        "copier", "copy", "--trust", "--defaults", "--vcs-ref", "HEAD", str(ROOT), str(target)
    )
    generated = nox.project.load_toml(target / "pyproject.toml")
    session.install(*generated["project"]["dependencies"])
    session.chdir(target)
    session.run(
        "python", "manage.py", "check", "--deploy", "--fail-level", "WARNING",
        env={"DJANGO_SETTINGS_MODULE": "my_site.settings.production"},
    )  # fmt: skip


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against baselines (benchmarks/): a table, and benchmarks/results/latest.json."""
    session.run("bash", str(ROOT / ".ci/system-packages"), external=True)
    session.run("bash", str(ROOT / "benchmarks/install-wrk.sh"), external=True)
    session.install(*TEST_REQUIREMENTS)
    # From the repository's root (nox runs there), where `benchmarks` and `tests` import.
    session.run("python", "-m", "benchmarks", *session.posargs)
