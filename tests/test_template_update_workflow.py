"""The generated template-update jobs' own steps, run against a real template release.

GitHub cannot be reached from here, so the job runs as a runner would run it, minus
GitHub: each `run:` step of the rendered .github/workflows/template-update.yml in order,
under bash with the runner's flags, its `if:` conditions evaluated, step outputs passed
on, in a fresh clone of the project whose origin is a bare repository. copier, git and jq
are real; `uvx` runs the test environment's copier (the version the workflow asks for),
and `gh` is a stand-in that records what it was asked to open. The two actions (checkout,
setup-uv) are the clone and that PATH.

GitLab's template-update job runs the same way: its script under bash with the runner's
flags, the job's variables and GitLab's predefined ones, pushing through the URL it builds
(mapped to the bare origin by git's insteadOf), whose receiving end records the push
options that open the merge request; `curl` to GitLab's API is a recording stand-in.

A template release that changes a line the team left alone becomes a pushed branch and a
pull (merge) request; one that changes the line the team changed fails the job and becomes an
issue naming the file, with nothing pushed; a project on the latest release, or whose
update branch is already open, gets neither.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .support.git import commit_all, git, new_repo, release
from .support.project import edit, recorded_answers
from .support.rendering import render, snapshot_template

WORKFLOW = ".github/workflows/template-update.yml"
NGINX_CONF = "deploy/nginx/my_site.conf"
BRANCH = "template-update/0.2.0"

pytestmark = pytest.mark.xdist_group("template-update-workflow")

# A stand-in for the GitHub CLI: every call recorded, with the body file it was given.
GH = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
body = None
if "--body-file" in args:
    body = open(args[args.index("--body-file") + 1]).read()
with open(os.environ["GH_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "body": body, "token": os.environ.get("GH_TOKEN")}) + "\\n")
if args[:2] == ["issue", "list"]:
    print(0)
elif args[:2] == ["pr", "create"]:
    print("https://github.example/pull/1")
"""

# uvx --from SPEC --with SPEC copier ARGS: this environment's copier, with no user settings.
UVX = f"""#!/bin/sh
while [ "$1" != copier ]; do shift; done
shift
exec {sys.executable} -m copier "$@"
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """0.1.0 the working tree; 0.2.0 a larger upload limit in the nginx config."""
    repo = snapshot_template(tmp_path_factory.mktemp("template") / "django-shipshape")
    nginx = repo / "template/deploy/{% if proxy == 'nginx' %}nginx{% endif %}"
    edit(
        nginx / "{{project_slug}}.conf.jinja",
        "client_max_body_size 10m;",
        "client_max_body_size 20m;",
    )
    release(repo, "0.2.0")
    return repo


def project_on_github(
    template: Path, root: Path, team_edit, version: str = "0.1.0", **answers
) -> Path:
    """The project generated at `version`, with the team's commit, pushed to a bare origin."""
    project = render(template, root / "generated" / "my_site", vcs_ref=version, **answers)
    new_repo(project, f"generated from django-shipshape {version}")
    team_edit(project)
    commit_all(project, "the team's edit")
    origin = root / "origin.git"
    git("clone", "-q", "--bare", str(project), str(origin), cwd=root)
    return origin


def edit_readme(project: Path) -> None:
    (project / "README.md").write_text((project / "README.md").read_text() + "\nOurs.\n")


def edit_upload_limit(project: Path) -> None:
    edit(project / NGINX_CONF, "client_max_body_size 10m;", "client_max_body_size 100m;")


CONDITION = re.compile(
    r"(?P<function>success|failure)\(\)"
    r"|steps\.(?P<step>[\w-]+)\.(?:outputs\.(?P<output>[\w-]+)|(?P<outcome>outcome)) == '(?P<value>[^']*)'"
)


def condition_holds(condition: str | None, steps: dict, failed: bool) -> bool:
    """The few `if:` forms the workflow uses; any other fails the test, naming it."""
    if condition is None:
        return not failed
    status_checked, holds = False, True
    for term in condition.split(" && "):
        match = CONDITION.fullmatch(term.strip())
        assert match, f"the runner here does not know the condition {term!r}"
        if match["function"]:
            status_checked = True
            holds &= failed if match["function"] == "failure" else not failed
        else:
            step = steps.get(match["step"], {"outputs": {}, "outcome": "skipped"})
            actual = step["outcome"] if match["outcome"] else step["outputs"].get(match["output"])
            holds &= actual == match["value"]
    return holds and (status_checked or not failed)


def expression(value: str, steps: dict) -> str:
    return re.sub(
        r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}",
        lambda m: steps[m[1]]["outputs"].get(m[2], ""),
        value,
    )


def run_job(origin: Path, root: Path) -> dict:
    """The update job, in a fresh clone of origin: each step's outcome and output."""
    root.mkdir(parents=True, exist_ok=True)
    workspace = root / "workspace"
    git("clone", "-q", str(origin), str(workspace), cwd=root)
    tools, temp, home = root / "tools", root / "runner-temp", root / "home"
    for folder in (tools, temp, home):
        folder.mkdir(exist_ok=True)
    for name, script in (("gh", GH), ("uvx", UVX)):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    (home / "copier-settings.yml").write_text("{}\n")
    (home / "gitconfig").write_text("")

    workflow = yaml.safe_load((workspace / WORKFLOW).read_text())
    job = workflow["jobs"]["update"]
    assert job["env"]["GH_TOKEN"] == "${{ secrets.TEMPLATE_UPDATE_TOKEN || github.token }}"
    env = {
        "PATH": f"{tools}:{os.environ['PATH']}",
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "COPIER_SETTINGS_PATH": str(home / "copier-settings.yml"),
        "RUNNER_TEMP": str(temp),
        "GH_LOG": str(root / "gh.log"),
        **{name: str(value) for name, value in job["env"].items() if "${{" not in str(value)},
        "GH_TOKEN": "the job's token",
    }
    steps, failed = {}, False
    for number, step in enumerate(job["steps"]):
        if "uses" in step:
            continue  # checkout and setup-uv: the clone above and the PATH
        key = step.get("id", f"step-{number}")
        if not condition_holds(step.get("if"), steps, failed):
            steps[key] = {"name": step["name"], "outcome": "skipped", "outputs": {}}
            continue
        outputs = temp / f"output-{number}"
        outputs.write_text("")
        step_env = {name: expression(str(v), steps) for name, v in step.get("env", {}).items()}
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace, env={**env, **step_env, "GITHUB_OUTPUT": str(outputs)},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        failed |= result.returncode != 0
        steps[key] = {
            "name": step["name"],
            "outcome": "success" if result.returncode == 0 else "failure",
            "outputs": dict(line.split("=", 1) for line in outputs.read_text().splitlines()),
            "output": result.stdout + result.stderr,
        }
    log = root / "gh.log"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {"steps": steps, "gh": calls, "workspace": workspace, "failed": failed}


def outcomes(job: dict) -> dict[str, str]:
    return {step["name"]: step["outcome"] for step in job["steps"].values()}


def remote_branches(origin: Path) -> list[str]:
    return git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=origin).split()


def test_a_clean_update_becomes_a_pushed_branch_and_a_pull_request(template, tmp_path):
    origin = project_on_github(template, tmp_path, edit_readme)
    job = run_job(origin, tmp_path)

    assert not job["failed"], job["steps"]
    assert outcomes(job) == {
        "Look for a newer template release": "success",
        "copier update": "success",
        "Look for conflicts": "success",
        "Open an issue for the conflicting update": "skipped",
        "Open a pull request": "success",
    }
    assert sorted(remote_branches(origin)) == sorted(["main", BRANCH])
    pushed = git("show", f"{BRANCH}:{NGINX_CONF}", cwd=origin)
    assert "client_max_body_size 20m;" in pushed
    assert git("show", f"{BRANCH}:README.md", cwd=origin).endswith("\nOurs.\n")
    assert "_commit: 0.2.0" in git("show", f"{BRANCH}:.copier-answers.yml", cwd=origin)
    # The .env copier's task wrote in the workspace stays there: ignored, never pushed.
    assert (job["workspace"] / ".env").is_file()
    files = git("ls-tree", "-r", "--name-only", BRANCH, cwd=origin).split()
    assert ".env" not in files
    assert git("log", "-1", "--format=%an <%ae>", BRANCH, cwd=origin).strip() == (
        "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"
    )

    (setup, pull_request) = job["gh"]
    assert setup["args"] == ["auth", "setup-git"]
    assert pull_request["args"][:6] == [
        "pr", "create", "--head", BRANCH, "--title", "Template release 0.2.0",
    ]  # fmt: skip
    assert pull_request["token"] == "the job's token"
    body = pull_request["body"]
    assert "merged the template's release 0.2.0 without a conflict" in body
    assert f"CHANGELOG.md in {template}" in body
    assert NGINX_CONF in body and ".copier-answers.yml" in body  # the diff's stat


def test_an_open_update_branch_is_not_opened_again(template, tmp_path):
    origin = project_on_github(template, tmp_path, edit_readme)
    assert not run_job(origin, tmp_path / "first")["failed"]
    again = run_job(origin, tmp_path / "second")
    check = again["steps"]["check"]
    assert check["outputs"]["update"] == "false"
    assert f"{BRANCH} exists: its pull request is still open." in check["output"]
    assert [call["args"] for call in again["gh"]] == [["auth", "setup-git"]]


def test_a_conflicting_update_fails_and_opens_an_issue_naming_the_file(template, tmp_path):
    origin = project_on_github(template, tmp_path, edit_upload_limit)
    job = run_job(origin, tmp_path)

    assert job["failed"]
    assert outcomes(job) == {
        "Look for a newer template release": "success",
        "copier update": "success",
        "Look for conflicts": "failure",
        "Open an issue for the conflicting update": "success",
        "Open a pull request": "skipped",
    }
    assert (
        f"::error::the update left conflicts in: {NGINX_CONF}"
        in job["steps"]["conflicts"]["output"]
    )
    assert remote_branches(origin) == ["main"]
    setup, listed, issue = job["gh"]
    assert listed["args"][:2] == ["issue", "list"]
    assert issue["args"][:4] == [
        "issue", "create", "--title", "Template release 0.2.0 conflicts with this project's changes",
    ]  # fmt: skip
    assert f"- `{NGINX_CONF}`" in issue["body"]
    assert "copier update --trust --defaults --conflict inline" in issue["body"]


def test_a_project_on_the_latest_release_gets_nothing(template, tmp_path):
    origin = project_on_github(template, tmp_path, edit_readme, version="0.2.0")
    job = run_job(origin, tmp_path)
    assert not job["failed"]
    assert job["steps"]["check"]["outputs"]["update"] == "false"
    assert "The project is on the template's latest release." in job["steps"]["check"]["output"]
    assert set(outcomes(job).values()) == {"success", "skipped"}
    assert remote_branches(origin) == ["main"]
    assert recorded_answers(job["workspace"])["_commit"] == "0.2.0"


# GitLab -------------------------------------------------------------------------------

# A stand-in for curl to GitLab's API: every call recorded, with the description it sent.
CURL = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
description = None
for arg in args:
    if arg.startswith("description@"):
        description = open(arg.split("@", 1)[1]).read()
with open(os.environ["CURL_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "description": description}) + "\\n")
if "--get" in args:
    print("[]")
"""

# What the receiving end got with the push: git hands a hook the push options.
POST_RECEIVE = """#!/bin/sh
i=0
while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
  eval "echo \\"\\$GIT_PUSH_OPTION_$i\\""
  i=$((i + 1))
done > push-options.txt
"""

GITLAB = {
    "CI_SERVER_HOST": "gitlab.example",
    "CI_PROJECT_PATH": "team/my_site",
    "CI_PROJECT_ID": "7",
    "CI_API_V4_URL": "https://gitlab.example/api/v4",
    "CI_DEFAULT_BRANCH": "main",
    "CI_COMMIT_BRANCH": "main",
    "TEMPLATE_UPDATE": "true",
    "TEMPLATE_UPDATE_TOKEN": "glpat-for-tests",
}


def run_gitlab_job(origin: Path, root: Path, token: str = GITLAB["TEMPLATE_UPDATE_TOKEN"]) -> dict:
    """The template-update job, in a fresh clone of origin at its commit, as GitLab runs it."""
    root.mkdir(parents=True, exist_ok=True)
    workspace = root / "workspace"
    git("clone", "-q", str(origin), str(workspace), cwd=root)
    git("checkout", "-q", "--detach", cwd=workspace)
    git("config", "receive.advertisePushOptions", "true", cwd=origin)
    hook = origin / "hooks/post-receive"
    hook.write_text(POST_RECEIVE)
    hook.chmod(0o755)
    tools, home = root / "tools", root / "home"
    for folder in (tools, home):
        folder.mkdir(exist_ok=True)
    for name, script in (("curl", CURL), ("uvx", UVX)):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    (home / "copier-settings.yml").write_text("{}\n")
    url = f"https://oauth2:{token}@gitlab.example/team/my_site.git"
    (home / "gitconfig").write_text(f'[url "{origin}"]\n\tinsteadOf = {url}\n')

    config = yaml.safe_load((workspace / ".gitlab-ci.yml").read_text())
    job = config["template-update"]
    variables = {
        name: str(value).replace("$CI_SERVER_HOST", GITLAB["CI_SERVER_HOST"])
        for name, value in {**config.get("variables", {}), **job["variables"]}.items()
    }
    env = {
        "PATH": f"{tools}:{os.environ['PATH']}",
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "COPIER_SETTINGS_PATH": str(home / "copier-settings.yml"),
        "CURL_LOG": str(root / "curl.log"),
        **GITLAB,
        "TEMPLATE_UPDATE_TOKEN": token,
        **variables,
    }
    # GitLab's runner runs a bash job's script under `set -eo pipefail`.
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(job["script"])],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    log = root / "curl.log"
    options = origin / "push-options.txt"
    return {
        "returncode": result.returncode,
        "output": result.stdout + result.stderr,
        "curl": [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else [],
        "push_options": options.read_text().splitlines() if options.exists() else [],
    }


def test_gitlab_a_clean_update_is_pushed_with_the_options_that_open_a_merge_request(
    template, tmp_path
):
    origin = project_on_github(template, tmp_path, edit_readme, ci="gitlab")
    job = run_gitlab_job(origin, tmp_path)

    assert job["returncode"] == 0, job["output"]
    assert sorted(remote_branches(origin)) == sorted(["main", BRANCH])
    assert "client_max_body_size 20m;" in git("show", f"{BRANCH}:{NGINX_CONF}", cwd=origin)
    assert "_commit: 0.2.0" in git("show", f"{BRANCH}:.copier-answers.yml", cwd=origin)
    options = job["push_options"]
    assert options[:4] == [
        "merge_request.create",
        "merge_request.target=main",
        "merge_request.remove_source_branch",
        "merge_request.title=Template release 0.2.0",
    ]
    assert options[4].startswith("merge_request.description=copier update merged the template's")
    assert f"CHANGELOG.md in {template}." in options[4]
    assert job["curl"] == []
    # The token reached git only through the remote URL, and is in no pushed file.
    assert "glpat-for-tests" not in git("log", "-p", BRANCH, cwd=origin)


def test_gitlab_a_conflicting_update_fails_and_opens_an_issue(template, tmp_path):
    origin = project_on_github(template, tmp_path, edit_upload_limit, ci="gitlab")
    job = run_gitlab_job(origin, tmp_path)

    assert job["returncode"] == 1
    assert f"The update left conflicts in: {NGINX_CONF}" in job["output"]
    assert remote_branches(origin) == ["main"]
    search, create = job["curl"]
    title = "Template release 0.2.0 conflicts with this project's changes"
    assert "--get" in search["args"] and f"search={title}" in search["args"]
    assert f"title={title}" in create["args"]
    assert "PRIVATE-TOKEN: glpat-for-tests" in create["args"]
    assert create["args"][-1] == "https://gitlab.example/api/v4/projects/7/issues"
    assert f"- `{NGINX_CONF}`" in create["description"]


def test_gitlab_the_job_without_its_token_stops_saying_what_to_add(template, tmp_path):
    origin = project_on_github(template, tmp_path, edit_readme, ci="gitlab")
    job = run_gitlab_job(origin, tmp_path, token="")
    assert job["returncode"] == 1
    assert "TEMPLATE_UPDATE_TOKEN is not set: add a project access token" in job["output"]
    assert remote_branches(origin) == ["main"]
