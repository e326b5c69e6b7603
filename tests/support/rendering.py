"""The template rendered as users render it: copier's API, or its command line.

Every render comes from a git-tagged snapshot of the working tree, so uncommitted
work is what gets tested and `_commit` in the answers file is a real version.
Every copier run is isolated from the user's copier settings file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import copier
from copier import Settings

from .git import init_repo, listed_files, release
from .paths import ROOT
from .processes import run

SNAPSHOT_VERSION = "0.1.0"


def snapshot_template(dest: Path, version: str = SNAPSHOT_VERSION) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) into a tagged git repo."""
    dest.mkdir(parents=True)
    for name in listed_files(ROOT, untracked=True):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    release(init_repo(dest), version, f"snapshot {version}")
    return dest


def render(
    template: Path,
    dest: Path,
    vcs_ref: str = SNAPSHOT_VERSION,
    skip_tasks: bool = False,
    **answers,
) -> Path:
    """Render like `copier copy --trust --defaults -d ...`."""
    copier.run_copy(
        str(template), dest, data=answers, vcs_ref=vcs_ref, skip_tasks=skip_tasks,
        defaults=True, unsafe=True, quiet=True, settings=Settings(),
    )  # fmt: skip
    return dest


def update(project: Path, vcs_ref: str) -> Path:
    """Update like `copier update --trust --defaults --conflict inline`."""
    copier.run_update(
        project, vcs_ref=vcs_ref, overwrite=True, conflict="inline",
        defaults=True, unsafe=True, quiet=True, settings=Settings(),
    )  # fmt: skip
    return project


def copier_cli(*args: str | Path, cwd: Path, settings_dir: Path) -> subprocess.CompletedProcess:
    """`copier ARGS` as a user types it, with an empty copier settings file and no colours.

    The settings file is written into `settings_dir`, which must not be a folder
    copier writes the project into.
    """
    settings = settings_dir / "copier-settings.yml"
    settings.write_text("{}\n")
    return run(
        [sys.executable, "-m", "copier", *args],
        cwd=cwd,
        env={"COPIER_SETTINGS_PATH": str(settings), "NO_COLOR": "1"},
    )


def copier_copy_cli(
    template: Path, dest: Path, *data: str, data_file: Path | None = None
) -> subprocess.CompletedProcess:
    """`copier copy --trust --defaults [--data-file F] -d NAME=VALUE ...` as a user types it."""
    args: list[str | Path] = ["copy", "--trust", "--defaults", "--vcs-ref", SNAPSHOT_VERSION]
    if data_file is not None:
        args += ["--data-file", data_file]
    for item in data:
        args += ["-d", item]
    return copier_cli(*args, template, dest, cwd=dest.parent, settings_dir=dest.parent)


def answers_key(answers: dict) -> str:
    """A short stable name for a set of answers, to cache what was rendered for it."""
    return hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()[:12]
