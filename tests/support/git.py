"""git as the tests use it: commands, commits by a test author, tagged releases."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout


def commit_as_tests(repo: Path, message: str) -> None:
    """Commit what is staged (or nothing), as a test author, never signed."""
    git(
        "-c", "user.name=tests", "-c", "user.email=tests@example.invalid",
        "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", message,
        cwd=repo,
    )  # fmt: skip


def commit_all(repo: Path, message: str) -> None:
    """Stage every change, new files included, and commit it."""
    git("add", "-A", cwd=repo)
    commit_as_tests(repo, message)


def init_repo(folder: Path) -> Path:
    """Make a folder a git repository on `main`, with nothing committed yet."""
    git("init", "-q", "-b", "main", cwd=folder)
    return folder


def new_repo(folder: Path, message: str) -> Path:
    """Make a folder a git repository on `main` whose first commit holds all it has."""
    commit_all(init_repo(folder), message)
    return folder


def release(repo: Path, version: str, message: str | None = None) -> None:
    """Commit every change as a release and tag it with its version."""
    commit_all(repo, message or f"release {version}")
    git("tag", version, cwd=repo)


def listed_files(repo: Path, untracked: bool = False) -> list[str]:
    """The files git tracks, with `untracked` also those it does not ignore; each once."""
    extra = ["--others", "--exclude-standard"] if untracked else []
    listed = git("ls-files", "--cached", *extra, "-z", cwd=repo)
    # A file in conflict is listed once per merge stage.
    return sorted(set(filter(None, listed.split("\0"))))
