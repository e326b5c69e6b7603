"""A rendered project seen from outside: its settings module, its answers, its deploy check."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from .processes import run


def settings_module(answers: dict) -> str:
    """The production settings module for these answers: split modules or one settings.py."""
    slug = answers.get("project_slug", "my_site")
    split = answers.get("settings_layout", "split") == "split"
    return f"{slug}.settings.production" if split else f"{slug}.settings"


def recorded_answers(project: Path) -> dict:
    """The answers copier recorded in the project, for updates."""
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def write_files(folder: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path: text) under `folder`, creating folders as needed."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def tree(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `folder` (.git included) with its bytes, but those named in `skip`."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in skip
    }


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of `old` in `path`, or fail naming what moved."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name}: expected {old!r} exactly once"
    path.write_text(text.replace(old, new))


def check_deploy(
    python: Path, project: Path, module: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`manage.py check --deploy --fail-level WARNING` with these settings, as a release gate runs it."""
    return run(
        [python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=project,
        env={"DJANGO_SETTINGS_MODULE": module, **(env or {})},
    )


def setting(
    python: Path, project: Path, module: str, expression: str, env: dict | None = None
) -> str:
    """What a Python expression over django.conf's `settings` prints, with these settings."""
    result = run(
        [python, "-c", "import django; django.setup(); from django.conf import settings; "
         f"print({expression})"],
        cwd=project,
        env={"DJANGO_SETTINGS_MODULE": module, **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
