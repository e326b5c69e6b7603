"""copier's declared minimum is the truth: the oldest copier we allow renders what the newest does.

copier.yml's `_min_copier_version` and pyproject.toml's floor name one version. With exactly
that copier (and the oldest copier-template-extensions we allow), the defaults and a retrofit
render byte for byte what the copier running the suite renders: `ask: false`, a multi-line
`_exclude` and the Jinja extension all work there, or this test fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from functools import partial
from pathlib import Path

import pytest
import yaml

from .support.paths import ROOT
from .support.project import tree, write_files
from .support.rendering import SNAPSHOT_VERSION
from .support.venvs import cached_venv

pytestmark = pytest.mark.xdist_group("copier-minimum")


def declared_minimums() -> dict[str, str]:
    """The floors pyproject.toml declares, by package name."""
    floors = {}
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]:
        name, floor = re.match(r"([a-z-]+)>=([0-9.]+)", requirement).groups()
        floors[name] = floor
    return floors


def test_copier_yml_and_pyproject_declare_the_same_minimum():
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert config["_min_copier_version"] == declared_minimums()["copier"]


@pytest.fixture(scope="module")
def oldest_copier() -> Path:
    """The copier executable of a virtualenv with exactly the declared minimums."""
    pins = [f"{name}=={floor}" for name, floor in sorted(declared_minimums().items())]
    return cached_venv("-".join(pins).replace("==", "-"), pins, sys.executable) / "bin" / "copier"


NEWEST = [sys.executable, "-m", "copier"]


def copy(copier: list, template: Path, dest: Path, *data: str) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    settings = dest.parent / f"{dest.name}-settings.yml"
    settings.write_text("{}\n")
    args = [*copier, "copy", "--trust", "--defaults", "--vcs-ref", SNAPSHOT_VERSION]
    for item in data:
        args += ["-d", item]
    result = subprocess.run(
        [*map(str, args), str(template), str(dest)],
        capture_output=True,
        text=True,
        env={**os.environ, "COPIER_SETTINGS_PATH": str(settings), "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dest


# An existing project to retrofit, with the files copier must never touch.
EXISTING_PROJECT = {
    "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings')\n",
    "shop/__init__.py": "",
    "shop/settings.py": "SECRET_KEY = 'dev'\n",
    "shop/urls.py": "urlpatterns = []\n",
    "shop/wsgi.py": "# the team's own\n",
    "README.md": "# Shop\n",
    "pyproject.toml": "[project]\nname = 'shop'\n",
}
# .env holds a secret key that is new on every copy.
RENDERED = partial(tree, skip=(".env",))


@pytest.mark.parametrize(
    "answers",
    [pytest.param((), id="defaults"), pytest.param(("deployment=compose", "gunicorn_bind=0.0.0.0:8000"), id="compose")],
)  # fmt: skip
def test_the_oldest_allowed_copier_renders_what_the_newest_does(
    oldest_copier, template_repo, tmp_path, answers
):
    oldest = copy([oldest_copier], template_repo, tmp_path / "oldest" / "my_site", *answers)
    newest = copy(NEWEST, template_repo, tmp_path / "newest" / "my_site", *answers)
    assert RENDERED(oldest) == RENDERED(newest)
    recorded = yaml.safe_load((oldest / ".copier-answers.yml").read_text())
    assert "gunicorn_bind" in recorded, "ask: false answers are recorded, not asked"


def test_the_oldest_allowed_copier_retrofits_without_touching_the_projects_files(
    oldest_copier, template_repo, tmp_path
):
    data = ("retrofit=true", "project_slug=shop")
    oldest = write_files(tmp_path / "oldest" / "shop", EXISTING_PROJECT)
    team = RENDERED(oldest)
    copy([oldest_copier], template_repo, oldest, *data)
    newest = copy(NEWEST, template_repo, write_files(tmp_path / "newest" / "shop", EXISTING_PROJECT), *data)  # fmt: skip
    assert RENDERED(oldest) == RENDERED(newest)
    assert {name: RENDERED(oldest)[name] for name in team} == team
