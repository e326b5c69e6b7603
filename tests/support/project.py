"""What a rendered project looks like from outside: its settings module, its answers."""

from __future__ import annotations

from pathlib import Path

import yaml


def settings_module(answers: dict) -> str:
    """The production settings module for these answers: split modules or one settings.py."""
    slug = answers.get("project_slug", "my_site")
    split = answers.get("settings_layout", "split") == "split"
    return f"{slug}.settings.production" if split else f"{slug}.settings"


def recorded_answers(project: Path) -> dict:
    """The answers copier recorded in the project, for updates."""
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of `old` in `path`, or fail naming what moved."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name}: expected {old!r} exactly once"
    path.write_text(text.replace(old, new))
