"""The Jinja extension copier loads from this template (`_jinja_extensions` in copier.yml).

It connects copier to the answers model in answers.py, beside this file:

- `problem('domain')`, a question's validator at the prompt;
- `refuse_given_answers()` and `refuse_answers()`, the two checkpoints in copier.yml that
  stop copier with one line per problem, before it writes a file;
- every rendered file sees the validated, normalised answers and the values computed once
  from them (`hosts`, `https_port_suffix`, `settings_module`, ...);
- filters that write free text (the project's name) safely into each kind of file.
"""

from __future__ import annotations

import datetime
import html
import json
import sys
from collections.abc import Mapping
from functools import lru_cache
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

import yaml
from copier.errors import UserMessageError
from copier_template_extensions import ContextHook
from jinja2 import pass_context


def _load_sibling(file: str, name: str):
    """A module beside this file, by path: the template folder is not on sys.path, and
    must not be."""
    if name not in sys.modules:
        spec = spec_from_file_location(name, Path(__file__).with_name(file))
        module = module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


answers = _load_sibling("answers.py", "django_shipshape_answers")
# An update that switches answers in a way that would delete files the team changed is
# refused at the last checkpoint, below.
updates = _load_sibling("updates.py", "django_shipshape_updates")

# Questions whose answer copier parses as YAML (`type: yaml` in copier.yml).
YAML_QUESTIONS = ("extra_hosts", "lb_trusted_cidrs")


class Refused(UserMessageError):
    """copier prints a UserMessageError's text and exits 1, with no traceback."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(f"refused: {problem}" for problem in problems))


def _given(context: Mapping[str, Any]) -> dict[str, Any]:
    """Answers given with -d or --data-file, parsed the way copier will parse them."""
    data = dict(context["_copier_conf"]["data"])
    for name in YAML_QUESTIONS:
        if isinstance(data.get(name), str):
            try:
                data[name] = yaml.safe_load(data[name])
            except yaml.YAMLError:
                raise Refused(
                    [f"{name}: {data[name]!r} is not a YAML list; write [a, b] or a, b"]
                ) from None
    return data


def _answer_values(context: Mapping[str, Any]) -> dict[str, Any]:
    return {name: context[name] for name in answers.QUESTIONS if name in context}


@lru_cache(maxsize=64)
def _validated(frozen: str, given: frozenset[str]):
    return answers.validate(json.loads(frozen), given=given)


def _model(context: Mapping[str, Any]):
    """The validated model of the answers in `context` (cached: every file asks for it)."""
    values = _answer_values(context)
    given = frozenset(context["_copier_conf"]["data"])
    return _validated(json.dumps(values, sort_keys=True, default=str), given)


@pass_context
def problem(context, question: str) -> str:
    """The validator of `question` at the prompt: one line, or nothing when accepted.

    Answers given with -d, --data-file or --defaults are judged by the checkpoints
    instead, which report every problem at once and cleanly (copier ends a validator's
    refusal of such an answer in a traceback).
    """
    conf = context["_copier_conf"]
    if conf["defaults"] or question in conf["data"]:
        return ""
    return answers.problem_at_prompt(question, _answer_values(context))


@pass_context
def refuse_given_answers(context) -> str:
    """First checkpoint: the given answers on their own, before copier casts any of them."""
    if problems := answers.check_given(_given(context)):
        raise Refused(problems)
    return ""


@pass_context
def refuse_answers(context) -> str:
    """Last checkpoint: every answer together, defaults and derived defaults included."""
    try:
        model = _model(context)
    except answers.AnswersError as error:
        raise Refused(error.problems) from None
    # Hook for updates.py: never let an update delete files the team changed.
    updates.remember_fresh_render(context, model.model_dump())
    if problems := updates.edits_a_switch_would_delete(context, model.model_dump(), answers):
        raise Refused(problems)
    updates.note_what_the_update_changes(context, model.model_dump())
    return ""


# Free text, such as project_name, escaped for each kind of file it lands in. Line breaks
# and control characters never get this far: the answers model refuses them.


def python_text(value: str) -> str:
    """Text inside a Python string literal or docstring: quotes and backslashes escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def toml_string(value: str) -> str:
    """A complete TOML basic string, quotes included."""
    return json.dumps(str(value), ensure_ascii=False)


def systemd_text(value: str) -> str:
    """A systemd unit's free-text value: no specifier (%) and no line continuation (\\)."""
    return str(value).replace("\\", "\\\\").replace("%", "%%")


def django_html_text(value: str) -> str:
    """An HTML text node in a Django template: escaped, and no template tag or variable."""
    return html.escape(str(value)).replace("{", "&#123;").replace("}", "&#125;")


def a_year_from_today() -> str:
    """security.txt's first Expires date (RFC 9116 asks for less than a year ahead)."""
    return (datetime.date.today() + datetime.timedelta(days=365)).isoformat()


FILTERS = {
    "python_text": python_text,
    "toml_string": toml_string,
    "systemd_text": systemd_text,
    "django_html_text": django_html_text,
}


class AnswersExtension(ContextHook):
    """Validators and checkpoints as globals, escaping filters, the answers in every render."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals.update(
            problem=problem,
            refuse_given_answers=refuse_given_answers,
            refuse_answers=refuse_answers,
            slug_from_name=answers.slug_from_name,
            readiness_path_from=answers.readiness_path_from,
            a_year_from_today=a_year_from_today,
            update_notices=updates.update_notices,
        )
        environment.filters.update(FILTERS)

    def hook(self, context: dict[str, Any]) -> None:
        # While copier is still asking, the answers are incomplete: nothing to compute.
        if str(context.get("_copier_phase")) == "prompt":
            return
        try:
            model = _model(context)
        except answers.AnswersError:
            return  # the last checkpoint has already refused these answers
        context.update(model.model_dump())
        context.update(model.computed())
