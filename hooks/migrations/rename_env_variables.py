"""Rename environment variables in the project's .env after a template release renames them.

`copier update` carries the rename into tracked files (.env.example, env.py) as a
diff, but .env is git-ignored and never rendered again: only this migration can
rename a variable there. It is declared under `_migrations` in copier.yml for
the release that made the rename, and copier runs it once when an update crosses
that release.

    rename_env_variables.py --backup .env.before-0.2.0 OLD_NAME=NEW_NAME ...

- The values are moved as they are and never printed: only names are.
- Before the first change, the original file is copied to the backup path
  (0600, like .env; `.env.*` is git-ignored). An existing backup is kept.
- Idempotent: a variable already renamed, or absent, is left alone, and a file
  that needs no change is not rewritten. When both names are set, the new one
  wins and the old line is left for a person to remove.

Only the standard library is used: this runs on the interpreter that runs copier.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

# `NAME=value` or `export NAME=value`, as python-dotenv, systemd and compose read them.
ASSIGNMENT = re.compile(
    r"^(?P<lead>\s*(?:export\s+)?)(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>\s*=.*)$"
)


def rename_pair(value: str) -> tuple[str, str]:
    old, sep, new = value.partition("=")
    if not sep or not ASSIGNMENT.match(f"{old}=") or not ASSIGNMENT.match(f"{new}="):
        raise argparse.ArgumentTypeError(f"{value!r} is not OLD_NAME=NEW_NAME")
    return old, new


def assigned_names(lines: list[str]) -> set[str]:
    return {m["name"] for line in lines if (m := ASSIGNMENT.match(line))}


def rename(lines: list[str], renames: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The renamed lines, and one message per variable (names only, never values)."""
    present = assigned_names(lines)
    messages = []
    for old, new in renames:
        if old not in present:
            continue
        if new in present:
            messages.append(f"{old} and {new} are both set: {new} is used, remove {old} by hand")
            continue
        lines = [
            f"{m['lead']}{new}{m['rest']}"
            if (m := ASSIGNMENT.match(line)) and m["name"] == old
            else line
            for line in lines
        ]
        present = (present - {old}) | {new}
        messages.append(f"{old} renamed to {new}")
    return lines, messages


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a 0600 file: the secret is never readable by others."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("renames", nargs="+", type=rename_pair, metavar="OLD_NAME=NEW_NAME")
    parser.add_argument("--path", type=Path, default=Path(".env"))
    parser.add_argument("--backup", type=Path, help="where to keep the file as it was")
    args = parser.parse_args(argv)

    if not args.path.exists():
        print(f"{args.path} does not exist: nothing to rename")
        return 0
    original = args.path.read_text(encoding="utf-8")
    lines, messages = rename(original.splitlines(keepends=False), args.renames)
    trailing_newline = "\n" if original.endswith("\n") else ""
    updated = "\n".join(lines) + trailing_newline
    if updated != original:
        backup = args.backup or args.path.with_name(args.path.name + ".bak")
        if not backup.exists():
            # Created 0600 from the start, like .env: the old secret is never readable by others.
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(original)
            print(f"{args.path} as it was is kept in {backup}")
        write_private(args.path, updated)
    for message in messages or ["no variable to rename"]:
        print(f"{args.path}: {message}")
    if updated != original:
        print("Rename them on every server too: in its .env and wherever its environment is set.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
