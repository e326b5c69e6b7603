"""Nothing `copier update` could not merge is left in the project.

`copier update` exits 0 even where the template and this project changed the
same lines: it keeps both versions between conflict markers (or writes the hunk
to a .rej file). These tests, like pre-commit's check-merge-conflict, fail
until every conflict is resolved by hand.
"""

import re
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Built from parts, so that this file does not hold the markers it looks for.
CONFLICT_MARKER = re.compile(f"^({'<' * 7}|{'>' * 7}) ", re.MULTILINE)

# Searched when the project is not a git checkout (an unpacked release, say).
NOT_SOURCE = {".git", ".venv", "node_modules", "__pycache__", "staticfiles", "media"}


def project_files() -> list[Path]:
    """The files git tracks or would track, or every source file without git."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return [
            path
            for path in PROJECT_ROOT.rglob("*")
            if path.is_file() and not NOT_SOURCE & set(path.relative_to(PROJECT_ROOT).parts)
        ]
    # A file copier left in conflict is listed once per merge stage.
    return [PROJECT_ROOT / name for name in sorted(set(listed.split("\0"))) if name]


def test_no_conflict_markers_are_left():
    conflicts = []
    for path in project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for match in CONFLICT_MARKER.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            conflicts.append(f"{path.relative_to(PROJECT_ROOT)}:{line}")
    assert conflicts == [], "resolve these copier update conflicts: " + ", ".join(conflicts)


def test_no_rejected_hunks_are_left():
    rejected = [str(p.relative_to(PROJECT_ROOT)) for p in project_files() if p.suffix == ".rej"]
    assert rejected == [], "apply each hunk by hand, then delete: " + ", ".join(rejected)
