"""An update that changes an answer never deletes a file the team changed.

`copier update` renders the project's last version with the old answers, then deletes
every file that render has and the new one lacks, edited or not, and exits 0: switching
proxy from nginx to caddy deletes a tuned nginx config, split settings to single deletes
the team's lines in base.py and production.py. Before copier writes anything, this
module works out which files the new answers no longer render, finds which of them the
team changed, and refuses the switch naming them, with the way through: rename each one
(copier deletes only files it rendered), commit, update again and carry the changes into
the new files.

A file counts as changed when it differs from copier's own render of the last version
with the old answers (the first of an update's scratch renders, remembered here when its
checkpoint runs), or, failing that render, when git shows a change since the last commit
that touched the answers file.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from jinja2.sandbox import SandboxedEnvironment
from pathspec import PathSpec

# Answers that decide which files exist (see the file names under template/).
FILE_DECIDING = (
    "project_slug", "settings_layout", "proxy", "deployment", "kubernetes_routing", "gunicorn_bind",
    "ci",
)  # fmt: skip

_names = SandboxedEnvironment(keep_trailing_newline=True)

# Fresh renders of this process, by answers and template version: an update's render of
# the last version is among them by the time its render into the project is checked.
_fresh_renders: dict[str, Path] = {}


def _render_key(answers: Mapping[str, Any], version: Any) -> str:
    return json.dumps([answers, str(version)], sort_keys=True, default=str)


def remember_fresh_render(context: Mapping[str, Any], answers: Mapping[str, Any]) -> None:
    """Note a render into an empty folder: it may be the scratch render of a last version."""
    destination = Path(context["_copier_conf"]["dst_path"])
    if destination.is_dir() and not any(destination.iterdir()):
        _fresh_renders[_render_key(answers, context["_copier_conf"]["vcs_ref"])] = destination


def is_update_of(destination: Path) -> bool:
    """Whether copier is updating `destination` (not rendering a copy beside it)."""
    try:
        from copier._main import _operation  # the operation copier runs; not public API
    except ImportError:  # pragma: no cover - another copier: judge by the folder alone
        return True
    return _operation.get(None) == "update"


def _git(destination: Path, *args: str) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(destination), *args], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def _template_files(template: Path) -> list[PurePosixPath]:
    """Every file under the template's subdirectory, as its unrendered relative path."""
    config = yaml.safe_load((template / "copier.yml").read_text())
    root = template / config.get("_subdirectory", "")
    return [PurePosixPath(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file()]


def _excluded(template: Path, values: Mapping[str, Any]) -> PathSpec:
    config = yaml.safe_load((template / "copier.yml").read_text())
    lines = []
    for entry in config.get("_exclude", []):
        lines += _names.from_string(entry).render(values).splitlines()
    return PathSpec.from_lines("gitwildmatch", [line for line in lines if line.strip()])


def rendered_paths(
    template: Path, files: list[PurePosixPath], values: Mapping[str, Any]
) -> set[str]:
    """The project files these answers render: each name rendered as copier renders it."""
    excluded = _excluded(template, values)
    paths = set()
    for file in files:
        parts = [_names.from_string(part).render(values) for part in file.parts]
        if not all(parts):
            continue  # a part rendered empty: the answers leave this file out
        path = "/".join(parts).removesuffix(".jinja")
        if not excluded.match_file(path):
            paths.add(path)
    return paths


def _values(model_module, answers: Mapping[str, Any], answers_file: str) -> dict[str, Any]:
    """Answers and computed values, as file names see them."""
    try:
        model = model_module.validate(answers)
        values = {**model.model_dump(), **model.computed()}
    except model_module.AnswersError:
        bind = str(answers.get("gunicorn_bind", ""))
        values = {**answers, "gunicorn_socket": bind[5:] if bind.startswith("unix:") else ""}
    return {**values, "_copier_conf": {"answers_file": answers_file}}


def _changed_by_the_team(
    destination: Path, paths: list[str], last_render: Path | None, answers_file: str
) -> list[str]:
    if last_render is not None and last_render.is_dir():
        return [
            p
            for p in paths
            if not (last_render / p).is_file()
            or (last_render / p).read_bytes() != (destination / p).read_bytes()
        ]
    last_update = (_git(destination, "log", "-1", "--format=%H", "--", answers_file) or "").strip()
    if not last_update:
        return paths  # no way to tell the team's changes from the template's: keep them all
    diff = _git(destination, "diff", "--name-only", "--relative", last_update, "--", *paths)
    changed = set((diff or "").splitlines())
    return [p for p in paths if p in changed]


def edits_a_switch_would_delete(
    context: Mapping[str, Any], new_answers: Mapping[str, Any], model_module
) -> list[str]:
    """One line per changed answer whose switch would delete files the team changed."""
    conf = context["_copier_conf"]
    destination = Path(conf["dst_path"])
    answers_file = str(conf["answers_file"])
    recorded_file = destination / answers_file
    if not recorded_file.is_file() or not is_update_of(destination):
        return []  # a copy, or one of the scratch renders an update makes
    recorded = yaml.safe_load(recorded_file.read_text()) or {}
    old = {**new_answers, **{k: v for k, v in recorded.items() if k in new_answers}}
    switched = [q for q in FILE_DECIDING if old.get(q) != new_answers.get(q)]
    if not switched:
        return []

    template = Path(conf["src_path"])
    files = _template_files(template)
    before = rendered_paths(template, files, _values(model_module, old, answers_file))
    after = rendered_paths(template, files, _values(model_module, new_answers, answers_file))
    deleted = sorted(p for p in before - after if (destination / p).is_file())
    if not deleted:
        return []
    old_values = _values(model_module, old, answers_file)
    last_render = _fresh_renders.get(
        _render_key(
            {k: v for k, v in old_values.items() if k in new_answers}, recorded.get("_commit")
        )
    )
    lost = _changed_by_the_team(destination, deleted, last_render, answers_file)
    if not lost:
        return []

    problems = []
    for question in switched:
        alone = {**old, question: new_answers[question]}
        by_this = rendered_paths(template, files, _values(model_module, alone, answers_file))
        mine = [p for p in lost if p not in by_this]
        if mine:
            problems.append(_refusal(question, old[question], new_answers[question], mine))
            lost = [p for p in lost if p not in mine]
    if lost:  # deleted only by the answers changing together
        problems.append(_refusal(", ".join(switched), "the old answers", "the new", lost))
    return problems


def _refusal(question: str, old: Any, new: Any, paths: list[str]) -> str:
    first = paths[0]
    files = ", ".join(paths)
    rename = f"git mv {first} {first}.mine" + (" and the like for each" if len(paths) > 1 else "")
    return (
        f"{question}: changing {old} to {new} would delete {files}, changed since the last "
        f"update; keep your version under another name ({rename}), commit, update again, "
        "then carry your changes into the new files"
    )


# What an update changes for the people using the site, said after it ------------------

# Said once per update, after copier's own output (`_message_after_update`).
_notices: dict[str, None] = {}

HOST_COOKIES = (
    "The session and CSRF cookies are renamed to __Host-sessionid and __Host-csrftoken in "
    "{settings}: once this is deployed, everyone logged in is logged out once, and a form "
    "left open from before fails its CSRF check once (reloading the page fixes it). "
    "docs/updating.md says more."
)


HOST_SESSION_COOKIE = re.compile(r"""^\s*SESSION_COOKIE_NAME\s*=\s*["']__Host-""", re.MULTILINE)


def production_settings_file(answers: Mapping[str, Any]) -> PurePosixPath:
    """The file that holds production's security settings, for these answers."""
    slug = answers["project_slug"]
    if answers.get("retrofit"):
        return PurePosixPath(slug, "settings_production.py")
    if answers.get("settings_layout") == "single":
        return PurePosixPath(slug, "settings.py")
    return PurePosixPath(slug, "settings", "security.py")


def note_what_the_update_changes(context: Mapping[str, Any], answers: Mapping[str, Any]) -> None:
    """Before the project is rendered anew: what its files say now that the update changes."""
    conf = context["_copier_conf"]
    destination = Path(conf["dst_path"])
    if not (destination / str(conf["answers_file"])).is_file() or not is_update_of(destination):
        return
    settings = production_settings_file(answers)
    path = destination / settings
    if path.is_file() and not HOST_SESSION_COOKIE.search(path.read_text()):
        _notices[HOST_COOKIES.format(settings=settings)] = None


def update_notices() -> str:
    """The notices of this update, one paragraph each (empty when there are none)."""
    return "\n\n".join(_notices)
