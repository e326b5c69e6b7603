"""The bundled checks of a generated project (shipshape/), on correct and broken deployments.

Settings-level breaks: a rendered project's production settings, broken in one
way through the environment or a settings module that imports them and changes
one value; `check --deploy` must report exactly that shipshape id. Proxy-level
breaks: the correct end-to-end stack's proxy config changed in one way and run
through the real nginx or Caddy in front of the same gunicorn; `smoketest` must
fail exactly that check. Django's own deploy checks run on the same breaks, and
docs/checks.md must say what they found.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, commit_as_tests, git, run
from .e2e import conftest as e2e_fixtures
from .e2e.servers import (
    DEBIAN_CADDY,
    NGINX,
    Stack,
    accepts_connections,
    clean_env,
    free_port,
    nginx_main_conf,
    nginx_test,
    start_process,
    wait_until,
)

# The end-to-end suite's stacks, shared with it: one correct deployment per proxy per worker.
e2e_ca = e2e_fixtures.e2e_ca
stack = e2e_fixtures.stack

DOCS = ROOT / "docs" / "checks.md"
CHECK_ID = re.compile(r"\((\w+\.[A-Z]\d{3})\)")
ADMIN_PASSWORD_VARIABLE = "SMOKETEST_ADMIN_PASSWORD"
OTHER_KEY = "a-key-only-this-test-uses-" + "Zq8vN3kW" * 4

NGINX_ANSWERS: dict = {}
CADDY_ANSWERS = {"proxy": "caddy", "settings_layout": "single"}
LB_ANSWERS = {"proxy": "load_balancer", "deployment": "compose", "database": "postgres"}


def production_module(answers: dict) -> str:
    split = answers.get("settings_layout", "split") == "split"
    return "my_site.settings.production" if split else "my_site.settings"


def check_ids(output: str) -> set[str]:
    return set(CHECK_ID.findall(output))


def documented_django_ids() -> dict[str, str]:
    """Break name -> the 'Django's check --deploy' cell of the table in docs/checks.md."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[2]
    return rows


def assert_documented(name: str, django_ids: set[str]) -> None:
    cell = documented_django_ids()[name]
    documented = set(re.findall(r"`([^`]+)`", cell))
    assert documented == django_ids, (
        f"docs/checks.md row {name!r} says {cell!r}, Django said {django_ids}"
    )


def deploy_check(project: Path, python: Path, answers: dict, *, env=None, settings_lines=(),
                 tmp_path: Path | None = None):  # fmt: skip
    """Run check --deploy on production settings, changed by env values and extra settings lines."""
    module = production_module(answers)
    extra_env = {"DJANGO_SETTINGS_MODULE": module, **(env or {})}
    if settings_lines:
        assert tmp_path is not None
        (tmp_path / "broken_settings.py").write_text(
            f"from {module} import *  # noqa: F403\n\n" + "\n".join(settings_lines) + "\n"
        )
        extra_env |= {"DJANGO_SETTINGS_MODULE": "broken_settings", "PYTHONPATH": str(tmp_path)}
    return run([python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=project,
               env=extra_env)  # fmt: skip


# Settings-level breaks: (name in docs/checks.md, answers, env, settings lines, expected id).
SETTINGS_BREAKS = [
    ("allowed-hosts-star", NGINX_ANSWERS, {}, ['ALLOWED_HOSTS = ["*"]'], "shipshape.W002"),
    ("allowed-hosts-leading-dot", NGINX_ANSWERS, {}, ['ALLOWED_HOSTS = [".example.com"]'],
     "shipshape.W003"),
    ("allowed-hosts-localhost", NGINX_ANSWERS,
     {"DJANGO_ALLOWED_HOSTS": "example.com,www.example.com,localhost"}, [], "shipshape.W004"),
    ("allowed-hosts-stale", NGINX_ANSWERS,
     {"DJANGO_ALLOWED_HOSTS": "example.com,www.example.com,staging.example.net"}, [],
     "shipshape.W005"),
    ("csrf-origin-http", NGINX_ANSWERS, {}, ['CSRF_TRUSTED_ORIGINS = ["http://example.com"]'],
     "shipshape.W006"),
    ("csrf-origin-no-scheme", NGINX_ANSWERS, {}, ['CSRF_TRUSTED_ORIGINS = ["example.com"]'],
     "shipshape.W007"),
    ("csrf-origin-wildcard", NGINX_ANSWERS, {},
     ['CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]'], "shipshape.W008"),
    ("csrf-origin-unserved-host", NGINX_ANSWERS,
     {"DJANGO_CSRF_TRUSTED_ORIGINS": "https://old.example.net"}, [], "shipshape.W009"),
    ("csrf-origin-own-host", NGINX_ANSWERS,
     {"DJANGO_CSRF_TRUSTED_ORIGINS": "https://www.example.com"}, [], "shipshape.I001"),
    ("no-proxy-ssl-header", NGINX_ANSWERS, {}, ["SECURE_PROXY_SSL_HEADER = None"],
     "shipshape.W010"),
    ("no-proxy-ssl-header-caddy", CADDY_ANSWERS, {}, ["SECURE_PROXY_SSL_HEADER = None"],
     "shipshape.W010"),
    ("no-proxy-ssl-header-load-balancer", LB_ANSWERS,
     {"DATABASE_URL": "postgres://u:p@localhost:5432/db"}, ["SECURE_PROXY_SSL_HEADER = None"],
     "shipshape.W010"),
    ("use-x-forwarded-host", NGINX_ANSWERS, {}, ["USE_X_FORWARDED_HOST = True"],
     "shipshape.W011"),
    ("use-x-forwarded-port", NGINX_ANSWERS, {}, ["USE_X_FORWARDED_PORT = True"],
     "shipshape.W012"),
    ("static-root-elsewhere", NGINX_ANSWERS, {}, ['STATIC_ROOT = BASE_DIR / "static"'],
     "shipshape.W014"),
    ("static-root-elsewhere-caddy", CADDY_ANSWERS, {}, ['STATIC_ROOT = "/var/www/static"'],
     "shipshape.W014"),
    ("proxy-config-missing", NGINX_ANSWERS, {},
     ['SHIPSHAPE = {**SHIPSHAPE, "proxy_config": BASE_DIR / "deploy" / "nginx" / "gone.conf"}'],
     "shipshape.E001"),
    ("admins-empty", NGINX_ANSWERS, {}, ["ADMINS = []"], "shipshape.W016"),
    ("server-email-default", NGINX_ANSWERS, {}, ['SERVER_EMAIL = "root@localhost"'],
     "shipshape.W017"),
    ("from-email-default", NGINX_ANSWERS, {}, ['DEFAULT_FROM_EMAIL = "webmaster@localhost"'],
     "shipshape.W018"),
    ("csp-dropped", NGINX_ANSWERS, {}, ["CONTENT_SECURITY_POLICY = {}"], "shipshape.W030"),
    ("csp-report-only", NGINX_ANSWERS, {},
     ["CONTENT_SECURITY_POLICY_REPORT_ONLY = CONTENT_SECURITY_POLICY",
      "CONTENT_SECURITY_POLICY = {}"], "shipshape.W031"),
    ("csp-unsafe-inline", NGINX_ANSWERS, {},
     ["""CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"] = ["'self'", "'unsafe-inline'"]"""],
     "shipshape.W032"),
    ("permissions-policy-dropped", NGINX_ANSWERS, {}, ["PERMISSIONS_POLICY = {}"],
     "shipshape.W033"),
    ("corp-dropped", NGINX_ANSWERS, {}, ["SECURE_CROSS_ORIGIN_RESOURCE_POLICY = None"],
     "shipshape.W034"),
    ("cookie-prefix-dropped", NGINX_ANSWERS, {}, ['SESSION_COOKIE_NAME = "sessionid"'],
     "shipshape.W035"),
    ("host-cookie-with-domain", NGINX_ANSWERS, {}, ['CSRF_COOKIE_DOMAIN = ".example.com"'],
     "shipshape.E030"),
    ("security-txt-expired", NGINX_ANSWERS, {},
     ['SECURITY_TXT = {**SECURITY_TXT, "EXPIRES": "2020-01-01"}'], "shipshape.W037"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "answers", "env", "settings_lines", "expected"),
    [pytest.param(*case, id=case[0]) for case in SETTINGS_BREAKS],
)
def test_check_deploy_reports_exactly_the_broken_setting(
    rendered, project_python, tmp_path, name, answers, env, settings_lines, expected
):
    project = rendered(**answers)
    python = project_python("5.2")
    result = deploy_check(project, python, answers, env=env, settings_lines=settings_lines,
                          tmp_path=tmp_path)  # fmt: skip
    output = result.stdout + result.stderr
    ids = check_ids(output)
    assert {i for i in ids if i.startswith("shipshape.")} == {expected}, output
    # Info alone does not fail the deploy gate; every warning does.
    assert (result.returncode == 0) == expected.startswith("shipshape.I"), output
    assert_documented(name, {i for i in ids if not i.startswith("shipshape.")})


@pytest.mark.parametrize(
    "answers",
    [pytest.param(NGINX_ANSWERS, id="nginx"), pytest.param(CADDY_ANSWERS, id="caddy"),
     pytest.param(LB_ANSWERS, id="load_balancer")],
)  # fmt: skip
def test_the_generated_deployment_passes_every_bundled_check(rendered, project_python, answers):
    project = rendered(**answers)
    env = {"DATABASE_URL": "postgres://u:p@localhost:5432/db"} if answers is LB_ANSWERS else {}
    result = deploy_check(project, project_python("5.2"), answers, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("answers", "edit"),
    [
        pytest.param(NGINX_ANSWERS, ("server_tokens off;\n\n    ssl_certificate",
                     'server_tokens off;\n    add_header Strict-Transport-Security "max-age=63072000" always;\n\n    ssl_certificate'),
                     id="nginx"),
        pytest.param(CADDY_ANSWERS, ("\trequest_body {", "\theader Strict-Transport-Security max-age=63072000\n\trequest_body {"),
                     id="caddy"),
    ],
)  # fmt: skip
def test_hsts_in_the_proxy_config_too_is_reported(
    rendered, project_python, tmp_path, answers, edit
):
    project = rendered(**answers)
    source = (
        project
        / "deploy"
        / ("nginx/my_site.conf" if answers is NGINX_ANSWERS else "caddy/Caddyfile")
    )
    text = source.read_text()
    assert edit[0] in text
    broken = tmp_path / source.name
    broken.write_text(text.replace(edit[0], edit[1], 1))
    result = deploy_check(
        project, project_python("5.2"), answers, tmp_path=tmp_path,
        settings_lines=[f'SHIPSHAPE = {{**SHIPSHAPE, "proxy_config": "{broken}"}}'],
    )  # fmt: skip
    ids = check_ids(result.stdout + result.stderr)
    assert ids == {"shipshape.W013"}, result.stdout + result.stderr
    assert_documented("hsts-in-proxy-too", set())


@pytest.mark.parametrize(
    ("static_root", "expected"),
    [pytest.param(None, set(), id="served"),
     pytest.param("/var/www/static", {"shipshape.W014"}, id="elsewhere")],
)  # fmt: skip
def test_a_static_location_moved_into_an_included_file_is_still_read(
    rendered, project_python, tmp_path, static_root, expected
):
    """nginx follows `include`; so do the checks, with no false alarm about STATIC_ROOT."""
    project = rendered()
    text = (project / "deploy" / "nginx" / "my_site.conf").read_text()
    start = text.index("    # Files collected by `manage.py collectstatic`")
    moved = text[start : text.index("    # Uploads (MEDIA_ROOT)", start)]
    included = tmp_path / "static.conf"
    included.write_text(moved)
    site = tmp_path / "my_site.conf"
    site.write_text(text.replace(moved, f"    include {included};\n\n"))
    lines = [f'SHIPSHAPE = {{**SHIPSHAPE, "proxy_config": "{site}"}}']
    if static_root:
        lines.append(f'STATIC_ROOT = "{static_root}"')
    result = deploy_check(project, project_python("5.2"), NGINX_ANSWERS, tmp_path=tmp_path,
                          settings_lines=lines)  # fmt: skip
    output = result.stdout + result.stderr
    assert {i for i in check_ids(output) if i.startswith("shipshape.")} == expected, output


def test_a_secret_key_from_git_history_is_reported(fresh_project, project_python):
    """A key committed once and removed since is still public: W001 finds it in history."""
    project = fresh_project()
    python = project_python("5.2")
    git("init", "-q", "-b", "main", cwd=project)
    git("add", "-A", cwd=project)
    commit_as_tests(project, "generated")
    settings = project / "my_site" / "settings" / "production.py"
    original = settings.read_text()
    settings.write_text(original + f'\nSECRET_KEY = "{OTHER_KEY}"\n')
    commit_as_tests_all(project, "hard-code the key")
    settings.write_text(original)
    commit_as_tests_all(project, "read the key from the environment again")

    env = {"DJANGO_SETTINGS_MODULE": "my_site.settings.production", "DJANGO_SECRET_KEY": OTHER_KEY}
    result = run([python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=project,
                 env=env)  # fmt: skip
    assert check_ids(result.stdout + result.stderr) == {"shipshape.W001"}, result.stderr
    assert "git history" in result.stderr
    assert_documented("secret-key-committed", set())

    # The .env key written at copy time is git-ignored and in no commit: nothing to report.
    env.pop("DJANGO_SECRET_KEY")
    clean = run([python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=project,
                env=env)  # fmt: skip
    assert clean.returncode == 0, clean.stdout + clean.stderr


@pytest.mark.parametrize(
    ("path", "removed"),
    [pytest.param("my_site/old_settings.py", False, id="backup-settings-tracked"),
     pytest.param("docs/notes.md", False, id="notes-file-tracked"),
     pytest.param("my_site/old_settings.py", True, id="backup-settings-in-history"),
     pytest.param("scratch/key.txt", True, id="notes-file-in-history")],
)  # fmt: skip
def test_a_secret_key_committed_under_any_name_is_reported(
    fresh_project, project_python, path, removed
):
    """Any tracked file, now or in the history searched, names the file and never the key."""
    project = fresh_project()
    git("init", "-q", "-b", "main", cwd=project)
    commit_as_tests_all(project, "generated")
    leak = project / path
    leak.parent.mkdir(parents=True, exist_ok=True)
    leak.write_text(f"# the key from before it moved to .env\nkey: {OTHER_KEY}\n")
    commit_as_tests_all(project, "keep the old key around")
    leaked_in = git("rev-parse", "--short", "HEAD", cwd=project).strip()
    if removed:
        leak.unlink()
        commit_as_tests_all(project, "remove the old key")

    env = {"DJANGO_SETTINGS_MODULE": "my_site.settings.production", "DJANGO_SECRET_KEY": OTHER_KEY}
    result = run([project_python("5.2"), "manage.py", "check", "--deploy", "--fail-level",
                  "WARNING"], cwd=project, env=env)  # fmt: skip
    output = result.stdout + result.stderr
    assert check_ids(output) == {"shipshape.W001"}, output
    where = f"git history: {path} in commit {leaked_in}" if removed else path
    assert f"(found in {where})" in output, output
    assert OTHER_KEY not in output


def test_the_history_search_is_bounded_by_the_commits_it_reads(fresh_project, project_python):
    """A key removed more than GIT_HISTORY_COMMITS commits ago is out of reach, as documented."""
    project = fresh_project()
    python = project_python("5.2")
    git("init", "-q", "-b", "main", cwd=project)
    (project / "notes.txt").write_text(OTHER_KEY + "\n")
    commit_as_tests_all(project, "generated, with the key in a note")
    (project / "notes.txt").unlink()
    commit_as_tests_all(project, "remove the note")
    env = {"DJANGO_SETTINGS_MODULE": "my_site.settings.production", "DJANGO_SECRET_KEY": OTHER_KEY}
    check = [python, "-c", BOUNDED_HISTORY]
    found = run([*check, "2"], cwd=project, env=env)
    assert (
        found.stdout.strip()
        == "git history: notes.txt in commit "
        + git("rev-parse", "--short", "HEAD~1", cwd=project).strip()
    ), found.stdout + found.stderr
    beyond = run([*check, "1"], cwd=project, env=env)
    assert beyond.stdout.strip() == "None", beyond.stdout + beyond.stderr


BOUNDED_HISTORY = """
import os, sys
from pathlib import Path
sys.path.insert(0, os.getcwd())
import django
django.setup()
from shipshape import checks
checks.GIT_HISTORY_COMMITS = int(sys.argv[1])
print(checks.where_committed(Path.cwd(), [os.environ["DJANGO_SECRET_KEY"]]))
"""


def test_the_env_example_placeholder_is_reported_without_git(rendered, project_python, tmp_path):
    project = rendered()
    placeholder = re.search(
        r"^DJANGO_SECRET_KEY=(.+)$", (project / ".env.example").read_text(), re.M
    )
    result = deploy_check(project, project_python("5.2"), NGINX_ANSWERS, tmp_path=tmp_path,
                          settings_lines=[f'SECRET_KEY = "{placeholder.group(1)}"'])  # fmt: skip
    output = result.stdout + result.stderr
    assert {i for i in check_ids(output) if i.startswith("shipshape.")} == {"shipshape.W001"}, (
        output
    )
    assert "found in .env.example" in output


def commit_as_tests_all(project: Path, message: str) -> None:
    git("add", "-A", cwd=project)
    commit_as_tests(project, message)


# Smoke tests against live stacks ---------------------------------------------------


def smoketest(running: Stack, https_port: int, http_port: int, *, login: bool = True) -> dict:
    """Run `manage.py smoketest --json` in the stack's project against these public ports."""
    args = ["smoketest", f"https://{running.domain}:{https_port}", "--json",
            "--cacert", str(running.ca_path), "--http-port", str(http_port)]  # fmt: skip
    for host in running.hosts:
        args += ["--resolve", f"{host}:{https_port}:127.0.0.1"]
    env = dict(running.env)
    if login:
        args += [
            "--admin-user",
            running.admin_username,
            "--admin-password-env",
            ADMIN_PASSWORD_VARIABLE,
        ]
        env[ADMIN_PASSWORD_VARIABLE] = running.admin_password
    result = run([running.python, "manage.py", *args], cwd=running.project, env=env, timeout=120)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(result.stdout + result.stderr) from None
    report["returncode"] = result.returncode
    return report


def failed(report: dict) -> set[str]:
    return {r["id"] for r in report["results"] if r["status"] == "fail"}


def describe(report: dict) -> str:
    return "\n".join(
        f"{r['status']:4} {r['id']:16} {r['target']:18} {r['detail']}" for r in report["results"]
    )


@pytest.mark.parametrize(
    ("proxy", "options"),
    [
        pytest.param("nginx", {}, id="nginx"),
        pytest.param("caddy", {"caddy": DEBIAN_CADDY}, id="caddy"),
    ],
)
def test_smoketest_passes_every_check_on_the_correct_deployment(stack, proxy, options):
    running = stack(proxy, **options)
    report = smoketest(running, running.https_port, running.http_port)
    assert report["returncode"] == 0, describe(report) + running.logs()
    assert {r["status"] for r in report["results"]} == {"pass"}, describe(report)
    ids = {r["id"] for r in report["results"]}
    assert ids >= {"https-served", "unknown-host", "http-redirect", "not-found", "hsts", "nosniff",
                   "x-frame-options", "referrer-policy", "csrf-cookie", "session-cookie",
                   "forged-proto", "forged-host", "admin-login", "csrf-post", "trace", "csp",
                   "permissions-policy", "corp", "cookie-prefix", "security-txt",
                   "ready"}  # fmt: skip
    served = [r["target"] for r in report["results"] if r["id"] == "https-served"]
    assert served == running.hosts
    # Concurrent: one request after another, the run could not take less than their sum.
    assert report["elapsed_seconds"] < report["sum_of_requests_seconds"], report
    assert report["elapsed_seconds"] < report["slowest_request_seconds"] * 3 + 1.0, report


def test_smoketest_without_a_login_warns_that_the_session_cookie_was_not_checked(stack):
    running = stack("nginx")
    report = smoketest(running, running.https_port, running.http_port, login=False)
    assert report["returncode"] == 0, describe(report)
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses["session-cookie"] == "warn"
    assert statuses["csrf-post"] == "pass"
    assert [s for s in statuses.values() if s != "pass"] == ["warn"]


def _nginx_forwards_client_proto(text: str) -> str:
    # The load-balancer pattern misapplied on the edge: trust the client's header when present.
    mapping = (
        "map $http_x_forwarded_proto $forwarded_proto {\n"
        "    default $http_x_forwarded_proto;\n"
        '    "" $scheme;\n'
        "}\n\n"
    )
    old = "proxy_set_header X-Forwarded-Proto $scheme;"
    assert old in text
    return mapping + text.replace(old, "proxy_set_header X-Forwarded-Proto $forwarded_proto;")


def _nginx_adds_hsts(text: str) -> str:
    old = "    client_max_body_size 10m;"
    assert old in text
    return text.replace(
        old, old + '\n    add_header Strict-Transport-Security "max-age=63072000" always;', 1
    )


def _nginx_host_without_port(text: str) -> str:
    old = "proxy_set_header Host $http_host;"
    assert old in text
    return text.replace(old, "proxy_set_header Host $host;")


def _nginx_without_forged_host_catch_all(text: str) -> str:
    """No defence against a forged Host: neither the catch-all server nor the site's own check."""
    block = re.search(r"\nserver \{\n[^}]*ssl_reject_handshake on;[^}]*\}\n", text)
    check = re.search(r"\n    if \(\$http_host !~\* [^\n]*\{\n        return 444;\n    \}\n", text)
    assert block and check
    return text.replace(block.group(0), "\n").replace(check.group(0), "\n")


def _caddy_without_forged_host_catch_all(text: str) -> str:
    block = re.search(r"\nhttps:// \{\n.*?\n\}\n?", text, re.S)
    assert block
    return text.replace(block.group(0), "\n")


# (name in docs/checks.md, proxy, edit, the one smoketest check that must fail)
PROXY_BREAKS = [
    ("nginx-forwards-client-proto", "nginx", _nginx_forwards_client_proto, "forged-proto"),
    ("nginx-adds-hsts", "nginx", _nginx_adds_hsts, "hsts"),
    ("nginx-host-without-port", "nginx", _nginx_host_without_port, "csrf-post"),
    ("nginx-no-forged-host-catch-all", "nginx", _nginx_without_forged_host_catch_all,
     "unknown-host"),
    ("caddy-no-forged-host-catch-all", "caddy", _caddy_without_forged_host_catch_all,
     "unknown-host"),
]  # fmt: skip


def start_broken_front(running: Stack, edit, folder: Path, cleanup) -> tuple[int, int, Path]:
    """The stack's proxy config changed by `edit`, on new ports, in front of the same gunicorn."""
    http_port, https_port = free_port(), free_port()
    folder.mkdir()
    if running.proxy == "nginx":
        source = running.project / "deploy" / "nginx" / "my_site.conf"
    else:
        source = running.project / "deploy" / "caddy" / "Caddyfile"
    text = edit(source.read_text())
    for old, new in ((running.http_port, http_port), (running.https_port, https_port)):
        text = re.sub(rf"(?<!\d){old}(?!\d)", str(new), text)
    config = folder / source.name
    config.write_text(text)
    if running.proxy == "nginx":
        main = nginx_main_conf(folder, config)
        checked = nginx_test(main)
        assert checked.returncode == 0, checked.stderr
        process = start_process("nginx", [NGINX, "-p", folder, "-c", main], cwd=folder,
                                env=clean_env(), log=folder / "nginx.log")  # fmt: skip
    else:
        env = clean_env(HOME=str(folder), XDG_DATA_HOME=str(folder / "data"),
                        XDG_CONFIG_HOME=str(folder / "config"))  # fmt: skip
        process = start_process(
            "caddy", [DEBIAN_CADDY, "run", "--config", config, "--adapter", "caddyfile"],
            cwd=folder, env=env, log=folder / "caddy.log", stop_signal=signal.SIGINT,
        )  # fmt: skip
    cleanup.append(process)
    wait_until(
        lambda: (
            accepts_connections(("127.0.0.1", https_port))
            and accepts_connections(("127.0.0.1", http_port))
        ),
        [process],
        f"{running.proxy} with {edit.__name__}",
    )
    return http_port, https_port, config


@pytest.fixture
def processes():
    started = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.mark.parametrize(
    ("name", "proxy", "edit", "expected"),
    [pytest.param(*case, id=case[0]) for case in PROXY_BREAKS],
)
def test_smoketest_fails_exactly_the_check_a_broken_proxy_config_breaks(
    stack, tmp_path, processes, name, proxy, edit, expected
):
    running = stack(proxy, **({"caddy": DEBIAN_CADDY} if proxy == "caddy" else {}))
    http_port, https_port, config = start_broken_front(running, edit, tmp_path / "front", processes)
    report = smoketest(running, https_port, http_port)
    assert report["returncode"] == 1, describe(report)
    assert failed(report) == {expected}, describe(report)

    # The same deployment through Django's check --deploy, with the broken config as the
    # project's proxy config: what Django alone sees, and what shipshape's checks add.
    result = deploy_check(
        running.project, running.python, running.answers, env=running.env, tmp_path=tmp_path,
        settings_lines=[f'SHIPSHAPE = {{**SHIPSHAPE, "proxy_config": "{config}"}}'],
    )  # fmt: skip
    ids = check_ids(result.stdout + result.stderr)
    assert_documented(name, {i for i in ids if not i.startswith("shipshape.")})
    documented = documented_shipshape_ids()[name]
    assert {i for i in ids if i.startswith("shipshape.")} == documented, result.stderr


def documented_shipshape_ids() -> dict[str, set[str]]:
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = set(re.findall(r"`(shipshape\.[A-Z]\d{3})`", cells[3]))
    return rows


# The generated project's CI ---------------------------------------------------------


@pytest.mark.parametrize(
    "answers",
    [pytest.param({}, id="sqlite"),
     pytest.param({"database": "postgres", "django_version": "6.1", "settings_layout": "single"},
                  id="postgres")],
)  # fmt: skip
def test_the_ci_workflow_is_a_valid_github_workflow_that_runs_preflight(rendered, answers):
    project = rendered(**answers)
    workflow = project / ".github" / "workflows" / "ci.yml"
    checker = shutil.which("check-jsonschema") or str(
        Path(sys.executable).parent / "check-jsonschema"
    )
    result = run([checker, "--builtin-schema", "vendor.github-workflows", workflow], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    text = workflow.read_text()
    assert "uv run python manage.py preflight" in text
    # Lint through pre-commit: ruff, and the conflict markers a copier update can leave.
    assert "pre-commit run --all-files" in text and "uv run pytest" in text
    assert ("services:" in text) == (answers.get("database") == "postgres")
    # The secret key is generated in the job, never written into the repository.
    assert 'DJANGO_SECRET_KEY="$(python3 -c' in text
    assert "{{" not in text and "{%" not in text


# preflight on a rendered project ---------------------------------------------------

THROWAWAY_ENV = {
    "DJANGO_ENV_FILE": "",
    "DJANGO_SECRET_KEY": "throwaway-" + "Vb7nQ2xL" * 6,
    "DJANGO_ALLOWED_HOSTS": "example.com,www.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "",
    "DJANGO_DEBUG": "false",
    # As the generated CI sets them: addresses of the domain, for the mail checks.
    "DJANGO_ADMINS": "webmaster@example.com",
    "DJANGO_SERVER_EMAIL": "django@example.com",
    "DJANGO_DEFAULT_FROM_EMAIL": "noreply@example.com",
}


@pytest.mark.parametrize(
    "answers", [pytest.param(NGINX_ANSWERS, id="nginx"), pytest.param(CADDY_ANSWERS, id="caddy")]
)
def test_preflight_passes_with_throwaway_values_as_in_ci(rendered, project_python, answers):
    """What the generated CI runs: nothing on this machine is the server's, and it still passes."""
    project = rendered(**answers)
    env = {**THROWAWAY_ENV, "DJANGO_SETTINGS_MODULE": production_module(answers)}
    result = run([project_python("5.2"), "manage.py", "preflight"], cwd=project, env=env)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(r"preflight: 7 passed, 0 failed", lines[-1]), lines[-1]
    proxy = "nginx" if answers is NGINX_ANSWERS else "caddy"
    assert any(line.split()[:3] == ["PASS", proxy, "config"] for line in lines), result.stdout
    assert any(line.split()[:3] == ["PASS", "systemd", "units"] for line in lines), result.stdout
    assert any(line.split()[:3] == ["PASS", "gunicorn", "config"] for line in lines), result.stdout


def test_preflight_fails_on_a_proxy_config_nginx_rejects(fresh_project, project_python):
    project = fresh_project()
    config = project / "deploy" / "nginx" / "my_site.conf"
    config.write_text(config.read_text().replace("proxy_http_version 1.1;", "proxy_http_version;"))
    env = {**THROWAWAY_ENV, "DJANGO_SETTINGS_MODULE": "my_site.settings.production"}
    result = run([project_python("5.2"), "manage.py", "preflight"], cwd=project, env=env)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[-1] == "preflight: 6 passed, 1 failed", lines[-1]
    assert any(line.split()[:3] == ["FAIL", "nginx", "config"] for line in lines), result.stdout
    assert "invalid number of arguments" in result.stdout


# (id, a change to deploy/gunicorn.conf.py, the environment, preflight's one line)
GUNICORN_BREAKS = [
    ("forwarded-allow-ips-host-bits", ('forwarded_allow_ips = "127.0.0.1,::1"',
     'forwarded_allow_ips = "10.0.0.1/8"'), {},
     "gunicorn refuses forwarded_allow_ips: 10.0.0.1/8 has host bits set"),
    ("forwarded-allow-ips-not-an-address", ('forwarded_allow_ips = "127.0.0.1,::1"',
     'forwarded_allow_ips = "10.0.0.0/8 and the office"'), {},
     "gunicorn refuses forwarded_allow_ips: '10.0.0.0/8 and the office' does not appear to be an "
     "IPv4 or IPv6 network"),
    ("bind-port-out-of-range", ('bind = ["unix:/run/my_site/gunicorn.sock"]',
     'bind = ["127.0.0.1:99999"]'), {},
     "gunicorn cannot bind '127.0.0.1:99999': port 99999 is out of range 0-65535"),
    ("bind-port-not-a-number", ('bind = ["unix:/run/my_site/gunicorn.sock"]',
     'bind = ["127.0.0.1:http"]'), {},
     "gunicorn cannot bind '127.0.0.1:http': 'http' is not a valid port number."),
    ("bind-unix-path-too-long", ('bind = ["unix:/run/my_site/gunicorn.sock"]',
     f'bind = ["unix:/run/{"my_site" * 20}/gunicorn.sock"]'), {},
     "gunicorn cannot bind 'unix:/run/" + "my_site" * 20 + "/gunicorn.sock': a unix socket path "
     "of 159 bytes, over the 107 allowed"),
    ("config-file-raises", ('proc_name = "my_site"\n', 'proc_name = "my_site"\n'
     'os.environ["WEB_CONCURRENCY"] = "two"\n'), {},
     "gunicorn.conf.py does not run: ValueError: invalid literal for int() with base 10: 'two'"),
    ("web-concurrency-not-a-number", None, {"WEB_CONCURRENCY": "many"},
     "gunicorn cannot load its settings from the environment: invalid literal for int() with base "
     "10: 'many'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "env", "expected"), [pytest.param(*case[1:], id=case[0]) for case in GUNICORN_BREAKS]
)
def test_preflight_fails_in_one_line_on_a_gunicorn_config_gunicorn_cannot_start_with(
    fresh_project, project_python, change, env, expected
):
    project = fresh_project()
    python = project_python("5.2")
    config = project / "deploy" / "gunicorn.conf.py"
    if change:
        assert change[0] in config.read_text()
        config.write_text(config.read_text().replace(change[0], change[1]))
    env = {**THROWAWAY_ENV, "DJANGO_SETTINGS_MODULE": "my_site.settings.production", **env}
    result = run([python, "manage.py", "preflight"], cwd=project, env=env)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines[-1] == "preflight: 6 passed, 1 failed", result.stdout
    failures = [line.split(None, 3) for line in lines if line.startswith("  FAIL")]
    assert failures == [["FAIL", "gunicorn", "config", expected]], result.stdout
    assert "Traceback" not in result.stdout + result.stderr

    # gunicorn itself cannot start with it: what preflight stands in for.
    started = run([python, "-m", "gunicorn", "-c", config, "my_site.wsgi"], cwd=project, env=env,
                  timeout=60)  # fmt: skip
    assert started.returncode != 0, started.stdout + started.stderr


def test_preflight_names_the_tools_that_are_not_installed(rendered, project_python, tmp_path):
    """Without nginx and systemd-analyze on PATH the steps are skipped, not failed."""
    project = rendered()
    python = project_python("5.2")
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("git", "openssl"):
        (bare / tool).symlink_to(shutil.which(tool))
    env = {**THROWAWAY_ENV, "DJANGO_SETTINGS_MODULE": "my_site.settings.production",
           "PATH": str(bare)}  # fmt: skip
    # preflight also looks in /usr/sbin and /sbin, where Debian puts nginx.
    result = run([python, "-c", HIDE_SBIN + "execute_from_command_line(['manage.py', 'preflight'])"],
                 cwd=project, env=env)  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines[-1] == (
        "preflight: 5 passed, 0 failed, 2 skipped (not installed here: nginx, systemd-analyze)"
    )


HIDE_SBIN = """
import os, sys
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "my_site.settings.production")
from shipshape import tools
tools.SBIN = ""
from django.core.management import execute_from_command_line
"""
