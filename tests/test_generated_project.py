"""Every generated project passes Django's deploy checks and its own test suite."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .combinations import parametrize_combinations
from .support.ports import accepts_connections, free_port
from .support.processes import clean_env, run, start_process, wait_until
from .support.project import settings_module

# What Django's technical 404 page says and its plain one never does.
DEBUG_PAGE_MARKER = "Django tried these URL patterns"


@contextmanager
def runserver(project: Path, python: Path, log: Path, **env: str) -> Iterator[str]:
    """`manage.py runserver` in the project, reading its .env as a developer's would."""
    port = free_port()
    args = [python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    server = start_process("runserver", args, cwd=project, env=clean_env(**env), log=log)
    try:
        wait_until(lambda: accepts_connections(("127.0.0.1", port)), [server], "runserver")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


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


@pytest.mark.parametrize("layout", ["split", "single"])
def test_a_load_balancer_on_other_ports_keeps_djangos_security_middleware_and_its_checks(
    rendered, project_python, layout
):
    """The redirect to the public HTTPS port wraps SecurityMiddleware instead of replacing
    it: Django's deploy checks look for SecurityMiddleware by name (security.W001), and
    skip every setting it reads when it is missing."""
    answers = {"proxy": "load_balancer", "gunicorn_bind": "0.0.0.0:8000", "http_port": 8080,
               "https_port": 8443, "settings_layout": layout}  # fmt: skip
    project = rendered(**answers)
    python = project_python("5.2")
    env = {"DJANGO_SETTINGS_MODULE": settings_module(answers)}
    result = run([python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                 cwd=project, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    middleware = run([python, "-c", "import django; django.setup(); from django.conf import "
                      "settings; print(settings.MIDDLEWARE[1:3])"], cwd=project, env=env)  # fmt: skip
    assert middleware.stdout.strip() == str(
        [
            "my_site.https.HttpsPortRedirectMiddleware",
            "django.middleware.security.SecurityMiddleware",
        ]
    ), middleware.stderr


@pytest.mark.parametrize("layout", ["split", "single"])
def test_the_generated_env_serves_production_settings_over_https_only(
    fresh_project, project_python, tmp_path, layout
):
    answers = {"settings_layout": layout}
    project = fresh_project(**answers)
    module = settings_module(answers)
    log = tmp_path / "runserver.log"
    with runserver(project, project_python("5.2"), log, DJANGO_SETTINGS_MODULE=module) as url:
        plain = httpx.get(f"{url}/", headers={"Host": "example.com"})
        missing = httpx.get(
            f"{url}/no-such-page/",
            headers={"Host": "example.com", "X-Forwarded-Proto": "https"},
        )
    assert plain.status_code == 301
    assert plain.headers["location"] == "https://example.com/"
    assert missing.status_code == 404
    assert DEBUG_PAGE_MARKER not in missing.text


@pytest.mark.parametrize("layout", ["split", "single"])
def test_the_readmes_runserver_shows_debug_pages_on_localhost(
    fresh_project, project_python, tmp_path, layout
):
    project = fresh_project(settings_layout=layout)
    if layout == "single":
        # The generated README's development step for one settings.py.
        with (project / ".env").open("a") as env_file:
            env_file.write("DJANGO_DEBUG=true\n")
    with runserver(project, project_python("5.2"), tmp_path / "runserver.log") as url:
        missing = httpx.get(f"{url}/no-such-page/")
    assert missing.status_code == 404, missing.text[:500]
    assert DEBUG_PAGE_MARKER in missing.text


@parametrize_combinations()
def test_the_generated_test_suite_passes(rendered, project_python, answers):
    project = rendered(**answers)
    python = project_python(answers.get("django_version", "5.2"))
    result = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


@pytest.mark.parametrize(
    "answers",
    [pytest.param({"django_version": "5.2"}, id="django5.2-split"),
     pytest.param({"django_version": "6.1", "settings_layout": "single"}, id="django6.1-single")],
)  # fmt: skip
def test_a_report_only_answer_sends_the_policy_report_only_and_check_deploy_warns(
    fresh_project, project_python, tmp_path, answers
):
    project = fresh_project(csp_report_only=True, **answers)
    python = project_python(answers["django_version"])
    module = settings_module(answers)
    with runserver(
        project, python, tmp_path / "runserver.log", DJANGO_SETTINGS_MODULE=module
    ) as url:
        home = httpx.get(f"{url}/", headers={"Host": "example.com", "X-Forwarded-Proto": "https"})
    assert home.status_code == 200
    assert "content-security-policy" not in home.headers
    assert "default-src 'none'" in home.headers["content-security-policy-report-only"]
    result = run(
        [python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=project,
        env={"DJANGO_SETTINGS_MODULE": module},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert set(re.findall(r"\((\w+\.[A-Z]\d{3})\)", output)) == {"shipshape.W031"}, output
