"""copier copy and update of the template, against a trivial template of the same size."""

from __future__ import annotations

import re
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.git import git, init_repo, new_repo, release
from tests.support.paths import ROOT
from tests.support.rendering import render, update

from .measure import interleaved, log, row, summary

# Template versions for the update rows: an unchanged release and one with changes.
BASE, UNCHANGED, CHANGED = "0.1.0", "0.1.1", "0.2.0"
# The "with changes" release edits this many files in either template.
CHANGED_FILES = 2


def question_names() -> list[str]:
    names = []
    for line in (ROOT / "copier.yml").read_text().splitlines():
        found = re.match(r"^([a-z][a-z0-9_]*):", line)
        if found:
            names.append(found.group(1))
    return names


def template_files(template: Path) -> list[Path]:
    return sorted(p for p in (template / "template").rglob("*") if p.is_file())


def make_trivial_template(dest: Path, files: int, jinja_files: int, questions: int) -> Path:
    """A template copier has almost nothing to do for: same file and question counts.

    Plain str questions with defaults, one line per file, no tasks, no macros, no
    conditional names; the answers file template is the one a template needs to be
    updatable at all.
    """
    dest.mkdir(parents=True)
    lines = [
        "_subdirectory: template",
        "_templates_suffix: .jinja",
        "_answers_file: .copier-answers.yml",
    ]
    for n in range(questions):
        lines += [f"q{n:02d}:", "  type: str", f'  default: "value {n}"']
    (dest / "copier.yml").write_text("\n".join(lines) + "\n")
    folder = dest / "template"
    folder.mkdir()
    (folder / "{{_copier_conf.answers_file}}.jinja").write_text(
        "# Changes here will be overwritten by Copier\n{{ _copier_answers|to_nice_yaml -}}\n"
    )
    for n in range(files - 1):
        sub = folder / f"part{n % 5}"
        sub.mkdir(exist_ok=True)
        if n < jinja_files - 1:
            (sub / f"file{n:02d}.txt.jinja").write_text(f"{{{{ q{n % questions:02d} }}}}\n")
        else:
            (sub / f"file{n:02d}.txt").write_text(f"plain file {n}\n")
    release(init_repo(dest), BASE, "trivial template")
    return dest


def add_releases(template: Path, edit: list[Path]) -> None:
    """Tag an unchanged release, then one that edits a few files (a line added to each)."""
    release(template, UNCHANGED, "unchanged release")
    for path in edit:
        path.write_text(path.read_text() + "\n# A line added by the next release.\n")
    release(template, CHANGED, "release with changes")


def timed_copy(template: Path, workdir: Path, skip_tasks: bool = False) -> Callable[[], float]:
    count = iter(range(10_000))
    prefix = "copy-no-tasks" if skip_tasks else "copy"

    def measure() -> float:
        dest = workdir / f"{prefix}-{next(count)}"
        started = time.perf_counter()
        render(template, dest, vcs_ref=BASE, skip_tasks=skip_tasks)
        return time.perf_counter() - started

    return measure


def committed_copy(template: Path, dest: Path) -> Path:
    """A project copied at BASE and committed, as `copier update` wants it."""
    return new_repo(render(template, dest, vcs_ref=BASE), "generated")


def timed_update(pristine: Path, workdir: Path, to: str) -> Callable[[], float]:
    """Time `copier update` from BASE to `to` of a fresh duplicate of a committed project."""
    count = iter(range(10_000))

    def measure() -> float:
        dest = workdir / f"update-{to}-{next(count)}"
        shutil.copytree(pristine, dest, symlinks=True)
        started = time.perf_counter()
        update(dest, to)
        elapsed = time.perf_counter() - started
        # The answers file records the new version in either case.
        status = git("status", "--porcelain", "--", ".", ":!.copier-answers.yml", cwd=dest)
        if to == UNCHANGED and status.strip():
            raise RuntimeError(f"an update without changes changed files:\n{status}")
        if to == CHANGED and not status.strip():
            raise RuntimeError(f"the update with changes changed nothing in {dest}")
        return elapsed

    return measure


def copier_rows(real: Path, workdir: Path, runs: int, warmup: bool) -> tuple[list[dict], dict]:
    """The copy and update rows, and the shape of the template they measured."""
    files = template_files(real)
    jinja = [p for p in files if p.name.endswith(".jinja")]
    questions = question_names()
    trivial = make_trivial_template(workdir / "trivial", len(files), len(jinja), len(questions))
    real_copies, trivial_copies = workdir / "real-copies", workdir / "trivial-copies"
    real_copies.mkdir()
    trivial_copies.mkdir()
    add_releases(
        real,
        [
            real / "template" / "README.md.jinja",
            real / "template" / "deploy" / "gunicorn.conf.py.jinja",
        ],
    )
    add_releases(trivial, template_files(trivial)[1 : 1 + CHANGED_FILES])
    if warmup:
        log("copier: warm-up")
        timed_copy(real, real_copies)()
        timed_copy(trivial, trivial_copies)()
    log(f"copier copy: {runs} runs each")
    # The template's tasks (a Python subprocess each) are part of its cost; the same
    # copy without them, interleaved too, says how much of the ratio they are.
    real_copy, trivial_copy, real_copy_without_tasks = interleaved(
        runs,
        timed_copy(real, real_copies),
        timed_copy(trivial, trivial_copies),
        timed_copy(real, real_copies, skip_tasks=True),
    )
    rows = [
        row(
            "copier-copy",
            "copier copy --defaults of the template",
            f"a trivial template with the same number of files ({len(files)}) and questions "
            f"({len(questions)})",
            "s",
            real_copy,
            trivial_copy,
            "<=",
            1.25,
            template_without_tasks=summary(real_copy_without_tasks),
            ratio_without_tasks=round(
                statistics.median(real_copy_without_tasks) / statistics.median(trivial_copy), 3
            ),
        )
    ]
    written = [p for p in (real_copies / "copy-0").rglob("*") if p.is_file()]
    shape = {
        "template_files": len(files),
        "template_jinja_files": len(jinja),
        "questions": len(questions),
        "files_written_by_copy_defaults": len(written),
        "files_changed_by_the_changed_release": CHANGED_FILES,
    }
    real_pristine = committed_copy(real, workdir / "real-pristine")
    trivial_pristine = committed_copy(trivial, workdir / "trivial-pristine")
    for to, label in ((UNCHANGED, "no change"), (CHANGED, f"changes in {CHANGED_FILES} files")):
        log(f"copier update ({label}): {runs} runs each")
        real_update, trivial_update = interleaved(
            runs,
            timed_update(real_pristine, real_copies, to),
            timed_update(trivial_pristine, trivial_copies, to),
        )
        row_id = "copier-update-unchanged" if to == UNCHANGED else "copier-update-changed"
        rows.append(
            row(
                row_id,
                f"copier update, {label} ({BASE} -> {to})",
                "the same update of the trivial template",
                "s",
                real_update,
                trivial_update,
                "<=",
                1.25,
            )
        )
    return rows, shape
