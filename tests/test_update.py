"""`copier update` carries template releases into a project a team has been changing.

The template's releases are built as git tags in a temporary copy of the working
tree, each from a real change to the template made here, so the tests do not
depend on the repository's history:

- 0.1.0: the working tree as it is;
- 0.2.0: a reworded settings comment, a new nginx directive, a reworded
  .env.example comment, and a new upload limit in nginx (the line the team also
  changed: the one overlapping edit);
- 0.3.0: DATABASE_URL renamed DJANGO_DATABASE_URL everywhere, with the
  `_migrations` entry that renames it in each project's .env.

A project is rendered at 0.1.0, committed, edited the way a team edits one,
committed again, and updated.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest
import yaml

from .support.binaries import venv_tool
from .support.git import commit_all, git, listed_files, new_repo, release
from .support.processes import run
from .support.project import check_deploy, edit, recorded_answers, setting, settings_module
from .support.rendering import copier_cli, render, snapshot_template, update

# With --dist loadgroup, the tests of one release share a worker and its fixtures.
AT_0_2_0 = pytest.mark.xdist_group("update-0.2.0")
AT_0_3_0 = pytest.mark.xdist_group("update-0.3.0")

NGINX_CONF = "deploy/nginx/my_site.conf"
BASE_SETTINGS = "my_site/settings/base.py"
# The security settings production and test share: where a team tightens a header.
SECURITY_SETTINGS = "my_site/settings/security.py"

# Built from parts, so that this file does not hold the markers it looks for.
OURS, THEIRS = "<" * 7 + " before updating", ">" * 7 + " after updating"
CONFLICT_MARKER = re.compile(f"^({'<' * 7}|{'=' * 7}|{'>' * 7})", re.MULTILINE)


def release_0_2_0(template: Path) -> None:
    """Template changes that touch the files the team edits, mostly elsewhere in them."""
    edit(
        template / "includes/settings/common.py.jinja",
        "# Application definition\n",
        "# Application definition: Django's own apps first, then the project's.\n",
    )
    nginx = template / "template/deploy/{% if proxy == 'nginx' %}nginx{% endif %}"
    edit(
        nginx / "{{project_slug}}.conf.jinja",
        "        proxy_read_timeout 60s;\n",
        "        proxy_read_timeout 60s;\n"
        "        # Room for a page's headers and first kilobytes before spilling to disk.\n"
        "        proxy_buffers 16 16k;\n",
    )
    # The line the team changes too: the overlapping edit.
    edit(
        nginx / "{{project_slug}}.conf.jinja",
        "client_max_body_size 10m;",
        "client_max_body_size 20m;",
    )
    edit(
        template / "template/.env.example.jinja",
        "# true only on a developer's machine; production settings refuse it.\n",
        "# true only on a developer's machine: production settings refuse to start with it.\n",
    )


def release_0_3_0(template: Path) -> None:
    """Every variable gets the DJANGO_ prefix: DATABASE_URL becomes DJANGO_DATABASE_URL."""
    renamed = re.compile(r"(?<![A-Z_])DATABASE_URL\b")
    sources = [template / "hooks/write_env.py", template / "includes", template / "template"]
    for source in sources:
        for path in [source] if source.is_file() else sorted(source.rglob("*")):
            if path.is_file():
                text = path.read_text()
                if renamed.search(text):
                    path.write_text(renamed.sub("DJANGO_DATABASE_URL", text))
    edit(
        template / "copier.yml",
        "_migrations: []\n",
        "_migrations:\n"
        '  - version: "0.3.0"\n'
        "    command:\n"
        '      - "{{ _copier_python }}"\n'
        '      - "{{ _copier_conf.src_path }}/hooks/migrations/rename_env_variables.py"\n'
        '      - "--backup=.env.before-{{ _version_current }}"\n'
        "      - DATABASE_URL=DJANGO_DATABASE_URL\n",
    )


@pytest.fixture(scope="session")
def update_releases(tmp_path_factory) -> Path:
    template = snapshot_template(tmp_path_factory.mktemp("releases") / "django-shipshape")
    release_0_2_0(template)
    release(template, "0.2.0")
    release_0_3_0(template)
    release(template, "0.3.0")
    return template


def team_edits(project: Path) -> None:
    """What a team does to a project in its first weeks."""
    blog = project / "blog"
    blog.mkdir()
    (blog / "__init__.py").write_text("")
    (blog / "apps.py").write_text(
        'from django.apps import AppConfig\n\n\nclass BlogConfig(AppConfig):\n    name = "blog"\n'
    )
    edit(project / BASE_SETTINGS, '    "shipshape",\n]', '    "shipshape",\n    "blog",\n]')
    edit(
        project / SECURITY_SETTINGS,
        'SECURE_REFERRER_POLICY = "same-origin"',
        'SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"',
    )
    edit(
        project / NGINX_CONF,
        "    location / {\n        proxy_pass",
        "    # Crawlers get their answer from nginx, never from Django.\n"
        "    location = /robots.txt {\n"
        '        return 200 "User-agent: *\\nDisallow:\\n";\n'
        "    }\n\n"
        "    location / {\n        proxy_pass",
    )
    edit(project / NGINX_CONF, "client_max_body_size 10m;", "client_max_body_size 100m;")
    # A local database file of the team's choosing: .env is theirs, never tracked.
    edit(
        project / ".env",
        "# DATABASE_URL=sqlite:////absolute/path/db.sqlite3\n",
        f"DATABASE_URL=sqlite:///{project}/site.sqlite3\n",
    )


def committed_project(update_releases: Path, dest: Path) -> Path:
    project = render(update_releases, dest, vcs_ref="0.1.0")
    new_repo(project, "generated from django-shipshape 0.1.0")
    team_edits(project)
    commit_all(project, "blog app, stricter referrer policy, robots.txt, bigger uploads")
    return project


@pytest.fixture(scope="session")
def updated(update_releases, tmp_path_factory) -> dict:
    """The team's project, updated from 0.1.0 to 0.2.0; read-only for the tests.

    Session-scoped, so that a worker builds it once even when it runs other
    modules' tests between these.
    """
    project = committed_project(update_releases, tmp_path_factory.mktemp("update") / "my_site")
    env_before = (project / ".env").read_bytes()
    check_before = check_update(project)
    update(project, "0.2.0")
    return {"project": project, "env_before": env_before, "check_before": check_before}


def check_update(project: Path) -> dict:
    """`copier check-update` as a user runs it, with no user settings."""
    result = copier_cli(
        "check-update", "--output-format", "json", cwd=project, settings_dir=project.parent
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tracked_and_untracked(project: Path) -> list[Path]:
    return [project / name for name in listed_files(project, untracked=True)]


def conflicted_files(project: Path) -> list[str]:
    return sorted(
        str(path.relative_to(project))
        for path in tracked_and_untracked(project)
        if path.is_file() and CONFLICT_MARKER.search(path.read_text(errors="replace"))
    )


@AT_0_2_0
def test_the_teams_edits_survive_the_update(updated):
    project = updated["project"]
    assert (project / "blog/apps.py").exists()
    assert '    "shipshape",\n    "blog",\n]' in (project / BASE_SETTINGS).read_text()
    assert (
        'SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"'
        in (project / SECURITY_SETTINGS).read_text()
    )
    assert "location = /robots.txt {" in (project / NGINX_CONF).read_text()


@AT_0_2_0
def test_the_templates_changes_are_applied(updated):
    project = updated["project"]
    assert (
        "# Application definition: Django's own apps first" in (project / BASE_SETTINGS).read_text()
    )
    assert "        proxy_buffers 16 16k;\n" in (project / NGINX_CONF).read_text()
    assert "production settings refuse to start with it" in (project / ".env.example").read_text()


@AT_0_2_0
def test_changes_that_do_not_overlap_merge_without_markers_or_rejects(updated):
    project = updated["project"]
    assert conflicted_files(project) == [NGINX_CONF]
    assert [p for p in project.rglob("*.rej")] == []
    assert git("status", "--porcelain", "--", "*.orig", cwd=project) == ""


@AT_0_2_0
def test_the_overlapping_change_is_a_clear_inline_conflict(updated):
    text = (updated["project"] / NGINX_CONF).read_text()
    conflict = text[text.index(OURS) : text.index(THEIRS) + len(THEIRS)]
    ours, theirs = conflict.split("\n" + "=" * 7 + "\n")
    assert "client_max_body_size 100m;" in ours
    assert "client_max_body_size 20m;" in theirs
    # Only the overlapping line is in conflict; the rest of the file merged.
    assert conflict.count("\n") <= 4


@AT_0_2_0
def test_env_is_untouched_byte_for_byte(updated):
    project = updated["project"]
    assert (project / ".env").read_bytes() == updated["env_before"]
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600
    assert list(project.glob(".env.before-*")) == []


@AT_0_2_0
def test_no_secret_is_in_any_tracked_file(updated):
    project = updated["project"]
    env = dict(
        line.split("=", 1)
        for line in (project / ".env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    secret = env["DJANGO_SECRET_KEY"]
    assert len(secret) >= 50
    git("check-ignore", "-q", ".env", cwd=project)
    leaks = [p for p in tracked_and_untracked(project) if secret in p.read_text(errors="replace")]
    assert leaks == []
    assert secret not in git("log", "-p", "--all", cwd=project)


@AT_0_2_0
def test_the_answers_file_records_the_new_version(updated):
    project = updated["project"]
    answers = recorded_answers(project)
    assert answers["_commit"] == "0.2.0"
    assert updated["check_before"]["current_version"] == "0.1.0"
    assert updated["check_before"]["update_available"] is True
    after = check_update(project)
    assert (after["current_version"], after["latest_version"]) == ("0.2.0", "0.3.0")


@AT_0_2_0
def test_the_projects_own_checks_fail_while_markers_remain(updated, project_python):
    project = updated["project"]
    python = project_python("5.2")
    suite = run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_template_updates.py"],
        cwd=project,
    )
    assert suite.returncode == 1, suite.stdout
    assert f"{NGINX_CONF}:" in suite.stdout
    hook = run(
        [venv_tool("check-merge-conflict"), "--assume-in-merge", NGINX_CONF],
        cwd=project,
    )
    assert hook.returncode == 1
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert hooks["check-merge-conflict"]["args"] == ["--assume-in-merge"]


@pytest.fixture(scope="session")
def migrated(updated, tmp_path_factory) -> dict:
    """A copy of the updated project: conflict resolved, committed, updated to 0.3.0 by the CLI."""
    project = tmp_path_factory.mktemp("migrate") / "my_site"
    shutil.copytree(updated["project"], project, symlinks=True)
    conf = project / NGINX_CONF
    text = conf.read_text()
    start, end = text.index(OURS), text.index(THEIRS) + len(THEIRS) + 1
    conf.write_text(text[:start] + "    client_max_body_size 100m;\n" + text[end:])
    commit_all(project, "take django-shipshape 0.2.0; keep our upload limit")
    env_before = (project / ".env").read_bytes()
    result = copier_cli(
        "update", "--trust", "--defaults", "--conflict", "inline", "--vcs-ref", "0.3.0",
        cwd=project, settings_dir=project.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {"project": project, "env_before": env_before, "output": result.stdout + result.stderr}


@AT_0_3_0
def test_the_resolved_project_passes_its_own_conflict_checks(migrated, project_python):
    project = migrated["project"]
    suite = run(
        [project_python("5.2"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_template_updates.py"],
        cwd=project,
    )  # fmt: skip
    assert suite.returncode == 0, suite.stdout
    assert conflicted_files(project) == []


@AT_0_3_0
def test_the_migration_renames_the_variable_in_env_keeping_its_value(migrated):
    project = migrated["project"]
    before = migrated["env_before"].decode()
    after = (project / ".env").read_text()
    assert after == before.replace("\nDATABASE_URL=", "\nDJANGO_DATABASE_URL=")
    assert re.search(r"^DATABASE_URL=", after, re.MULTILINE) is None
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600
    # The tracked files got the rename from the template's diff.
    example = (project / ".env.example").read_text()
    assert "DJANGO_DATABASE_URL=" in example
    assert re.search(r"(?<![A-Z_])DATABASE_URL", example) is None


@AT_0_3_0
def test_the_migration_keeps_a_private_backup_of_env(migrated):
    project = migrated["project"]
    backup = project / ".env.before-0.3.0"
    assert backup.read_bytes() == migrated["env_before"]
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    git("check-ignore", "-q", backup.name, cwd=project)


@AT_0_3_0
def test_the_migration_prints_names_never_values(migrated):
    output = migrated["output"]
    assert ".env: DATABASE_URL renamed to DJANGO_DATABASE_URL" in output
    env = dict(
        line.split("=", 1)
        for line in migrated["env_before"].decode().splitlines()
        if "=" in line and not line.startswith("#")
    )
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL"):
        assert env[name] not in output


@AT_0_3_0
def test_the_migrated_env_configures_the_new_release(migrated, project_python):
    project = migrated["project"]
    python = project_python("5.2")
    module = settings_module({})
    check = check_deploy(python, project, module)
    assert check.returncode == 0, check.stdout + check.stderr
    database = setting(python, project, module, "settings.DATABASES['default']['NAME']")
    assert database.endswith("/site.sqlite3"), database


@AT_0_3_0
def test_tasks_and_the_migration_are_safe_to_run_again(migrated, update_releases):
    """copier runs every task several times per update: none may change .env twice."""
    project = migrated["project"]
    output = migrated["output"]
    # In the project, the .env task found the team's file and left it; the
    # migration ran after it. The scratch renders copier makes to compute the
    # diff get no .env, and say nothing about one.
    assert output.count(".env exists: left unchanged") == 1
    assert "written with a new secret key" not in output
    assert output.index(".env exists: left unchanged") < output.index("renamed to")
    env, backup = (project / ".env").read_bytes(), (project / ".env.before-0.3.0").read_bytes()
    answers = recorded_answers(project)
    write_env = [
        sys.executable, update_releases / "hooks/write_env.py", "--hosts=example.com,www.example.com",
        "--database=sqlite", "--deployment=systemd", "--project-slug=my_site",
    ]  # fmt: skip
    migration = [
        sys.executable, update_releases / "hooks/migrations/rename_env_variables.py",
        "--backup=.env.before-0.3.0", "DATABASE_URL=DJANGO_DATABASE_URL",
    ]  # fmt: skip
    for _ in range(3):
        assert run(write_env, cwd=project).returncode == 0
        again = run(migration, cwd=project)
        assert again.returncode == 0
        assert "no variable to rename" in again.stdout
    assert (project / ".env").read_bytes() == env
    assert (project / ".env.before-0.3.0").read_bytes() == backup
    assert answers["_commit"] == "0.3.0"
    assert check_update(project)["update_available"] is False
