"""Hostile answers: each one is refused with one line, or lands in every file safely escaped.

Answers reach nginx configs, Caddyfiles, systemd units, Python, TOML, YAML, HTML and Django
templates. Every answer but the project's name has a strict shape, so a payload aimed at
one of those files (a newline, `;`, braces, quotes, `%`, `$`) is refused by the answers
model. The project's name is free text: it is rendered, and every file it lands in must
still parse with its own tool and mean exactly what the default project's file means.
"""

from __future__ import annotations

import ast
import html
import json
import re
import tomllib
from pathlib import Path

import crossplane
import pytest
import yaml

from extensions.answers import AnswersError, validate

from .support.binaries import CURRENT_CADDY
from .support.processes import run
from .support.validators import caddy_validate, nginx_test, systemd_verify
from .test_answers import DEFAULTS

# Payloads aimed at each kind of file, given to every question that takes text.
INJECTIONS = [
    "x\nserver { listen 80; root /etc; }",
    "x\n[Service]\nExecStartPre=/bin/sh -c id",
    "x;\n\trespond 200",
    "x; } location / { root /etc; } #",
    "x{",
    "x}",
    "x y",
    "x'\"",
    "x\\",
    "x$(id)",
    "x`id`",
    "x%n",
    "x\x00",
    "x\r",
    "x\u2028",
    "{{ 7*7 }}",
    "{% now 'Y' %}",
    "../../etc/passwd",
    "x" * 5000,
]

SHAPED_QUESTIONS = [
    "project_slug", "domain", "extra_hosts", "admin_path", "health_path", "app_dir",
    "tls_cert", "tls_key", "gunicorn_bind", "readiness_path", "security_contact",
    "security_contact_page",
]  # fmt: skip
ANYWHERE = {"gunicorn_bind": "0.0.0.0:8000", "proxy": "load_balancer"}


def refusal(question: str, value) -> list[str]:
    answers = {**DEFAULTS, question: value}
    if question == "lb_trusted_cidrs":
        answers.update(ANYWHERE)
    try:
        validate(answers, given={question})
    except AnswersError as error:
        return error.problems
    return []


@pytest.mark.parametrize("payload", INJECTIONS, ids=lambda p: repr(p[:30]))
@pytest.mark.parametrize("question", [*SHAPED_QUESTIONS, "lb_trusted_cidrs"])
def test_a_payload_in_a_shaped_answer_is_refused_with_one_line(question, payload):
    value = [payload] if question in ("extra_hosts", "lb_trusted_cidrs") else payload
    if question in ("admin_path",):
        value = f"{payload}/"
    elif question in ("health_path", "app_dir", "tls_cert", "tls_key", "readiness_path"):
        value = f"/{payload}"
    elif question == "gunicorn_bind":
        value = f"unix:/run/{payload}.sock"
    elif question == "security_contact":
        value = f"mailto:{payload}@example.com"
    elif question == "security_contact_page":
        question, value = "security_contact", f"https://example.com/{payload}"
    problems = refusal(question, value)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{question}: ")
    assert "\n" not in problems[0]


@pytest.mark.parametrize("payload", [p for p in INJECTIONS if p.isprintable() and len(p) < 100])
def test_a_payload_in_the_name_is_accepted_only_as_one_printable_line(payload):
    assert refusal("project_name", payload) == []


@pytest.mark.parametrize("payload", [p for p in INJECTIONS if not p.isprintable()])
def test_a_line_break_or_control_character_in_the_name_is_refused(payload):
    (problem,) = refusal("project_name", payload)
    assert problem.startswith("project_name: ") and "control character" in problem


CLUMSY_DEPENDENCIES = ["requirements", "REQUIREMENTS.TXT", " none", "pyproject.toml ",
                       "setup.py", "", True, 1.5, ["none"], None]  # fmt: skip


@pytest.mark.parametrize("payload", [*INJECTIONS, *CLUMSY_DEPENDENCIES], ids=repr)
def test_a_payload_in_existing_dependencies_is_refused_with_one_line(payload):
    """A retrofit's answer that picks the RUNBOOK's install steps: one of three, or refused."""
    answers = {**DEFAULTS, "retrofit": True, "existing_dependencies": payload}
    with pytest.raises(AnswersError) as refused:
        validate(answers, given={"existing_dependencies"})
    (problem,) = refused.value.problems
    assert problem.startswith("existing_dependencies: ") and "\n" not in problem


# The project's name, rendered -------------------------------------------------------

NAMES = [
    'My "Site"',
    "O'Brien \\ Sons\\",
    'Triple """ quoted',
    "{{ request.META }} {% now 'Y' %}",
    "100% <script>alert(1)</script> & co",
    "semi; } server { listen 80; root /etc; } #",
    "%n %i %% $HOME `id`",
    "\\N{BULLET} \\x41",
    "Ünïcödé ☃ – Café",
]
LAYOUTS = {
    "nginx-systemd-split": {},
    "caddy-compose-single": {
        "proxy": "caddy", "deployment": "compose", "settings_layout": "single",
        "gunicorn_bind": "0.0.0.0:8000",
    },
}  # fmt: skip


def python_shape(source: str) -> str:
    """The syntax tree with every string constant blanked: what the code does, not its words."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


def unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of a systemd unit, as systemd reads them (escapes undone)."""
    entries, section = [], ""
    for line in text.splitlines():
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        entries.append((section, key, value.replace("%%", "%").replace("\\\\", "\\")))
    return entries


def caddy_json(caddyfile: Path, tmp_path: Path) -> dict:
    """What Caddy runs, read from one fixed place (file_server hides the Caddyfile's path)."""
    copy = tmp_path / "adapt" / "Caddyfile"
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes(caddyfile.read_bytes())
    adapted = run([CURRENT_CADDY, "adapt", "--config", "Caddyfile", "--adapter", "caddyfile"], cwd=copy.parent)  # fmt: skip
    assert adapted.returncode == 0, adapted.stderr
    return json.loads(adapted.stdout)


def nginx_tree(conf: Path) -> list:
    parsed = crossplane.parse(str(conf), single=True, comments=False, check_ctx=False)
    assert parsed["status"] == "ok", parsed["errors"]

    def strip(block):
        return [(d["directive"], d["args"], strip(d.get("block", []))) for d in block]

    return strip(parsed["config"][0]["parsed"])


@pytest.fixture(scope="module")
def baselines(rendered, validation_paths) -> dict[str, Path]:
    return {name: rendered(**answers, **validation_paths) for name, answers in LAYOUTS.items()}


RENDER_HOME_PAGE = """
import sys
import django
from django.conf import settings
settings.configure(TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}])
django.setup()
from django.template import engines
print(engines["django"].from_string(open(sys.argv[1]).read()).render({}))
"""


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_a_hostile_name_lands_in_every_file_as_text(
    rendered, validation_paths, baselines, project_python, layout, name, tmp_path
):
    project = rendered(
        project_name=name, project_slug="my_site", **LAYOUTS[layout], **validation_paths
    )
    baseline = baselines[layout]
    files = sorted(p.relative_to(project) for p in project.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(baseline) for p in baseline.rglob("*") if p.is_file())

    for relative in files:
        path, default = project / relative, baseline / relative
        if path.suffix == ".py":
            assert python_shape(path.read_text()) == python_shape(default.read_text()), relative
        elif path.suffix == ".toml":
            assert (
                tomllib.loads(path.read_text()).keys() == tomllib.loads(default.read_text()).keys()
            )
        elif path.suffix in (".yml", ".yaml") and path.name != ".copier-answers.yml":
            assert yaml.safe_load(path.read_text()) == yaml.safe_load(default.read_text()), relative
        elif path.suffix in (".service", ".socket"):
            entries = unit_entries(path.read_text())
            assert [e[:2] for e in entries] == [e[:2] for e in unit_entries(default.read_text())]
            (description,) = [v for s, k, v in entries if (s, k) == ("[Unit]", "Description")]
            assert description.startswith(f"{name} (gunicorn"), relative
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["description"] == name
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["project_name"] == name

    # The home page a visitor sees: the name as text, no template tag run, no markup.
    page = run([project_python("5.2"), "-c", RENDER_HOME_PAGE, project / "my_site/templates/home.html"], cwd=project)  # fmt: skip
    assert page.returncode == 0, page.stderr
    title = re.search(r"<title>(.*)</title>", page.stdout, re.S).group(1)
    assert html.unescape(title) == name
    assert "<script>" not in page.stdout

    if (project / "deploy/nginx").exists():
        conf = project / "deploy/nginx/my_site.conf"
        assert nginx_tree(conf) == nginx_tree(baseline / "deploy/nginx/my_site.conf")
        checked = nginx_test(project, project_python("5.2"), conf, tmp_path)
        assert checked["returncode"] == 0, checked["stderr"]
    if (project / "deploy/caddy").exists():
        caddyfile = project / "deploy/caddy/Caddyfile"
        assert caddy_json(caddyfile, tmp_path) == caddy_json(baseline / "deploy/caddy/Caddyfile", tmp_path)  # fmt: skip
        assert caddy_validate(CURRENT_CADDY, caddyfile, tmp_path).returncode == 0
    if (project / "deploy/systemd").exists():
        units = sorted(p.name for p in (project / "deploy/systemd").iterdir())
        verified = systemd_verify(project / "deploy/systemd", units, tmp_path)
        assert verified.returncode == 0 and not verified.stderr, verified.stderr


# ci: a choice that decides which CI files exist ----------------------------------------

CLUMSY_CI = ["GitHub", " github", "github\n", "gitlab-ci", "none", "", None, True, 1, ["github"]]


@pytest.mark.parametrize("value", [*INJECTIONS, *CLUMSY_CI], ids=lambda v: repr(v)[:30])
def test_a_hostile_or_clumsy_ci_answer_is_refused_with_one_line(value):
    problems = refusal("ci", value)
    assert len(problems) == 1, problems
    assert problems[0].startswith("ci: ") and "\n" not in problems[0]
    assert problems[0].endswith("answer one of github, gitlab")


def test_a_hostile_ci_answer_given_to_copier_writes_nothing(template_repo, tmp_path):
    from .support.rendering import copier_copy_cli

    dest = tmp_path / "project"
    result = copier_copy_cli(template_repo, dest, "ci=github; rm -rf /")
    refused = [line for line in result.stderr.splitlines() if line.startswith("refused: ")]
    assert refused == [
        "refused: ci: 'github; rm -rf /' is not one of the choices; answer one of github, gitlab"
    ], result.stderr
    assert "Traceback" not in result.stderr
    assert not dest.exists()
