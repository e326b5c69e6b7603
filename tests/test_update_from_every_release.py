"""A project updates from every release CHANGELOG.md lists to the working tree.

The template repository here is built from this repository's own history: each release
the changelog lists (`## 0.2.0 (commit 6dd264e)`) is that commit's tree, tagged with its
version, and the working tree is the next release. A project is rendered from each
release, committed, changed the way a team changes one, and updated: copier must leave no
conflict, keep every edit and .env, record the new release, and the updated project must
pass `check --deploy`.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from packaging.version import Version

from .support.git import commit_all, git, init_repo, listed_files, new_repo, release
from .support.paths import ROOT
from .support.project import check_deploy, edit, recorded_answers, settings_module
from .support.rendering import render, update

CHANGELOG = ROOT / "CHANGELOG.md"
RELEASE_HEADING = re.compile(r"^## (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,40})\)$", re.MULTILINE)

pytestmark = pytest.mark.xdist_group("update-from-every-release")

ANSWER_SETS = {
    "nginx-split-systemd": {},
    "load_balancer-single-compose": {
        "proxy": "load_balancer", "settings_layout": "single", "deployment": "compose",
        "gunicorn_bind": "0.0.0.0:8000",
    },
}  # fmt: skip


def listed_releases() -> list[tuple[str, str]]:
    """(version, commit) of every release the changelog lists, oldest first."""
    releases = RELEASE_HEADING.findall(CHANGELOG.read_text())
    return sorted(releases, key=lambda release: Version(release[0]))


def next_version(releases: list[tuple[str, str]]) -> str:
    newest = Version(releases[-1][0])
    return f"{newest.major}.{newest.minor + 1}.0"


def replace_tree(repo: Path, files: dict[str, bytes]) -> None:
    """Make the repository's working tree exactly `files` (its .git left alone)."""
    for path in repo.iterdir():
        if path.name != ".git":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def files_at(commit: str) -> dict[str, bytes]:
    """Every file of this repository at `commit`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def working_tree() -> dict[str, bytes]:
    """The working tree as the tests render it: tracked and untracked, not ignored."""
    return {
        name: (ROOT / name).read_bytes()
        for name in listed_files(ROOT, untracked=True)
        if (ROOT / name).is_file()
    }


@pytest.fixture(scope="session")
def every_release(tmp_path_factory) -> dict:
    """A template repository with every listed release tagged, and the working tree next."""
    releases = listed_releases()
    repo = tmp_path_factory.mktemp("every-release") / "django-shipshape"
    repo.mkdir()
    init_repo(repo)
    for version, commit in releases:
        replace_tree(repo, files_at(commit))
        release(repo, version, f"release {version} (commit {commit})")
    head = next_version(releases)
    replace_tree(repo, working_tree())
    release(repo, head, f"release {head} (the working tree)")
    return {"repo": repo, "releases": [v for v, _ in releases], "head": head}


def team_edits(project: Path, answers: dict) -> dict[str, str]:
    """What a team changes in its first weeks; each file with a line that proves the edit."""
    blog = project / "blog"
    blog.mkdir()
    (blog / "__init__.py").write_text("")
    (blog / "apps.py").write_text(
        'from django.apps import AppConfig\n\n\nclass BlogConfig(AppConfig):\n    name = "blog"\n'
    )
    split = answers.get("settings_layout", "split") == "split"
    settings = project / ("my_site/settings/base.py" if split else "my_site/settings.py")
    edit(settings, '    "shipshape",\n]', '    "shipshape",\n    "blog",\n]')
    edit(
        project / "my_site/urls.py",
        '    path("", TemplateView.as_view(template_name="home.html"), name="home"),\n',
        '    path("", TemplateView.as_view(template_name="home.html"), name="home"),\n'
        "    # The blog, once it has pages.\n",
    )
    edit(
        project / "pyproject.toml",
        '    "ruff>=0.8",\n',
        '    "ruff>=0.8",\n    "factory-boy>=3.3",\n',
    )
    edit(
        project / ".github/workflows/ci.yml",
        "    timeout-minutes: 15\n",
        "    timeout-minutes: 25\n",
    )
    kept = {
        str(settings.relative_to(project)): '    "blog",\n',
        "my_site/urls.py": "    # The blog, once it has pages.\n",
        "pyproject.toml": '    "factory-boy>=3.3",\n',
        ".github/workflows/ci.yml": "    timeout-minutes: 25\n",
        "blog/apps.py": 'name = "blog"',
    }
    if answers.get("proxy", "nginx") == "nginx":
        conf = project / "deploy/nginx/my_site.conf"
        robots = (
            "    # Crawlers get their answer from nginx, never from Django.\n"
            "    location = /robots.txt {\n"
            '        return 200 "User-agent: *\\nDisallow:\\n";\n'
            "    }\n\n"
        )
        edit(
            conf,
            "    location / {\n        proxy_pass",
            robots + "    location / {\n        proxy_pass",
        )
        kept["deploy/nginx/my_site.conf"] = robots
    return kept


def conflicts(project: Path) -> list[str]:
    git("add", "--all", cwd=project)
    markers = subprocess.run(
        ["git", "grep", "--cached", "-l", "-E", "^(<{7}|>{7}) (before|after) updating"],
        cwd=project, capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    rejected = git("ls-files", "--cached", "--", "*.rej", cwd=project).split()
    return markers + rejected


def releases_and_answers():
    return [
        pytest.param(version, answers, id=f"{version}-{name}")
        for version, _ in listed_releases()
        for name, answers in ANSWER_SETS.items()
    ]


def test_the_changelog_lists_releases_cut_from_this_repositorys_history():
    releases = listed_releases()
    assert len(releases) >= 3, releases
    for version, commit in releases:
        kind = git("cat-file", "-t", commit, cwd=ROOT).strip()
        assert kind == "commit", (version, commit)
        assert git("merge-base", "--is-ancestor", commit, "HEAD", cwd=ROOT) == ""
    # In history order, oldest first.
    commits = [commit for _, commit in releases]
    for older, newer in zip(commits, commits[1:], strict=False):
        git("merge-base", "--is-ancestor", older, newer, cwd=ROOT)
    assert "## Unreleased" in CHANGELOG.read_text()


@pytest.mark.parametrize(("version", "answers"), releases_and_answers())
def test_a_teams_project_updates_from_a_listed_release_to_the_working_tree(
    every_release, project_python, tmp_path, version, answers
):
    project = render(every_release["repo"], tmp_path / "my_site", vcs_ref=version, **answers)
    new_repo(project, f"generated from django-shipshape {version}")
    env = (project / ".env").read_bytes()
    kept = team_edits(project, answers)
    commit_all(project, "the team's first weeks")

    update(project, every_release["head"])

    assert recorded_answers(project)["_commit"] == every_release["head"]
    assert conflicts(project) == []
    for path, line in kept.items():
        assert line in (project / path).read_text(), path
    assert (project / ".env").read_bytes() == env
    # The working tree's workflows arrived beside the team's edit of ci.yml.
    workflows = project / ".github/workflows"
    assert "persist-credentials: false" in (workflows / "ci.yml").read_text()
    assert (workflows / "template-update.yml").is_file()
    # The update never writes .env, so the mail variables this release reads are unset:
    # the release gate says so, as CHANGELOG.md tells the team, and nothing else.
    python, module = project_python("5.2"), settings_module(answers)
    check = check_deploy(python, project, module)
    warned = set(re.findall(r"\((\w+\.\w+)\)", check.stdout + check.stderr))
    assert check.returncode == 1 and warned == {"shipshape.W016", "shipshape.W018"}, check.stderr
    # Once .env sets them, as the changelog says, the gate is clean.
    with (project / ".env").open("a") as env_file:
        env_file.write(
            "DJANGO_ADMINS=ops@example.com\nDJANGO_SERVER_EMAIL=django@example.com\n"
            "DJANGO_DEFAULT_FROM_EMAIL=noreply@example.com\n"
        )
    check = check_deploy(python, project, module)
    assert check.returncode == 0, check.stdout + check.stderr
