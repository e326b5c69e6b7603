"""Team presets: each answer file renders a project that passes its deploy checks and tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .support.paths import ROOT
from .support.processes import run
from .support.project import check_deploy, recorded_answers, settings_module
from .support.rendering import copier_copy_cli

PRESETS = sorted((ROOT / "presets").glob("*.yml"))


def render_preset(template_repo: Path, preset: str, dest: Path) -> Path:
    """`copier copy --data-file presets/<preset>` as a team types it, with no user settings."""
    result = copier_copy_cli(
        template_repo, dest, "project_name=Shop", "domain=shop.example.org",
        data_file=template_repo / "presets" / preset,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return dest


@pytest.fixture(scope="session")
def preset_project(template_repo, tmp_path_factory):
    projects: dict[str, Path] = {}

    def get(preset: str) -> Path:
        if preset not in projects:
            dest = tmp_path_factory.mktemp(Path(preset).stem) / "shop"
            projects[preset] = render_preset(template_repo, preset, dest)
        return projects[preset]

    return get


# With --dist loadgroup, each preset's project is rendered once, on one worker.
presets = pytest.mark.parametrize(
    "preset",
    [pytest.param(p.name, marks=pytest.mark.xdist_group(f"preset-{p.stem}")) for p in PRESETS],
)


def test_the_three_common_setups_have_presets():
    assert [p.name for p in PRESETS] == [
        "cloud-load-balancer.yml",
        "compose-caddy-postgres.yml",
        "vps-nginx-systemd.yml",
    ]


@presets
def test_a_preset_answers_only_questions_the_template_asks(preset):
    questions = yaml.safe_load((ROOT / "copier.yml").read_text())
    preset_answers = yaml.safe_load((ROOT / "presets" / preset).read_text())
    unknown = [name for name in preset_answers if name.startswith("_") or name not in questions]
    assert unknown == []


@presets
def test_the_project_records_the_presets_answers_for_updates(preset_project, preset):
    recorded = recorded_answers(preset_project(preset))
    preset_answers = yaml.safe_load((ROOT / "presets" / preset).read_text())
    assert {name: recorded[name] for name in preset_answers} == preset_answers
    assert recorded["domain"] == "shop.example.org"


@presets
def test_a_preset_project_passes_check_deploy(preset_project, project_python, preset):
    project = preset_project(preset)
    recorded = recorded_answers(project)
    python = project_python(recorded["django_version"])
    result = check_deploy(python, project, settings_module(recorded))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@presets
def test_a_preset_projects_own_test_suite_passes(preset_project, project_python, preset):
    project = preset_project(preset)
    python = project_python(recorded_answers(project)["django_version"])
    result = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
