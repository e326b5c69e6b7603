"""The questions: defaults, normalisation, and one clear line for every refused answer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pexpect
import pytest

from .support.git import commit_as_tests, git
from .support.project import recorded_answers, tree, write_files
from .support.rendering import SNAPSHOT_VERSION, copier_cli
from .support.rendering import copier_copy_cli as copier_copy


def env_file(project) -> dict:
    lines = (project / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_defaults_give_a_working_example_com_project(rendered):
    project = rendered()
    answers = recorded_answers(project)
    assert answers["project_slug"] == "my_site"
    assert answers["domain"] == "example.com"
    assert answers["extra_hosts"] == ["www.example.com"]
    assert env_file(project)["DJANGO_ALLOWED_HOSTS"] == "example.com,www.example.com"


def test_advanced_answers_are_recorded_so_updates_keep_them(rendered):
    answers = recorded_answers(rendered())
    assert answers["app_dir"] == "/srv/my_site"
    assert answers["http_port"] == 80
    assert answers["https_port"] == 443
    assert answers["tls_cert"] == "/etc/letsencrypt/live/example.com/fullchain.pem"
    assert answers["tls_key"] == "/etc/letsencrypt/live/example.com/privkey.pem"
    assert answers["gunicorn_bind"] == "unix:/run/my_site/gunicorn.sock"
    assert answers["_commit"] == SNAPSHOT_VERSION


def test_the_template_source_is_recorded_as_an_absolute_path(rendered, template_repo):
    assert recorded_answers(rendered())["_src_path"] == str(template_repo)


def test_an_uppercase_domain_is_normalised(rendered):
    project = rendered(domain="Shop.Example.ORG")
    assert env_file(project)["DJANGO_ALLOWED_HOSTS"] == "shop.example.org,www.shop.example.org"


def test_a_www_domain_offers_the_bare_domain_as_extra_host(rendered):
    project = rendered(domain="www.example.org")
    assert env_file(project)["DJANGO_ALLOWED_HOSTS"] == "www.example.org,example.org"


def test_extra_hosts_accept_a_comma_separated_string(template_repo, tmp_path):
    result = copier_copy(
        template_repo, tmp_path / "p", "extra_hosts=api.example.com, static.example.com"
    )
    assert result.returncode == 0, result.stderr
    assert env_file(tmp_path / "p")["DJANGO_ALLOWED_HOSTS"] == (
        "example.com,api.example.com,static.example.com"
    )


def test_no_extra_hosts_at_all(rendered):
    assert env_file(rendered(extra_hosts=[]))["DJANGO_ALLOWED_HOSTS"] == "example.com"


REFUSED = [
    ("project_name= ", "project_name: give the project a name"),
    ("project_slug=My-Site", "project_slug: 'My-Site' is not a lowercase Python identifier"),
    ("project_slug=django", "project_slug: 'django' shadows a module the project imports"),
    ("project_slug=test", "project_slug: 'test' shadows a module"),
    ("project_slug=site", "project_slug: 'site' shadows a module"),
    ("domain=https://shop.example.org", "domain: 'https://shop.example.org' has a scheme"),
    ("domain=shop.example.org/store", "domain: 'shop.example.org/store' has a path"),
    ("domain=shop.example.org:8443", "domain: 'shop.example.org:8443' has a port"),
    ("domain=shop example.org", "domain: 'shop example.org' has spaces"),
    ("domain=*.example.org", "domain: '*.example.org' is a wildcard"),
    ("domain=203.0.113.7", "domain: '203.0.113.7' is an IP address"),
    ("domain=[2001:db8::1]", "domain: '[2001:db8::1]' is an IP address"),
    ("domain=localhost", "domain: 'localhost' is not a public hostname"),
    ("domain=.example.org", "domain: '.example.org' starts with a dot"),
    ("domain=bad_host.example.org", "domain: 'bad_host.example.org' is not a valid hostname"),
    ("extra_hosts=[www.example.com, WWW.example.com]", "extra_hosts: 'WWW.example.com' is listed"),
    ("extra_hosts=[example.com]", "extra_hosts: 'example.com' is listed twice"),
    ("extra_hosts=[http://www.example.com]", "extra_hosts: 'http://www.example.com' has a scheme"),
    ("extra_hosts={a: b}", "extra_hosts: give a list of hostnames"),
    ("hsts_seconds=-1", "hsts_seconds: give 0 (no HSTS) or a positive number"),
    (
        "security_contact=javascript:alert(1)",
        "security_contact: 'javascript:alert(1)' is not a mailto:",
    ),
    ("csp_report_only=flase", "csp_report_only: 'flase' is not true or false"),
    ("admin_path=/admin", "admin_path: '/admin' must be a relative URL prefix ending in a slash"),
    ("health_path=healthz", "health_path: 'healthz' must be an absolute path"),
    ("health_path=/admin", "health_path: '/admin' overlaps the admin, static or media URLs"),
    ("health_path=/static/ping", "health_path: '/static/ping' overlaps"),
    ("readiness_path=/healthz", "readiness_path: '/healthz' is the health path"),
    ("app_dir=srv/site", "app_dir: 'srv/site' must be an absolute path"),
    ("http_port=0", "http_port: give a TCP port between 1 and 65535"),
    ("https_port=80", "https_port: must differ from http_port (80)"),
    (
        "tls_cert=fullchain.pem",
        "tls_cert: 'fullchain.pem' must be the absolute path of a certificate chain",
    ),
    ("gunicorn_bind=localhost", "gunicorn_bind: 'localhost' must be unix:/absolute/path.sock"),
]


@pytest.mark.parametrize(("data", "expected"), REFUSED, ids=[d for d, _ in REFUSED])
def test_a_refused_answer_gets_one_line_naming_the_question_and_the_fix(
    template_repo, tmp_path, data, expected
):
    dest = tmp_path / "project"
    result = copier_copy(template_repo, dest, data)
    refused = [line for line in result.stderr.splitlines() if line.startswith("refused: ")]
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(refused) == 1, result.stderr
    assert refused[0].removeprefix("refused: ").startswith(expected)
    assert not dest.exists(), "a refused copy leaves nothing behind"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (["proxy=load_balancer", "lb_trusted_cidrs=[10.0.0.1/8]"], "has host bits set"),
        (["proxy=load_balancer", "lb_trusted_cidrs=[10.0.0.0/33]"], "not a valid IPv4 network"),
        (["proxy=load_balancer", "lb_trusted_cidrs=[load-balancer]"], "is not a CIDR"),
        (["proxy=load_balancer", "lb_trusted_cidrs=[]"], "give at least one network"),
        (["hsts_include_subdomains=false", "hsts_preload=true"], "preloading needs"),
    ],
)
def test_answers_that_depend_on_each_other_are_refused_together(
    template_repo, tmp_path, data, expected
):
    result = copier_copy(template_repo, tmp_path / "project", *data)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert expected in result.stderr


def test_every_problem_is_listed_at_once(template_repo, tmp_path):
    result = copier_copy(
        template_repo, tmp_path / "project", "project_slug=os", "health_path=x", "http_port=0"
    )
    refused = [
        line.split(":")[1].strip() for line in result.stderr.splitlines() if "refused:" in line
    ]
    assert refused == ["project_slug", "health_path", "http_port"]


def test_a_derived_slug_that_is_not_an_identifier_is_refused(template_repo, tmp_path):
    result = copier_copy(template_repo, tmp_path / "project", "project_name=2024 Shop")
    assert (
        "refused: project_slug: '2024_shop' is not a lowercase Python identifier" in result.stderr
    )


def test_the_prompt_explains_a_refused_answer_and_asks_again(template_repo, tmp_path):
    """Interactive use: the validator's line appears at the prompt and the question stays open."""
    if not shutil.which("git"):
        pytest.fail("git is required")
    dest = tmp_path / "project"
    settings = tmp_path / "copier-settings.yml"
    settings.write_text("{}\n")
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "copier",
            "copy",
            "--trust",
            "--vcs-ref",
            SNAPSHOT_VERSION,
            str(template_repo),
            str(dest),
        ],
        env={**os.environ, "COPIER_SETTINGS_PATH": str(settings), "TERM": "xterm"},
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 200),
    )
    try:
        child.expect("project's name")
        child.sendline("")
        child.expect("Python package")
        child.sendline("")
        child.expect("primary public hostname")
        child.send("https://shop.example.org")
        child.expect("has a scheme; answer with the bare hostname 'shop.example.org'")
        child.send("\b" * len("https://shop.example.org") + "shop.example.org")
        child.sendline("")
        child.expect("More public hostnames")
    finally:
        child.terminate(force=True)


def refused_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("refused: ")]


def test_a_data_file_answer_is_refused_like_a_command_line_one(template_repo, tmp_path):
    """A data file's YAML types reach the model as they are: `true` is not port 1."""
    data_file = tmp_path / "answers.yml"
    data_file.write_text("http_port: true\nretrofit: 1.5\nproxy: [nginx]\n")
    dest = tmp_path / "project"
    result = copier_copy(template_repo, dest, data_file=data_file)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert refused_lines(result) == [
        "refused: proxy: ['nginx'] is not one of the choices; answer one of nginx, caddy, load_balancer",
        "refused: retrofit: 1.5 is not true or false; answer true or false",
        "refused: http_port: True is not a whole number",
    ]
    assert not dest.exists()


def test_each_problem_is_printed_exactly_once(template_repo, tmp_path):
    result = copier_copy(template_repo, tmp_path / "project", "domain=https://shop.example.org")
    assert result.stderr.count("https://shop.example.org") == 1, result.stderr


def test_a_refused_copy_into_an_existing_folder_leaves_it_as_it_was(template_repo, tmp_path):
    dest = tmp_path / "project"
    dest.mkdir()
    (dest / "notes.txt").write_text("ours\n")
    result = copier_copy(template_repo, dest, "health_path=/static/ping")
    assert refused_lines(result) == [
        "refused: health_path: '/static/ping' overlaps the admin, static or media URLs; "
        "pick its own path, e.g. /healthz"
    ]
    assert tree(dest) == {"notes.txt": b"ours\n"}


def test_a_refused_update_leaves_the_project_as_it_was(template_repo, tmp_path):
    project = tmp_path / "project"
    assert copier_copy(template_repo, project).returncode == 0
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    commit_as_tests(project, "generated")
    before = tree(project)
    result = copier_cli(
        "update", "--trust", "--defaults",
        "-d", "gunicorn_bind=127.0.0.1:80000", "-d", "hsts_preload=maybe",
        cwd=project, settings_dir=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line.split(":")[1].strip() for line in refused_lines(result)] == [
        "hsts_preload",
        "gunicorn_bind",
    ]
    assert tree(project) == before


def test_a_refused_retrofit_leaves_the_existing_project_byte_for_byte(template_repo, tmp_path):
    project = tmp_path / "shop"
    files = {
        "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings')\n",
        "shop/__init__.py": "",
        "shop/settings.py": "SECRET_KEY = 'dev'\n",
        ".gitignore": "*.pyc\n",
    }
    before = tree(write_files(project, files))
    result = copier_copy(
        template_repo, project, "retrofit=true", "project_slug=shop", "admin_path=/admin"
    )
    assert result.returncode == 1
    assert refused_lines(result) == [
        "refused: admin_path: '/admin' must be a relative URL prefix ending in a slash, "
        "e.g. admin/ or staff/admin/"
    ]
    assert tree(project) == before
