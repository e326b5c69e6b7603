"""Rendered files read as if written by hand, and the secret never leaves .env."""

from __future__ import annotations

import re
import stat
import subprocess
import sys

import pytest

from .combinations import parametrize_combinations
from .support.git import git
from .support.paths import ROOT
from .support.processes import run
from .support.project import write_files
from .support.rendering import render

# Jinja's delimiters as the template writes them ({{ x }}, {% if %}, {# #}); a nested
# f-string format spec such as f"{name:<{width}}" is Python, not residue.
JINJA_RESIDUE = re.compile(r"\{\{[ -]|[ -]\}\}|\{%|%\}|\{#|#\}")
# A GitHub Actions expression (${{ github.ref }}) is the workflow's own syntax.
GITHUB_EXPRESSION = re.compile(r"\$\{\{ [^{}]+ \}\}")
NOT_TEXT = {".png", ".ico", ".sqlite3"}
# A copier command as a generated file quotes it, up to a backtick or a comment.
COPIER_COMMAND = re.compile(r"(?:python3 -m pip install copier|copier update)\b[^`#\n]*")


def generated_files(project):
    return [
        path
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.parts and path.suffix not in NOT_TEXT
    ]


@parametrize_combinations()
def test_no_jinja_residue_blank_line_runs_or_trailing_spaces(rendered, answers):
    project = rendered(**answers)
    problems = []
    for path in generated_files(project):
        text = path.read_text()
        name = path.relative_to(project)
        if JINJA_RESIDUE.search(GITHUB_EXPRESSION.sub("", text)):
            problems.append(f"{name}: Jinja residue")
        if path.suffix != ".py" and "\n\n\n" in text:
            problems.append(f"{name}: a run of blank lines")
        if re.search(r"[ \t]+$", text, re.MULTILINE):
            problems.append(f"{name}: trailing whitespace")
        if text and not text.endswith("\n"):
            problems.append(f"{name}: no final newline")
        if text.startswith("\n"):
            problems.append(f"{name}: starts with a blank line")
    assert problems == []


@parametrize_combinations()
def test_generated_python_passes_ruff(rendered, answers):
    project = rendered(**answers)
    lint = run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project)
    assert lint.returncode == 0, lint.stdout
    fmt = run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], cwd=project)
    assert fmt.returncode == 0, fmt.stdout


# The least a retrofit finds in its destination: startproject's files for my_site.
EXISTING_PROJECT = {
    "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'my_site.settings')\n",
    "my_site/__init__.py": "",
    "my_site/settings.py": "SECRET_KEY = 'dev'\nWSGI_APPLICATION = 'my_site.wsgi.application'\n",
    "my_site/wsgi.py": "from django.core.wsgi import get_wsgi_application\n\napplication = get_wsgi_application()\n",
}


@pytest.mark.parametrize("retrofit", [False, True])
def test_the_answers_file_gives_the_update_commands_the_readmes_give(
    rendered, template_repo, tmp_path, retrofit
):
    if retrofit:
        project = render(
            template_repo, write_files(tmp_path / "my_site", EXISTING_PROJECT), retrofit=True
        )
    else:
        project = rendered()

    def commands(text):
        return {command.strip() for command in COPIER_COMMAND.findall(text)}

    install = "python3 -m pip install copier copier-template-extensions"
    header = commands((project / ".copier-answers.yml").read_text())
    assert header == {
        install,
        "copier update --trust",
        "copier update --trust --vcs-ref=:current: --data name=value",
    }
    # The template's own README installs the same packages for `copier copy`.
    assert install in (ROOT / "README.md").read_text()
    if not retrofit:
        assert commands((project / "README.md").read_text()) == header


def test_env_is_private_ignored_and_holds_a_fresh_secret(rendered):
    project = rendered()
    env_path = project / ".env"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    secret = dict(
        line.split("=", 1)
        for line in env_path.read_text().splitlines()
        if line.startswith("DJANGO_")
    )["DJANGO_SECRET_KEY"]
    assert len(secret) >= 50
    assert len(set(secret)) >= 5
    assert re.fullmatch(r"[A-Za-z0-9_-]+", secret), "no character a shell or env file would mangle"


def test_every_project_gets_its_own_secret(rendered):
    def secret(project):
        return next(
            line for line in (project / ".env").read_text().splitlines() if "SECRET_KEY" in line
        )

    assert secret(rendered()) != secret(rendered(project_name="Other Site"))


def test_no_secret_is_tracked_once_the_project_is_committed(fresh_project):
    project = fresh_project(database="postgres")
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    tracked = git("ls-files", cwd=project).split()
    assert ".env" not in tracked
    assert ".env.example" in tracked
    secrets = [
        line.split("=", 1)[1]
        for line in (project / ".env").read_text().splitlines()
        if line.startswith(("DJANGO_SECRET_KEY=", "DATABASE_URL="))
    ]
    password = secrets[1].split(":")[2].split("@")[0]
    for name in tracked:
        text = (project / name).read_text()
        assert secrets[0] not in text, name
        assert password not in text, name


def test_the_example_placeholder_is_the_one_production_refuses(rendered):
    project = rendered()
    example = (project / ".env.example").read_text()
    placeholder = re.search(r"^DJANGO_SECRET_KEY=(.*)$", example, re.MULTILINE).group(1)
    assert f'PLACEHOLDER_SECRET_KEY = "{placeholder}"' in (project / "my_site/env.py").read_text()


def test_the_env_hook_never_overwrites_an_existing_env(fresh_project):
    project = fresh_project()
    env_path = project / ".env"
    env_path.write_text("DJANGO_SECRET_KEY=the-teams-own\n")
    result = subprocess.run(
        [sys.executable, ROOT / "hooks/write_env.py", "--hosts=example.com", "--database=sqlite",
         "--deployment=systemd", "--project-slug=my_site"],
        cwd=project, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert env_path.read_text() == "DJANGO_SECRET_KEY=the-teams-own\n"
    assert "left unchanged" in result.stdout


def test_the_env_hook_prints_no_secret(tmp_path):
    result = subprocess.run(
        [sys.executable, ROOT / "hooks/write_env.py", "--hosts=example.com", "--database=postgres",
         "--deployment=compose", "--project-slug=my_site"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    env = (tmp_path / ".env").read_text()
    for line in env.splitlines():
        if line.startswith(("DJANGO_SECRET_KEY=", "POSTGRES_PASSWORD=")):
            assert line.split("=", 1)[1] not in result.stdout + result.stderr


@pytest.mark.parametrize("layout", ["split", "single"])
def test_hsts_answers_silence_exactly_the_checks_they_turn_off(rendered, layout):
    project = rendered(settings_layout=layout, hsts_include_subdomains=False)
    settings = project / (
        "my_site/settings/security.py" if layout == "split" else "my_site/settings.py"
    )
    text = settings.read_text()
    assert '"security.W005",  # hsts_include_subdomains: false' in text
    assert '"security.W021",  # hsts_preload: false' in text
    assert "security.W004" not in text


def test_production_and_test_settings_import_one_security_module(rendered):
    settings = rendered() / "my_site/settings"
    for module in ("production.py", "test.py"):
        text = (settings / module).read_text()
        assert "from .security import *  # noqa: F403" in text, module
        assert "SECURE_SSL_REDIRECT" not in text, f"{module} repeats security.py"
    assert "from .security import" not in (settings / "development.py").read_text()


def test_preloading_silences_nothing(rendered):
    text = (rendered(hsts_preload=True) / "my_site/settings/security.py").read_text()
    assert "SILENCED_SYSTEM_CHECKS" not in text
    assert "SECURE_HSTS_PRELOAD = True" in text
