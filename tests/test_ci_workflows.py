"""The generated project's CI files pass the tools a supply-chain review runs.

For every answer combination, as rendered for each `ci` answer:
- GitHub (`ci: github`): each workflow passes actionlint (shellcheck over every `run:`
  script) and the GitHub workflow schema; the workflows and dependabot.yml pass zizmor
  offline with no finding; dependabot.yml passes the Dependabot schema; every action is
  pinned to a full commit SHA with its release named, the token is read-only except
  where one job needs more, and no checkout leaves the token behind.
- GitLab (`ci: gitlab`): .gitlab-ci.yml passes GitLab's CI schema and every job script
  passes shellcheck.
Then: a tag where a SHA was fails the pinning check and zizmor, and each validator
refuses a file broken in its way, so a green run means something.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .combinations import parametrize_combinations
from .support.project import write_files
from .support.rendering import render
from .support.workflows import (
    actionlint,
    gitlab_scripts,
    job_writes,
    permission_problems,
    pinning_problems,
    schema_check,
    shellcheck,
    zizmor,
)
from .test_rendering import EXISTING_PROJECT

# Kubernetes is no axis of the combinations; its Dockerfile is what Dependabot watches.
KUBERNETES = {
    "proxy": "load_balancer", "deployment": "kubernetes", "database": "postgres",
    "gunicorn_bind": "0.0.0.0:8000",
}  # fmt: skip


def every_combination():
    argname, params = parametrize_combinations().args
    params = [*params, pytest.param(KUBERNETES, id="kubernetes")]
    return pytest.mark.parametrize(argname, params)


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github/workflows").glob("*.yml"))


# GitHub -----------------------------------------------------------------------------


@every_combination()
def test_the_github_files_pass_actionlint_zizmor_and_their_schemas(rendered, answers, tmp_path):
    project = rendered(**answers)
    assert [p.name for p in workflows(project)] == ["ci.yml", "template-update.yml"]
    assert not (project / ".gitlab-ci.yml").exists()

    lint = actionlint(project, tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    audit = zizmor(project, tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "No findings to report" in audit.stdout, audit.stdout
    schema = schema_check("vendor.github-workflows", workflows(project), tmp_path)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    dependabot = schema_check("vendor.dependabot", [project / ".github/dependabot.yml"], tmp_path)
    assert dependabot.returncode == 0, dependabot.stdout + dependabot.stderr


@every_combination()
def test_every_action_is_pinned_and_every_token_least_privileged(rendered, answers):
    project = rendered(**answers)
    for workflow in workflows(project):
        text = workflow.read_text()
        assert pinning_problems(text) == [], workflow.name
        assert permission_problems(text) == [], workflow.name
        assert "{{" not in text.replace("${{", "") and "{%" not in text, workflow.name
        assert "\n\n\n" not in text, workflow.name
    ci = (project / ".github/workflows/ci.yml").read_text()
    assert job_writes(ci) == {"test": set(), "audit": set()}
    update = (project / ".github/workflows/template-update.yml").read_text()
    # Only the update job writes: its branch, its pull request, or an issue.
    assert yaml.safe_load(update)["permissions"] == {}
    assert job_writes(update) == {"update": {"contents", "pull-requests", "issues"}}


@every_combination()
def test_dependabot_watches_what_the_project_is_built_from(rendered, answers):
    project = rendered(**answers)
    config = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    ecosystems = [update["package-ecosystem"] for update in config["updates"]]
    containers = {
        "systemd": [],
        "compose": ["docker", "docker-compose"],
        "kubernetes": ["docker"],
    }[answers["deployment"]]
    assert ecosystems == ["uv", "github-actions", *containers]
    for update in config["updates"]:
        assert update["directory"] == "/"
        assert update["cooldown"]["default-days"] >= 7


@every_combination()
def test_ci_audits_the_locked_dependencies(rendered, answers):
    project = rendered(**answers)
    ci = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    audit = "\n".join(step.get("run", "") for step in ci["jobs"]["audit"]["steps"])
    assert "uv export --format requirements.txt --all-groups --no-emit-project" in audit
    assert re.search(r"pip-audit --strict --disable-pip --requirement \S+requirements\.txt", audit)
    # Advisories arrive without a push: CI runs weekly too.
    assert [entry["cron"] for entry in ci[True]["schedule"]]  # YAML 1.1 reads `on` as true


def test_an_action_pinned_to_a_tag_fails_the_pinning_check_and_zizmor(rendered, tmp_path):
    project = rendered()
    ci = (project / ".github/workflows/ci.yml").read_text()
    sha = "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2"
    assert sha in ci
    tagged = tmp_path / "tagged"
    (tagged / ".github/workflows").mkdir(parents=True)
    (tagged / ".github/workflows/ci.yml").write_text(ci.replace(sha, "actions/checkout@v6.0.2"))

    problems = pinning_problems((tagged / ".github/workflows/ci.yml").read_text())
    assert len(problems) == 2 and all("actions/checkout@v6.0.2" in p for p in problems), problems
    audit = zizmor(tagged, tmp_path)
    assert audit.returncode != 0
    assert "unpinned-uses" in audit.stdout and "actions/checkout@v6.0.2" in audit.stdout


def test_a_sha_without_its_release_or_a_token_kept_by_checkout_is_caught(rendered):
    project = rendered()
    ci = (project / ".github/workflows/ci.yml").read_text()
    no_comment = ci.replace(" # v6.0.2", "", 1)
    assert pinning_problems(no_comment) == [
        f"line {no_comment.splitlines().index(line) + 1}: {line.split('uses: ')[1]} has no "
        "'# vX.Y.Z' comment naming its release"
        for line in no_comment.splitlines()
        if line.endswith("checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd")
    ]
    kept = ci.replace("          persist-credentials: false\n", "", 1)
    assert permission_problems(kept) == ["test: checkout leaves the token in .git/config"]
    writes = ci.replace("permissions:\n  contents: read", "permissions:\n  contents: write")
    assert permission_problems(writes) == [
        "top-level permissions {'contents': 'write'} are more than read"
    ]


def test_the_validators_refuse_broken_files(rendered, tmp_path):
    """Each tool fails on a file broken in its own way: their passes above mean something."""
    project = rendered()
    broken = tmp_path / "broken"
    (broken / ".github/workflows").mkdir(parents=True)
    update = (project / ".github/workflows/template-update.yml").read_text()
    # A step output expanded straight into a script: template injection.
    injected = update.replace('echo "$branch exists', 'echo "${{ github.head_ref }} exists')
    assert injected != update
    (broken / ".github/workflows/template-update.yml").write_text(injected)
    audit = zizmor(broken, tmp_path)
    assert audit.returncode != 0 and "template-injection" in audit.stdout, audit.stdout

    (broken / ".github/workflows/template-update.yml").write_text(
        update.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    runs_on: x")
    )
    assert schema_check("vendor.github-workflows", workflows(broken), tmp_path).returncode != 0
    lint = actionlint(broken, tmp_path)
    assert lint.returncode != 0 and "runs_on" in lint.stdout

    dependabot = broken / ".github/dependabot.yml"
    dependabot.write_text(
        (project / ".github/dependabot.yml")
        .read_text()
        .replace("interval: weekly", "interval: hourly")
    )
    assert schema_check("vendor.dependabot", [dependabot], tmp_path).returncode != 0


# GitLab -----------------------------------------------------------------------------


@every_combination()
def test_the_gitlab_pipeline_passes_gitlabs_schema_and_shellcheck(rendered, answers, tmp_path):
    project = rendered(**answers, ci="gitlab")
    assert not (project / ".github").exists()
    pipeline = project / ".gitlab-ci.yml"
    schema = schema_check("vendor.gitlab-ci", [pipeline], tmp_path)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    text = pipeline.read_text()
    assert "{{" not in text and "{%" not in text and "\n\n\n" not in text
    scripts = gitlab_scripts(text)
    assert sorted(scripts) == ["audit", "template-update", "test"]
    for name, script in scripts.items():
        check = shellcheck(script, tmp_path)
        assert check.returncode == 0, f"{name}:\n{check.stdout}"


@every_combination()
def test_the_gitlab_pipeline_does_what_the_github_workflows_do(rendered, answers):
    config = yaml.safe_load((rendered(**answers, ci="gitlab") / ".gitlab-ci.yml").read_text())
    test, audit, update = config["test"], config["audit"], config["template-update"]
    assert "uv run pytest" in test["script"]
    assert "uvx pre-commit run --all-files --show-diff-on-failure" in test["script"]
    assert "uv run python manage.py preflight" in test["script"][-1]
    postgres = answers["database"] == "postgres"
    assert ("services" in test) == postgres
    if postgres:
        assert test["services"] == [{"name": "postgres:17", "alias": "postgres"}]
        assert test["variables"]["DATABASE_URL"] == "postgres://ci@postgres:5432/my_site"
    assert test["variables"]["GIT_DEPTH"] == "0"
    assert any("pip-audit --strict --disable-pip" in line for line in audit["script"])
    # The update runs only from its pipeline schedule, on the default branch.
    assert update["rules"] == [
        {"if": '$TEMPLATE_UPDATE == "true" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'}
    ]
    script = update["script"][0]
    assert "copier check-update --output-format json" in script
    assert "copier update --trust --defaults --conflict inline" in script
    assert "-o merge_request.create" in script
    python = "3.13" if answers.get("django_version") == "6.1" else "3.12"
    assert config["default"]["image"] == f"ghcr.io/astral-sh/uv:0.13.9-python{python}-bookworm"


def test_gitlabs_schema_refuses_a_broken_pipeline(rendered, tmp_path):
    text = (rendered(ci="gitlab") / ".gitlab-ci.yml").read_text()
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(
        text.replace("  timeout: 10 minutes\n", "  timeout: 10 minutes\n  scripts: []\n")
    )
    assert schema_check("vendor.gitlab-ci", [broken], tmp_path).returncode != 0


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_a_retrofit_keeps_the_projects_own_ci(template_repo, tmp_path, ci):
    """A retrofitted project's CI is the team's: neither .github/ nor .gitlab-ci.yml is written."""
    existing = write_files(
        tmp_path / "my_site", {**EXISTING_PROJECT, ".gitlab-ci.yml": "ours: {}\n"}
    )
    project = render(template_repo, existing, retrofit=True, ci=ci)
    assert (project / "my_site/settings_production.py").is_file()
    assert not (project / ".github").exists()
    assert (project / ".gitlab-ci.yml").read_text() == "ours: {}\n"
