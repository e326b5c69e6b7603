"""`copier update` that changes an answer never silently deletes a team's edits.

Switching settings_layout, proxy, deployment or ci makes copier delete every file only the
old answers render, edited or not, and exit 0. The template refuses such a switch
before anything is written, naming each changed file and the way through (rename it,
commit, update again), and lets the same switch through on a project nobody edited.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .support.git import commit_all, git, new_repo
from .support.project import edit, recorded_answers
from .support.rendering import SNAPSHOT_VERSION, copier_cli

BASE = "my_site/settings/base.py"
PRODUCTION = "my_site/settings/production.py"
NGINX_CONF = "deploy/nginx/my_site.conf"
UNIT = "deploy/systemd/my_site.service"
WORKFLOW = ".github/workflows/ci.yml"


def team_edits_settings(project: Path) -> None:
    edit(project / BASE, '    "shipshape",\n]', '    "shipshape",\n    "blog",\n]')
    text = (project / PRODUCTION).read_text()
    (project / PRODUCTION).write_text(text + '\n# Our mail relay.\nEMAIL_HOST = "relay.internal"\n')


def team_edits_nginx(project: Path) -> None:
    edit(project / NGINX_CONF, "client_max_body_size 10m;", "client_max_body_size 100m;")


def team_edits_unit(project: Path) -> None:
    text = (project / UNIT).read_text()
    (project / UNIT).write_text(text.replace("[Service]\n", "[Service]\nNice=5\n", 1))


def team_edits_workflow(project: Path) -> None:
    edit(project / WORKFLOW, "    timeout-minutes: 15\n", "    timeout-minutes: 25\n")


# question, new value, extra answers the switch needs, the team's edits, the files they touch
SWITCHES = {
    "split-to-single": ({"settings_layout": "single"}, team_edits_settings, [BASE, PRODUCTION]),
    "nginx-to-caddy": ({"proxy": "caddy"}, team_edits_nginx, [NGINX_CONF]),
    "systemd-to-compose": (
        {"deployment": "compose", "gunicorn_bind": "0.0.0.0:8000"},
        team_edits_unit,
        [UNIT],
    ),
    "github-to-gitlab": ({"ci": "gitlab"}, team_edits_workflow, [WORKFLOW]),
}


def committed(project: Path, edits=None, together: bool = False) -> Path:
    """The project in git; the team's edits in a commit of their own, or in the first one."""
    if together and edits:
        edits(project)
    new_repo(project, "generated from django-shipshape")
    if edits and not together:
        edits(project)
        commit_all(project, "the team's edits")
    return project


def update_with(project: Path, answers: dict) -> object:
    data = [arg for name, value in answers.items() for arg in ("-d", f"{name}={value}")]
    return copier_cli(
        "update", "--trust", "--defaults", "--conflict", "inline", "--vcs-ref", SNAPSHOT_VERSION,
        *data, cwd=project, settings_dir=project.parent,
    )  # fmt: skip


def snapshot(project: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(project)): p.read_bytes()
        for p in sorted(project.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


@pytest.mark.parametrize("switch", SWITCHES)
def test_a_switch_that_would_delete_edited_files_is_refused(fresh_project, switch):
    answers, edits, touched = SWITCHES[switch]
    project = committed(fresh_project(), edits)
    before = snapshot(project)
    result = update_with(project, answers)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    refusals = [line for line in result.stderr.splitlines() if line.startswith("refused: ")]
    [question] = [name for name in answers if name != "gunicorn_bind"]
    assert len(refusals) == 1, result.stderr
    line = refusals[0]
    assert line.startswith(f"refused: {question}: changing ")
    for path in touched:
        assert path in line
    assert f"git mv {touched[0]} {touched[0]}.mine" in line
    # Nothing written: the edits, the answers, the index, every file as it was.
    assert snapshot(project) == before
    assert git("status", "--porcelain", cwd=project) == ""


def test_edits_committed_with_the_generated_files_are_still_found(fresh_project):
    """The team's edits are judged against the last version's render, not git history alone."""
    project = committed(fresh_project(), team_edits_nginx, together=True)
    result = update_with(project, {"proxy": "caddy"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"would delete {NGINX_CONF}, changed since the last update" in result.stderr
    assert (project / NGINX_CONF).is_file()


@pytest.mark.parametrize("switch", SWITCHES)
def test_the_same_switch_on_an_unedited_project_goes_through(fresh_project, switch):
    answers, _, touched = SWITCHES[switch]
    project = committed(fresh_project())
    result = update_with(project, answers)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in touched:
        assert not (project / path).exists()
    recorded = recorded_answers(project)
    assert {name: recorded[name] for name in answers} == answers


def test_edits_elsewhere_do_not_block_a_switch(fresh_project):
    def edit_readme(project: Path) -> None:
        (project / "README.md").write_text((project / "README.md").read_text() + "\nOurs.\n")

    project = committed(fresh_project(), edit_readme)
    result = update_with(project, {"proxy": "caddy"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "README.md").read_text().endswith("\nOurs.\n")
    assert (project / "deploy/caddy/Caddyfile").is_file()


def test_the_way_through_keeps_the_renamed_files(fresh_project):
    """What the refusal says to do works: rename, commit, update again."""
    project = committed(fresh_project(), team_edits_settings)
    edited = {path: (project / path).read_bytes() for path in (BASE, PRODUCTION)}
    assert update_with(project, {"settings_layout": "single"}).returncode == 1
    for path in edited:
        git("mv", path, f"{path}.mine", cwd=project)
    commit_all(project, "keep our settings aside")
    result = update_with(project, {"settings_layout": "single"})
    assert result.returncode == 0, result.stdout + result.stderr
    for path, content in edited.items():
        assert (project / f"{path}.mine").read_bytes() == content
    assert (project / "my_site/settings.py").is_file()
    assert not (project / "my_site/settings/development.py").exists()
