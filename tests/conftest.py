"""Fixtures that render the template and give its projects a Python to run in.

Every test renders from a git-tagged snapshot of the working tree, so uncommitted
work is what gets tested and `_commit` in the answers file is a real version.
Rendered projects and virtualenvs are shared: a project is rendered once per
answer set per worker, and a virtualenv once per Django version for the whole
machine (under .cache/, locked against concurrent pytest-xdist workers).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import copier
import pytest
from copier import Settings

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
SNAPSHOT_VERSION = "0.1.0"

# Python interpreters for each Django series; 6.x needs Python 3.12 or later.
PYTHONS = {"5.2": ["python3.11", "python3"], "6.1": ["python3.13", "python3.12"]}


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout


def snapshot_template(dest: Path, version: str = SNAPSHOT_VERSION) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) into a tagged git repo."""
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT)
    dest.mkdir(parents=True)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    commit_as_tests(dest, f"snapshot {version}")
    git("tag", version, cwd=dest)
    return dest


def commit_as_tests(repo: Path, message: str) -> None:
    git(
        "-c", "user.name=tests", "-c", "user.email=tests@example.invalid",
        "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", message,
        cwd=repo,
    )  # fmt: skip


def render(template: Path, dest: Path, vcs_ref: str = SNAPSHOT_VERSION, **answers) -> Path:
    """Render like `copier copy --trust --defaults -d ...`, isolated from user settings."""
    copier.run_copy(
        str(template),
        dest,
        data=answers,
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref=vcs_ref,
        settings=Settings(),
    )
    return dest


def update(project: Path, vcs_ref: str) -> Path:
    """Update like `copier update --trust --defaults --conflict inline`, isolated from user settings."""
    copier.run_update(
        project,
        overwrite=True,
        unsafe=True,
        defaults=True,
        conflict="inline",
        vcs_ref=vcs_ref,
        quiet=True,
        settings=Settings(),
    )
    return project


def answers_key(answers: dict) -> str:
    return hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()[:12]


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory) -> Path:
    return snapshot_template(tmp_path_factory.mktemp("template") / "django-shipshape")


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


def _find_python(series: str) -> str:
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for name in PYTHONS[series]:
        for version_dir in sorted(pyenv_root.glob("versions/*"), reverse=True):
            candidate = version_dir / "bin" / name
            if candidate.exists():
                return str(candidate)
        if found := shutil.which(name):
            probe = subprocess.run([found, "-c", "pass"], capture_output=True, check=False)
            if probe.returncode == 0:
                return found
    wanted = ", ".join(PYTHONS[series])
    raise RuntimeError(f"Django {series} needs one of {wanted}; none is installed")


def project_requirements(pyproject: Path) -> list[str]:
    data = tomllib.loads(pyproject.read_text())
    return [*data["project"]["dependencies"], *data["dependency-groups"]["dev"]]


def ensure_project_venv(template: Path, series: str, workdir: Path) -> Path:
    """The python of a cached virtualenv with every generated-project dependency for a series.

    The requirements come from the pyproject.toml of a project rendered with every
    optional dependency, so building the virtualenv also proves that file installs.
    Safe to call from several processes at once: the first builds, the others wait.
    """
    probe = render(
        template, workdir / f"probe-{series}", django_version=series, database="postgres",
        proxy="load_balancer",
    )  # fmt: skip
    requirements = sorted(project_requirements(probe / "pyproject.toml"))
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:10]
    venv = CACHE / "venvs" / f"django-{series}-{key}"
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "venvs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "ready").exists():
            shutil.rmtree(venv, ignore_errors=True)
            env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
            uv = [sys.executable, "-m", "uv"]
            python = _find_python(series)
            subprocess.run([*uv, "venv", "-q", "--python", python, str(venv)], check=True, env=env)
            target = str(venv / "bin" / "python")
            subprocess.run(
                [*uv, "pip", "install", "-q", "--python", target, *requirements],
                check=True,
                env=env,
            )
            (venv / "ready").write_text("\n".join(requirements))
    return venv / "bin" / "python"


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


def run(
    args: list, cwd: Path, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run a command in a generated project with a clean environment, capturing output."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def artifacts_dir(request) -> Iterator[Path]:
    """A folder under artifacts/ for what a failing test leaves behind for a person to look at."""
    path = ROOT / "artifacts" / request.node.name.replace("/", "_")
    yield path
