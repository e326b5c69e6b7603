"""A project generated before the answers model existed updates to today's template.

Release 0.1.0 of this test's template is the last landed commit whose answers were
validated by Jinja macros and a refusing task; 0.2.0 is the working tree, with
extensions/. The project is generated from 0.1.0, edited by its team, and updated:
copier must load the new extension, accept the recorded answers, keep the edits and .env,
and leave no conflict.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from .support.git import commit_all, git, init_repo, new_repo, release
from .support.paths import ROOT
from .support.project import edit, recorded_answers
from .support.rendering import render, snapshot_template, update

# The last release whose answers were checked in Jinja (includes/answers.jinja).
BEFORE_THE_MODEL = "c48174c"

pytestmark = pytest.mark.xdist_group("update-from-before-the-model")


def template_at(commit: str, dest: Path) -> Path:
    """The template as it was at `commit`, from this repository's own history."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True
    ).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> Path:
    """0.1.0 from before the answers model, 0.2.0 the working tree, in one template repo."""
    repo = template_at(BEFORE_THE_MODEL, tmp_path_factory.mktemp("releases") / "template")
    release(init_repo(repo), "0.1.0")
    today = snapshot_template(tmp_path_factory.mktemp("today") / "template")
    for path in repo.iterdir():
        if path.name != ".git":
            git("rm", "-r", "-q", path.name, cwd=repo)
    git("--work-tree", str(today), "add", "-A", cwd=repo)
    git("checkout", "--", ".", cwd=repo)
    release(repo, "0.2.0")
    return repo


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {"proxy": "load_balancer", "lb_trusted_cidrs": "10.20.0.0/16", "deployment": "compose"},
            id="load_balancer-compose",
        ),
    ],
)
def test_a_project_from_before_the_answers_model_updates(releases, tmp_path, answers):
    project = render(releases, tmp_path / "my_site", vcs_ref="0.1.0", **answers)
    new_repo(project, "generated from 0.1.0")
    env = (project / ".env").read_bytes()
    edit(project / "my_site/urls.py", "urlpatterns = [", "urlpatterns = [  # the team's")
    commit_all(project, "the team's edit")

    update(project, "0.2.0")

    assert recorded_answers(project)["_commit"] == "0.2.0"
    assert (project / ".env").read_bytes() == env
    assert "urlpatterns = [  # the team's" in (project / "my_site/urls.py").read_text()
    markers = subprocess.run(["git", "grep", "-l", "-e", "^<<<<<<< "], cwd=project, check=False)
    assert markers.returncode == 1, "no file is left with conflict markers"
    assert not list(project.rglob("*.rej"))
    if "lb_trusted_cidrs" in answers:
        gunicorn = (project / "deploy/gunicorn.conf.py").read_text()
        assert 'forwarded_allow_ips = "10.20.0.0/16"' in gunicorn
