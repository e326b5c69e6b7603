"""Virtualenvs with every dependency a generated project has, cached per Django series.

Built once per machine under .cache/venvs/ (keyed on the requirements, so a changed
pyproject.toml builds a new one) and locked against concurrent pytest-xdist workers.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from .paths import CACHE
from .rendering import render

# Python interpreters for each Django series; 6.x needs Python 3.12 or later.
PYTHONS = {"5.2": ["python3.11", "python3"], "6.1": ["python3.13", "python3.12"]}


def find_python(series: str) -> str:
    """An installed interpreter for a Django series: pyenv's first, then the PATH's."""
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
    """
    probe = render(
        template, workdir / f"probe-{series}", django_version=series, database="postgres",
        proxy="load_balancer",
    )  # fmt: skip
    requirements = sorted(project_requirements(probe / "pyproject.toml"))
    return cached_venv(f"django-{series}", requirements, find_python(series)) / "bin" / "python"


def cached_venv(name: str, requirements: list[str], python: str) -> Path:
    """A virtualenv under .cache/venvs/ with `requirements`, built once per machine.

    Keyed on the requirements, so a changed list builds a new one. Safe to call from
    several processes at once: the first builds, the others wait.
    """
    key = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:10]
    venv = CACHE / "venvs" / f"{name}-{key}"
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "venvs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "ready").exists():
            shutil.rmtree(venv, ignore_errors=True)
            env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
            uv = [sys.executable, "-m", "uv"]
            subprocess.run([*uv, "venv", "-q", "--python", python, str(venv)], check=True, env=env)
            target = str(venv / "bin" / "python")
            subprocess.run(
                [*uv, "pip", "install", "-q", "--python", target, *requirements],
                check=True,
                env=env,
            )
            (venv / "ready").write_text("\n".join(requirements))
    return venv
