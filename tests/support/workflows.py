"""The generated project's CI files, judged the way the supply-chain tools judge them.

actionlint (with shellcheck over every `run:` script), zizmor offline, the JSON schemas
check-jsonschema ships (GitHub workflows, Dependabot, GitLab CI), and the rules those
tools do not enforce on their own: every action pinned to a full commit SHA with its
release in a comment, a read-only token unless a job says otherwise, no token left in
.git/config by a checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from .binaries import CHECK_JSONSCHEMA, venv_tool

ACTIONLINT = venv_tool("actionlint")
ZIZMOR = venv_tool("zizmor")
SHELLCHECK = venv_tool("shellcheck")

# owner/repo[/path]@<40 hex> # v1.2.3
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}")
RELEASE_COMMENT = re.compile(r"#\s*v\d+(\.\d+)*\s*$")
READ_ONLY = {"read", "none"}


def _tool(args: list, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        # actionlint finds shellcheck on PATH; zizmor keeps its cache under HOME.
        "PATH": f"{Path(SHELLCHECK).parent}:{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def actionlint(project: Path, home: Path) -> subprocess.CompletedProcess:
    workflows = sorted((project / ".github/workflows").glob("*.yml"))
    return _tool([ACTIONLINT, "-no-color", *workflows], project, home)


def zizmor(project: Path, home: Path) -> subprocess.CompletedProcess:
    """zizmor's default persona, offline: workflows and dependabot.yml under .github/."""
    return _tool([ZIZMOR, "--offline", "--no-progress", ".github"], project, home)


def schema_check(schema: str, files: list[Path], home: Path) -> subprocess.CompletedProcess:
    return _tool([CHECK_JSONSCHEMA, "--builtin-schema", schema, *files], home, home)


def shellcheck(script: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SHELLCHECK, "--shell=bash", "-"], input=script, capture_output=True, text=True,
        timeout=60, check=False, cwd=home,
    )  # fmt: skip


def pinning_problems(text: str) -> list[str]:
    """One line per action in a workflow that is not pinned to a commit SHA with its release."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        match = re.match(r"\s*(-\s+)?uses:\s*(\S+)", line)
        if not match:
            continue
        ref = match[2].strip("'\"")
        if ref.startswith("./"):
            continue  # an action of this repository, pinned by the commit that runs it
        if ref.startswith("docker://"):
            if "@sha256:" not in ref:
                problems.append(f"line {number}: {ref} is not pinned to an image digest")
            continue
        if not PINNED.fullmatch(ref):
            problems.append(f"line {number}: {ref} is not pinned to a full commit SHA")
        elif not RELEASE_COMMENT.search(line):
            problems.append(f"line {number}: {ref} has no '# vX.Y.Z' comment naming its release")
    return problems


def permission_problems(text: str) -> list[str]:
    """A workflow's token: read-only at the top; a job's writes are that job's alone."""
    workflow = yaml.safe_load(text)
    problems = []
    top = workflow.get("permissions")
    if top is None:
        problems.append("no top-level permissions: the token gets the repository's default")
    elif not isinstance(top, dict) or not set(top.values()) <= READ_ONLY:
        problems.append(f"top-level permissions {top!r} are more than read")
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                if step.get("with", {}).get("persist-credentials") is not False:
                    problems.append(f"{name}: checkout leaves the token in .git/config")
    return problems


def job_writes(text: str) -> dict[str, set[str]]:
    """Each job's write permissions."""
    jobs = yaml.safe_load(text)["jobs"]
    return {
        name: {scope for scope, level in (job.get("permissions") or {}).items() if level == "write"}
        for name, job in jobs.items()
    }


def gitlab_scripts(text: str) -> dict[str, str]:
    """Each GitLab job's script, as one bash script."""
    config = yaml.safe_load(text)
    return {
        name: "\n".join(job["script"])
        for name, job in config.items()
        if isinstance(job, dict) and "script" in job
    }
