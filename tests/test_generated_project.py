"""Every generated project passes Django's deploy checks and its own test suite."""

from __future__ import annotations

from .combinations import parametrize_combinations
from .conftest import run


def settings_module(answers: dict) -> str:
    layout = answers.get("settings_layout", "split")
    return "my_site.settings.production" if layout == "split" else "my_site.settings"


@parametrize_combinations()
def test_production_settings_pass_check_deploy_with_the_generated_env(
    rendered, project_python, answers
):
    project = rendered(**answers)
    python = project_python(answers.get("django_version", "5.2"))
    result = run(
        [python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=project,
        env={"DJANGO_SETTINGS_MODULE": settings_module(answers)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@parametrize_combinations()
def test_the_generated_test_suite_passes(rendered, project_python, answers):
    project = rendered(**answers)
    python = project_python(answers.get("django_version", "5.2"))
    result = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
