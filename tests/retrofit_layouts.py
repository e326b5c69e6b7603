"""Existing Django projects in the shapes real teams have, for the retrofit tests.

Each layout is a git repository with its own tests, written as its team wrote it:

- `startproject`: `django-admin startproject mysite`, untouched.
- `environ`: settings in a package of their own (`config/settings/{base,local,test,production}.py`),
  django-environ reading the project's own .env, apps in another package (`notes`),
  `config/wsgi.py`, a .gitignore that does not list .env, pytest with pytest-django.
- `portal`: a settings package with base/dev/production modules, its own .env.example,
  its own database name and options and STORAGES, a content-management app (`pages`)
  with middleware and system checks of its own (one silenced), requirements.txt only,
  tests run by `manage.py test`.
- `blog`: one settings.py reading .env with python-dotenv, whitenoise already serving
  static files, its own LOGGING, pyproject.toml.

Dependencies: the projects' own virtualenv is the cached one every generated project
uses (tests/support/venvs.py) plus django-environ, installed by uv from its cache
into a virtualenv of its own, built once per machine.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import textwrap
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from .support.binaries import DEBIAN_CADDY
from .support.client import DROPPED, Client
from .support.git import new_repo
from .support.ports import accepts_connections, free_port
from .support.processes import (
    STARTUP_TIMEOUT,
    ServerFailed,
    clean_env,
    run,
    start_process,
    wait_until,
)
from .support.project import recorded_answers
from .support.stack import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    PREPARE,
    Certificates,
    Stack,
    start_front,
)
from .support.venvs import cached_venv, find_python

# The public hostnames every retrofit answers with (the template's defaults).
HOSTS = ["example.com", "www.example.com"]

# Every layout's apps, middleware and templates start from startproject's.
DJANGO_APPS = """\
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles","""

DJANGO_MIDDLEWARE = """\
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware","""

TEMPLATES = """\
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
"""


def manage_py(settings_module: str) -> str:
    return f'''\
#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings_module}")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
'''


def wsgi_py(settings_module: str) -> str:
    return f'''\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings_module}")

application = get_wsgi_application()
'''


def urls_py(app: str) -> str:
    return f"""\
from django.contrib import admin
from django.urls import path

from {app}.views import index

urlpatterns = [
    path("", index),
    path("admin/", admin.site.urls),
    path("{app}/", index),
]
"""


def app_config(app: str, ready: str = "") -> str:
    body = f"\n    def ready(self):\n        {ready}\n" if ready else ""
    return f"""\
from django.apps import AppConfig


class {app.title()}Config(AppConfig):
    name = "{app}"
    default_auto_field = "django.db.models.BigAutoField"
{body}"""


# startproject writes no tests; the team's first one.
STARTPROJECT_TEST = """\
from django.test import TestCase


class AdminTests(TestCase):
    def test_the_admin_asks_for_a_login(self):
        self.assertEqual(self.client.get("/admin/").status_code, 302)
"""

ENVIRON = {
    "manage.py": manage_py("config.settings.local"),
    "config/__init__.py": "",
    "config/settings/__init__.py": "",
    "config/settings/base.py": f'''\
"""Settings every environment shares; values that differ come from the environment."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-local-only")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost"])

INSTALLED_APPS = [
{DJANGO_APPS}
    "notes",
]

MIDDLEWARE = [
{DJANGO_MIDDLEWARE}
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

{TEMPLATES}
DATABASES = {{"default": env.db("DATABASE_URL", default=f"sqlite:///{{BASE_DIR / 'notes.sqlite3'}}")}}
DATABASES["default"]["ATOMIC_REQUESTS"] = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
''',
    "config/settings/local.py": """\
from .base import *  # noqa: F403

DEBUG = True
""",
    "config/settings/test.py": """\
from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
""",
    "config/settings/production.py": """\
from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env("DJANGO_SECRET_KEY")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60)
""",
    "config/urls.py": urls_py("notes"),
    "config/wsgi.py": wsgi_py("config.settings.production"),
    "notes/__init__.py": "",
    "notes/apps.py": app_config("notes"),
    "notes/views.py": """\
from django.conf import settings
from django.http import JsonResponse


def index(request):
    database = settings.DATABASES["default"]
    return JsonResponse({"engine": database["ENGINE"], "atomic": database["ATOMIC_REQUESTS"]})
""",
    "notes/tests/__init__.py": "",
    "notes/tests/test_views.py": """\
import pytest

pytestmark = pytest.mark.django_db


def test_notes_run_on_the_projects_own_sqlite_database(client):
    response = client.get("/notes/")
    assert response.json() == {"engine": "django.db.backends.sqlite3", "atomic": True}


def test_the_admin_asks_for_a_login(client):
    assert client.get("/admin/").status_code == 302
""",
    "pytest.ini": """\
[pytest]
DJANGO_SETTINGS_MODULE = config.settings.test
""",
    "pyproject.toml": """\
[project]
name = "notes"
version = "1.0"
requires-python = ">=3.10"
dependencies = ["django>=5.2,<6", "django-environ>=0.12"]

[dependency-groups]
dev = ["pytest", "pytest-django"]
""",
    ".gitignore": """\
__pycache__/
*.sqlite3
""",
}

PORTAL = {
    "manage.py": manage_py("portal.settings.dev"),
    "portal/__init__.py": "",
    "portal/settings/__init__.py": "",
    "portal/settings/base.py": f"""\
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = os.environ.get("PORTAL_SECRET_KEY", "django-insecure-dev-only")
DEBUG = False
ALLOWED_HOSTS = ["localhost"]

INSTALLED_APPS = [
{DJANGO_APPS}
    "pages",
]

MIDDLEWARE = [
{DJANGO_MIDDLEWARE}
    "pages.middleware.PageHeaderMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

{TEMPLATES}
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "portal.sqlite3",
        "ATOMIC_REQUESTS": True,
        "CONN_MAX_AGE": 60,
        "OPTIONS": {{"timeout": 20}},
    }}
}}

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "collected"
MEDIA_ROOT = BASE_DIR / "uploads"
STORAGES = {{
    "default": {{"BACKEND": "django.core.files.storage.FileSystemStorage"}},
    "staticfiles": {{"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}},
}}

# pages.W002 warns about every site without a page cache; ours is small.
SILENCED_SYSTEM_CHECKS = ["pages.W002"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
""",
    "portal/settings/dev.py": """\
from .base import *  # noqa: F403

DEBUG = True
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
""",
    "portal/settings/production.py": """\
import os

from .base import *  # noqa: F403

SECURE_HSTS_SECONDS = int(os.environ.get("PORTAL_HSTS_SECONDS", "0"))
SECURE_SSL_REDIRECT = os.environ.get("PORTAL_SSL_REDIRECT", "1") == "1"
""",
    "portal/urls.py": urls_py("pages"),
    "portal/wsgi.py": wsgi_py("portal.settings.production"),
    "pages/__init__.py": "",
    "pages/apps.py": app_config("pages", ready="from pages import checks  # noqa: F401"),
    "pages/checks.py": '''\
"""The checks a content-management app registers for the sites it serves."""

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def page_cache(app_configs, **kwargs):
    return [Warning("No page cache is configured.", id="pages.W002")]


@register()
def page_header(app_configs, **kwargs):
    if "pages.middleware.PageHeaderMiddleware" not in settings.MIDDLEWARE:
        return [Warning("PageHeaderMiddleware is not installed.", id="pages.W001")]
    return []
''',
    "pages/middleware.py": '''\
"""Names the page system in every response, as content-management apps do."""


class PageHeaderMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Pages"] = "1"
        return response
''',
    "pages/static/pages/site.css": 'body { background: url("logo.svg"); }\n',
    "pages/static/pages/logo.svg": '<svg xmlns="http://www.w3.org/2000/svg"/>\n',
    "pages/views.py": """\
from django.conf import settings
from django.http import JsonResponse


def index(request):
    database = settings.DATABASES["default"]
    return JsonResponse({"atomic": database["ATOMIC_REQUESTS"], "age": database["CONN_MAX_AGE"]})
""",
    "pages/tests.py": """\
from django.test import TestCase


class PagesTests(TestCase):
    def test_pages_name_themselves_in_every_response(self):
        self.assertEqual(self.client.get("/pages/")["X-Pages"], "1")

    def test_pages_use_the_portals_own_database(self):
        self.assertEqual(self.client.get("/pages/").json(), {"atomic": True, "age": 60})
""",
    "requirements.txt": "Django>=5.2,<6\n",
    ".env.example": """\
# The portal's own variables; copy to .env on a developer machine.
PORTAL_SECRET_KEY=change-me
PORTAL_HSTS_SECONDS=3600
""",
    ".gitignore": """\
.env
*.sqlite3
collected/
__pycache__/
""",
}

BLOG = {
    "manage.py": manage_py("blog.settings"),
    "blog/__init__.py": "",
    "blog/settings.py": f"""\
import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

SECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-dev-only")
DEBUG = os.environ.get("DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")

INSTALLED_APPS = [
{DJANGO_APPS}
    "posts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
{DJANGO_MIDDLEWARE.split(chr(10), 1)[1]}
]

ROOT_URLCONF = "blog.urls"
WSGI_APPLICATION = "blog.wsgi.application"

{TEMPLATES}
DATABASES = {{
    "default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "blog.sqlite3"}}
}}

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {{
    "default": {{"BACKEND": "django.core.files.storage.FileSystemStorage"}},
    "staticfiles": {{"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}},
}}

LOGGING = {{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{"posts": {{"handlers": ["console"], "level": "INFO"}}}},
}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
""",
    "blog/urls.py": urls_py("posts"),
    "blog/wsgi.py": wsgi_py("blog.settings"),
    "posts/__init__.py": "",
    "posts/apps.py": app_config("posts"),
    "posts/static/posts/blog.css": "h1 { color: navy; }\n",
    "posts/views.py": """\
from django.conf import settings
from django.http import JsonResponse


def index(request):
    return JsonResponse({"debug": settings.DEBUG})
""",
    "posts/tests.py": """\
from django.test import TestCase


class PostsTests(TestCase):
    def test_the_blog_answers(self):
        self.assertEqual(self.client.get("/posts/").json(), {"debug": False})
""",
    "pyproject.toml": """\
[project]
name = "blog"
version = "1.0"
requires-python = ">=3.10"
dependencies = ["django>=5.2,<6", "python-dotenv>=1", "whitenoise>=6.8"]
""",
    ".gitignore": """\
.env
*.sqlite3
staticfiles/
__pycache__/
""",
}


@dataclass(frozen=True)
class Layout:
    """An existing project: its files, its package, and how its team runs its tests."""

    name: str
    package: str
    files: dict[str, str] = field(default_factory=dict)
    tests: tuple[str, ...] = ("manage.py", "test", "-v", "2")
    passed: str = ""  # what the test runner prints when every test passed
    settings_module: str = ""  # what the overlay builds on, as detection finds it
    answers: dict = field(default_factory=dict)  # the retrofit's answers beside the defaults
    appended: tuple[str, ...] = ()  # files the retrofit appends to, never rewrites
    env_file: str = ".env"  # .env.production when the project reads .env itself
    dependencies: str = "pyproject.toml"  # where it lists them, as detection finds it
    app: str = ""  # its own app, which answers at /<app>/


LAYOUTS = {
    "startproject": Layout(
        name="startproject",
        package="mysite",
        files={"mysite/tests.py": STARTPROJECT_TEST},
        passed="Ran 1 test",
        settings_module="mysite.settings",
        dependencies="none",
        answers={"proxy": "caddy"},
    ),
    "environ": Layout(
        name="environ",
        package="config",
        files=ENVIRON,
        tests=("-m", "pytest", "-p", "no:cacheprovider", "-q"),
        passed="2 passed",
        settings_module="config.settings.base",
        answers={"database": "postgres"},
        appended=(".gitignore",),
        env_file=".env.production",
        app="notes",
    ),
    "portal": Layout(
        name="portal",
        package="portal",
        files=PORTAL,
        passed="Ran 2 tests",
        settings_module="portal.settings.base",
        dependencies="requirements.txt",
        app="pages",
    ),
    "blog": Layout(
        name="blog",
        package="blog",
        files=BLOG,
        passed="Ran 1 test",
        settings_module="blog.settings",
        answers={"proxy": "load_balancer"},
        appended=(".gitignore",),
        env_file=".env.production",
        app="posts",
    ),
}


def build(layout: Layout, python: Path, parent: Path, folder: str = "") -> Path:
    """The layout as its team has it, in parent/folder: a git repository with one commit."""
    parent.mkdir(parents=True, exist_ok=True)
    project = parent / (folder or layout.name)
    if layout.name == "startproject":
        project.mkdir()
        result = run([python, "-m", "django", "startproject", layout.package, "."], cwd=project)
        assert result.returncode == 0, result.stderr
    else:
        project.mkdir()
    for name, text in layout.files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    new_repo(project, f"{layout.name}, as its team wrote it")
    return project


def layouts_python(project_python: Path) -> Path:
    """The projects' Python: a generated project's dependencies plus django-environ."""
    requirements = (project_python.parent.parent / "ready").read_text().splitlines()
    venv = cached_venv("retrofit-django-5.2", [*requirements, "django-environ>=0.12,<1"],
                       find_python("5.2"))  # fmt: skip
    return venv / "bin" / "python"


def own_tests(layout: Layout, python: Path, project: Path):
    """Run the project's own tests the way its team does."""
    return run([python, *layout.tests], cwd=project)


def machine_answers(project: Path, proxy: str, certificates: Certificates, run_dir: Path):
    """The advanced answers that put a retrofit's deploy files on this machine.

    The project's folder as app_dir, and gunicorn on a unix socket in `run_dir` behind
    nginx or Caddy, which listen on free high ports with the test CA's certificate.
    Behind a load balancer gunicorn listens on a free TCP port and the ports stay 80
    and 443: the load balancer's ports are its own (the test's stand-in takes free
    ones). Returns the answers, gunicorn's address and the public (HTTP, HTTPS) ports.
    """
    ports = (free_port(), free_port())
    answers: dict = {"app_dir": str(project)}
    if proxy == "load_balancer":
        port = free_port()
        answers |= {"gunicorn_bind": f"0.0.0.0:{port}", "lb_trusted_cidrs": ["127.0.0.1/32"]}
        return answers, ("127.0.0.1", port), ports
    # Unix socket paths are limited to 107 bytes: the run folder has a short name.
    answers |= {"http_port": ports[0], "https_port": ports[1],
                "gunicorn_bind": f"unix:{run_dir}/gunicorn.sock",
                "tls_cert": str(certificates.cert_path), "tls_key": str(certificates.key_path)}  # fmt: skip
    return answers, str(run_dir / "gunicorn.sock"), ports


def as_data(answers: dict) -> list[str]:
    """Answers as `-d NAME=VALUE` items, lists and booleans as YAML writes them."""
    return [f"{name}={json.dumps(value) if isinstance(value, (list, bool)) else value}"
            for name, value in answers.items()]  # fmt: skip


def press_enter_through_prompts(template: Path, project: Path, data: list[str], vcs_ref: str):
    """`copier copy` as a person runs it, pressing Enter at every prompt.

    Returns the exit status and everything copier printed. Fails the moment copier
    asks whether to overwrite a file.
    """
    settings = project.parent / "copier-settings.yml"
    settings.write_text("{}\n")
    args = ["-m", "copier", "copy", "--trust", "--vcs-ref", vcs_ref,
            *[arg for item in data for arg in ("-d", item)], str(template), str(project)]  # fmt: skip
    child = pexpect.spawn(
        sys.executable, args, encoding="utf-8", timeout=90, dimensions=(40, 200),
        env={**clean_env(), "COPIER_SETTINGS_PATH": str(settings), "TERM": "xterm"},
    )  # fmt: skip
    printed = []
    try:
        while True:
            # copier's question: " Overwrite <path>?"; the closing message says "overwritten".
            index = child.expect([r"\?", pexpect.EOF, r"Overwrite \S+\?"])
            printed.append(child.before + (child.after if isinstance(child.after, str) else ""))
            if index == 2:
                raise AssertionError(f"copier asked to overwrite a file: {''.join(printed)}")
            if index == 1:
                break
            child.sendline("")
    finally:
        child.close(force=True)
    return child.exitstatus, "".join(printed)


def served_unit(project: Path, package: str) -> tuple[str, list[str]]:
    """What the rendered systemd unit runs: DJANGO_SETTINGS_MODULE and gunicorn's arguments."""
    unit = (project / "deploy" / "systemd" / f"{package}.service").read_text()
    settings = re.search(r"^Environment=DJANGO_SETTINGS_MODULE=(\S+)$", unit, re.M)
    exec_start = re.search(r"^ExecStart=(\S+)/gunicorn (.+)$", unit, re.M)
    assert settings and exec_start, unit
    return settings.group(1), exec_start.group(2).split()


def serve_retrofitted(cleanup: ExitStack, state: dict, workdir: Path) -> Stack:
    """A retrofitted layout served as its deploy/ files say, over TLS on loopback.

    As tests/support/stack.py's start_stack, on the existing project: gunicorn started
    as the rendered systemd unit starts it (its settings module, its config, the
    project's own WSGI module), behind the rendered nginx or Caddy config, or the
    test-only stand-in for a load balancer.
    """
    project, package, python = state["project"], state["layout"].package, state["python"]
    answers = {**recorded_answers(project), "project_slug": package}
    settings, gunicorn_args = served_unit(project, package)
    env = clean_env(DJANGO_SETTINGS_MODULE=settings, WEB_CONCURRENCY="2")
    if answers["database"] == "postgres":
        # No PostgreSQL server here: the layout's own tests prove the URL is read.
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'served.sqlite3'}"
    http_port, https_port = state["ports"]
    stack = Stack(answers["proxy"], answers, project, HOSTS, http_port, https_port,
                  state["certificates"], env, state["gunicorn_address"], python)  # fmt: skip
    prepared = run([python, "-c", PREPARE.format(username=ADMIN_USERNAME)], cwd=project,
                   env={**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD})  # fmt: skip
    if prepared.returncode != 0:
        raise ServerFailed(f"preparing {project} failed:\n{prepared.stdout}\n{prepared.stderr}")
    (workdir / "logs").mkdir()
    gunicorn = start_process("gunicorn", [python.parent / "gunicorn", *gunicorn_args],
                             cwd=project, env=env, log=workdir / "logs" / "gunicorn.log",
                             stop_signal=signal.SIGINT)  # fmt: skip
    cleanup.callback(gunicorn.stop)
    stack.processes.append(gunicorn)
    wait_until(lambda: accepts_connections(stack.gunicorn_address), [gunicorn], "gunicorn")
    front = start_front(stack, workdir, DEBIAN_CADDY)
    cleanup.callback(front.stop)
    stack.processes.append(front)
    wait_until(lambda: serves_admin_login(stack), stack.processes, "the admin login page")
    return stack


def serves_admin_login(stack: Stack) -> bool:
    """startproject has no home page: the admin's login page says the site is up."""
    client = Client(stack.ca_path, stack.http_port, stack.https_port, timeout=STARTUP_TIMEOUT)
    try:
        return client.get("/admin/login/", host=stack.domain).status_code == 200
    except DROPPED:
        return False
