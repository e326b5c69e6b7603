"""Retrofit: the production layer added to Django projects that did not start from the template.

Two existing projects: one fresh from `django-admin startproject`, and one a team
has grown, with its own app, custom middleware, settings that read their own
environment variables, its own .gitignore and its own tests. Each is retrofitted
with `retrofit: true`, then checked with the production overlay, tested with its
own settings, and updated to a newer template release.
"""

from __future__ import annotations

import shutil
import stat
import sys
import tempfile
import textwrap
from contextlib import ExitStack
from pathlib import Path

import pytest
import trustme
import yaml

from .retrofit_layouts import (
    HOSTS,
    LAYOUTS,
    as_data,
    build,
    layouts_python,
    machine_answers,
    manage_py,
    own_tests,
    press_enter_through_prompts,
    serve_retrofitted,
    served_unit,
)
from .support.client import Client, cookie_header, log_in_to_admin
from .support.git import commit_all, git, listed_files, new_repo, release
from .support.processes import run
from .support.project import check_deploy, edit, recorded_answers, setting, tree, write_files
from .support.rendering import copier_copy_cli, render, snapshot_template, update
from .support.stack import Certificates
from .support.venvs import find_python

OVERLAY = "settings_production"

# With --dist loadgroup, each existing project is retrofitted once, on one worker.
FRESH = pytest.mark.xdist_group("retrofit-fresh")
SHOP = pytest.mark.xdist_group("retrofit-shop")
EXISTING = pytest.mark.parametrize(
    "existing", [pytest.param("fresh", marks=FRESH), pytest.param("shop", marks=SHOP)]
)

# What the team wrote, never to be touched by the retrofit or its updates.
SHOP_FILES = {
    "shop/middleware.py": '''\
        """Tag every response with an id, so a support request can quote it."""

        import uuid


        class RequestIdMiddleware:
            def __init__(self, get_response):
                self.get_response = get_response

            def __call__(self, request):
                response = self.get_response(request)
                response["X-Request-ID"] = uuid.uuid4().hex
                return response
        ''',
    "catalog/__init__.py": "",
    "catalog/apps.py": """\
        from django.apps import AppConfig


        class CatalogConfig(AppConfig):
            name = "catalog"
        """,
    "catalog/views.py": """\
        from django.conf import settings
        from django.http import JsonResponse


        def index(request):
            return JsonResponse({"page_size": settings.SHOP_PAGE_SIZE})
        """,
    "catalog/tests.py": """\
        from django.test import TestCase, override_settings


        class CatalogTests(TestCase):
            def test_the_catalog_answers_with_the_page_size(self):
                response = self.client.get("/catalog/")
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response.json(), {"page_size": 20})

            def test_every_response_has_a_request_id(self):
                self.assertEqual(len(self.client.get("/catalog/")["X-Request-ID"]), 32)

            @override_settings(SHOP_PAGE_SIZE=5)
            def test_the_page_size_is_a_setting(self):
                self.assertEqual(self.client.get("/catalog/").json(), {"page_size": 5})
        """,
    ".gitignore": """\
        .env
        *.sqlite3
        __pycache__/
        """,
}


def startproject(python: Path, parent: Path, name: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    result = run([python, "-m", "django", "startproject", name], cwd=parent)
    assert result.returncode == 0, result.stderr
    return parent / name


def grow_shop(project: Path) -> None:
    """An app, middleware, settings reading their own variables, tests, a .gitignore."""
    for name, text in SHOP_FILES.items():
        (project / name).parent.mkdir(exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    settings = project / "shop/settings.py"
    edit(settings, "from pathlib import Path\n", "import os\nfrom pathlib import Path\n")
    text = settings.read_text()
    start = text.index("SECRET_KEY = ")
    end = text.index("\n", text.index("ALLOWED_HOSTS = "))
    settings.write_text(
        text[:start]
        + 'SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "django-insecure-local-only")\n'
        + 'DEBUG = os.environ.get("SHOP_DEBUG", "1") == "1"\n'
        + 'ALLOWED_HOSTS = os.environ.get("SHOP_HOSTS", "localhost").split(",")\n'
        + 'SHOP_PAGE_SIZE = int(os.environ.get("SHOP_PAGE_SIZE", "20"))\n'
        + text[end:]
    )
    # startproject writes single-quoted strings.
    edit(
        settings,
        "    'django.contrib.staticfiles',\n",
        "    'django.contrib.staticfiles',\n    'catalog',\n",
    )
    edit(
        settings,
        "    'django.middleware.clickjacking.XFrameOptionsMiddleware',\n",
        "    'django.middleware.clickjacking.XFrameOptionsMiddleware',\n"
        "    'shop.middleware.RequestIdMiddleware',\n",
    )
    edit(
        project / "shop/urls.py",
        "from django.urls import path\n",
        "from django.urls import path\n\nfrom catalog.views import index\n",
    )
    edit(
        project / "shop/urls.py",
        "    path('admin/', admin.site.urls),\n",
        "    path('admin/', admin.site.urls),\n    path('catalog/', index),\n",
    )


def snapshot_files(project: Path) -> dict[str, bytes]:
    """Every file the project had before the retrofit, by content."""
    return {name: (project / name).read_bytes() for name in listed_files(project)}


def retrofit(template: Path, project: Path, slug: str, vcs_ref: str = "0.1.0") -> Path:
    return render(
        template,
        project,
        vcs_ref=vcs_ref,
        project_name=slug.title(),
        project_slug=slug,
        retrofit=True,
        existing_settings_module=f"{slug}.settings",
    )


def retrofitted(template: Path, project: Path, python: Path, message: str) -> dict:
    """Commit the project as its team has it, remember its files, then retrofit it."""
    new_repo(project, message)
    before = snapshot_files(project)
    retrofit(template, project, project.name)
    return {"project": project, "before": before, "python": python}


def overlay_module(slug: str) -> str:
    """The production overlay's settings module, beside the project's own settings."""
    return f"{slug}.{OVERLAY}"


@pytest.fixture(scope="session")
def retrofit_releases(tmp_path_factory) -> Path:
    """0.1.0, the working tree, and 0.2.0, which rewords a comment the overlay renders."""
    template = snapshot_template(tmp_path_factory.mktemp("retrofit-releases") / "django-shipshape")
    edit(
        template / "includes/settings/security.py.jinja",
        "# Health and readiness probes come over plain HTTP from inside the network.\n",
        "# Health and readiness probes come over plain HTTP from inside the network: never"
        " redirected.\n",
    )
    release(template, "0.2.0")
    return template


@pytest.fixture(scope="session")
def fresh(retrofit_releases, project_python, tmp_path_factory) -> dict:
    python = project_python("5.2")
    project = startproject(python, tmp_path_factory.mktemp("startproject"), "mysite")
    return retrofitted(retrofit_releases, project, python, "django-admin startproject mysite")


@pytest.fixture(scope="session")
def shop(retrofit_releases, project_python, tmp_path_factory) -> dict:
    python = project_python("5.2")
    project = startproject(python, tmp_path_factory.mktemp("grown"), "shop")
    grow_shop(project)
    return retrofitted(retrofit_releases, project, python, "the shop, as the team built it")


def unchanged(project: Path, before: dict[str, bytes]) -> list[str]:
    return [name for name, content in before.items() if (project / name).read_bytes() != content]


@EXISTING
def test_the_projects_own_files_are_byte_identical(existing, request):
    state = request.getfixturevalue(existing)
    project, slug = state["project"], state["project"].name
    assert {"manage.py", f"{slug}/urls.py", f"{slug}/settings.py", f"{slug}/wsgi.py"} <= set(
        state["before"]
    )
    assert unchanged(project, state["before"]) == []


@EXISTING
def test_only_the_production_layer_is_added(existing, request):
    project = request.getfixturevalue(existing)["project"]
    slug = project.name
    for added in [f"{slug}/{OVERLAY}.py", f"{slug}/env.py", f"{slug}/health.py",
                  f"{slug}/logging_filters.py", "deploy/production.env.example",
                  "deploy/gunicorn.conf.py", f"deploy/nginx/{slug}.conf", "shipshape/checks.py",
                  ".copier-answers.yml"]:  # fmt: skip
        assert (project / added).is_file(), added
    for never in ["README.md", "pyproject.toml", "tests", ".github", ".pre-commit-config.yaml", ".env.example",
                  f"{slug}/settings", f"{slug}/templates"]:  # fmt: skip
        assert not (project / never).exists(), never


@EXISTING
def test_env_is_written_private_and_ignored(existing, request):
    project = request.getfixturevalue(existing)["project"]
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600
    git("check-ignore", "-q", ".env", cwd=project)


@EXISTING
def test_production_overlay_passes_check_deploy(existing, request):
    state = request.getfixturevalue(existing)
    project = state["project"]
    result = check_deploy(state["python"], project, overlay_module(project.name))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@FRESH
def test_a_fresh_startproject_fails_check_deploy_without_the_overlay(fresh):
    """The overlay is what makes the difference: the project's own settings fail."""
    result = check_deploy(fresh["python"], fresh["project"], "mysite.settings")
    assert result.returncode == 1
    assert "security.W018" in result.stderr  # DEBUG


@SHOP
def test_the_overlay_keeps_the_projects_apps_middleware_and_variables(shop):
    python, project = shop["python"], shop["project"]
    env = {"SHOP_DEBUG": "1", "SHOP_PAGE_SIZE": "50"}
    assert setting(python, project, overlay_module("shop"), "settings.DEBUG", env) == "False"
    assert setting(python, project, overlay_module("shop"), "settings.SHOP_PAGE_SIZE", env) == "50"
    apps = setting(python, project, overlay_module("shop"), "settings.INSTALLED_APPS")
    assert "'catalog'" in apps and apps.endswith("'shipshape']")
    middleware = yaml.safe_load(
        setting(python, project, overlay_module("shop"), "settings.MIDDLEWARE")
    )
    assert middleware[0] == "shop.health.HealthCheckMiddleware"
    assert middleware[1:] == [
        "django.middleware.security.SecurityMiddleware",
        # Production's headers and security.txt, right after SecurityMiddleware.
        "csp.middleware.CSPMiddleware",
        "shop.security_headers.SecurityHeadersMiddleware",
        "shop.security_txt.SecurityTxtMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "shop.middleware.RequestIdMiddleware",
    ]


@SHOP
def test_the_projects_own_tests_still_pass(shop):
    result = run([shop["python"], "manage.py", "test", "-v", "2"], cwd=shop["project"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 3 tests" in result.stderr


@SHOP
def test_copier_update_works_on_a_retrofitted_project(retrofit_releases, shop, tmp_path):
    python, project = shop["python"], tmp_path / "shop"
    shutil.copytree(shop["project"], project, symlinks=True)
    commit_all(project, "production layer from django-shipshape 0.1.0")
    update(project, "0.2.0")
    answers = recorded_answers(project)
    assert answers["_commit"] == "0.2.0"
    assert answers["retrofit"] is True
    assert answers["existing_settings_module"] == "shop.settings"
    overlay = (project / f"shop/{OVERLAY}.py").read_text()
    assert "inside the network: never redirected." in overlay
    assert unchanged(project, shop["before"]) == []
    status = git("status", "--porcelain", cwd=project)
    assert sorted(line.split()[-1] for line in status.splitlines()) == [
        ".copier-answers.yml",
        f"shop/{OVERLAY}.py",
    ]
    result = check_deploy(python, project, overlay_module("shop"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("settings_module", "refusal"),
    [
        ("settings", "existing_settings_module: 'settings' is not a dotted module path"),
        ("my-site.settings", "existing_settings_module: 'my-site.settings' is not a dotted module path"),
        ("config.settings", "existing_settings_module: 'config.settings' is not inside project_slug "
         "'my_site'; answer project_slug with the package that holds the settings (config)"),
        (f"my_site.{OVERLAY}", f"existing_settings_module: 'my_site.{OVERLAY}' is the overlay"),
    ],
)  # fmt: skip
def test_an_existing_settings_module_outside_the_project_package_is_refused(
    template_repo, tmp_path, settings_module, refusal
):
    dest = tmp_path / "existing"
    result = copier_copy_cli(
        template_repo, dest, "retrofit=true", f"existing_settings_module={settings_module}"
    )
    assert result.returncode != 0
    assert f"refused: {refusal}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("proxy", ["nginx", "caddy", "load_balancer"])
def test_every_proxy_gets_an_overlay_that_passes_check_deploy_and_ruff(
    template_repo, project_python, tmp_path, proxy
):
    python = project_python("5.2")
    project = startproject(python, tmp_path, "mysite")
    render(template_repo, project, project_slug="mysite", retrofit=True,
           existing_settings_module="mysite.settings", proxy=proxy)  # fmt: skip
    overlay = project / f"mysite/{OVERLAY}.py"
    text = overlay.read_text()
    assert "{" + "{" not in text and "{" + "%" not in text and "\n\n\n\n" not in text
    # The generated project's own ruff configuration, applied to the overlay alone.
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--isolated", "--line-length", "100", "--target-version", "py310"]
    lint = run([*ruff, "check", *config, "--select", "E,W,F,I,UP,B,DJ", overlay], cwd=project)
    assert lint.returncode == 0, lint.stdout
    fmt = run([*ruff, "format", "--check", *config, overlay], cwd=project)
    assert fmt.returncode == 0, fmt.stdout
    result = check_deploy(python, project, overlay_module("mysite"))
    assert result.returncode == 0, result.stdout + result.stderr
    middleware = setting(python, project, overlay_module("mysite"), "settings.MIDDLEWARE[:6]")
    if proxy == "load_balancer":
        # whitenoise's files get production's headers too: their middleware comes first.
        assert middleware == str(
            [
                "mysite.health.HealthCheckMiddleware",
                "django.middleware.security.SecurityMiddleware",
                "csp.middleware.CSPMiddleware",
                "mysite.security_headers.SecurityHeadersMiddleware",
                "mysite.security_txt.SecurityTxtMiddleware",
                "whitenoise.middleware.WhiteNoiseMiddleware",
            ]
        )
    else:
        assert "whitenoise" not in middleware


# -- existing projects in the shapes real teams have (tests/retrofit_layouts.py) -----------


def layout_param(name: str, *values: str):
    return pytest.param(name, *values, marks=pytest.mark.xdist_group(f"retrofit-{name}"),
                        id="-".join([name, *values]))  # fmt: skip


# Each layout retrofitted twice: with -d answers and --defaults as a script runs it, and
# at the prompts, pressing Enter through every one as a person new to the template does.
MODES = ("answers", "enter")
LAYOUT_NAMES = pytest.mark.parametrize("name", [layout_param(name) for name in LAYOUTS])
LAYOUT_MODES = pytest.mark.parametrize(
    ("name", "mode"), [layout_param(name, mode) for name in LAYOUTS for mode in MODES]
)


@pytest.fixture(scope="session")
def layout_python(project_python) -> Path:
    return layouts_python(project_python("5.2"))


@pytest.fixture(scope="session")
def layouts(retrofit_releases, layout_python, tmp_path_factory):
    """`layouts(name, mode)`: a layout built, its own tests run, then retrofitted, once.

    A layout is built once; each mode retrofits its own copy, rendered with the
    advanced answers (ports, app_dir, certificate, gunicorn's socket) that let the
    deploy files serve it on this machine.
    """
    ca = trustme.CA()
    built: dict[str, dict] = {}
    done: dict[tuple[str, str], dict] = {}
    with ExitStack() as cleanup:

        def get(name: str, mode: str = "answers") -> dict:
            layout = LAYOUTS[name]
            if name not in built:
                folder = tmp_path_factory.mktemp(f"layout-{name}")
                base = build(layout, layout_python, folder / "base")
                copies = {mode: folder / mode / base.name for mode in MODES}
                for copy in copies.values():
                    shutil.copytree(base, copy, symlinks=True)
                built[name] = {"before": snapshot_files(base), "copies": copies,
                               "before_tests": own_tests(layout, layout_python, base)}  # fmt: skip
            if (name, mode) not in done:
                project = built[name]["copies"][mode]
                proxy = layout.answers.get("proxy", "nginx") if mode == "answers" else "nginx"
                certificates = Certificates.issue(ca, HOSTS, project.parent / "tls")
                run_dir = Path(tempfile.mkdtemp(prefix="shipshape-run-"))
                run_dir.chmod(0o755)
                cleanup.callback(shutil.rmtree, run_dir, ignore_errors=True)
                machine, address, ports = machine_answers(project, proxy, certificates, run_dir)
                if mode == "answers":
                    data = as_data({"retrofit": True, **layout.answers, **machine})
                    copy = copier_copy_cli(retrofit_releases, project, *data)
                    status, printed = copy.returncode, copy.stdout + copy.stderr
                else:
                    status, printed = press_enter_through_prompts(
                        retrofit_releases, project, as_data(machine), vcs_ref="0.1.0"
                    )
                assert status == 0, printed
                done[name, mode] = {**built[name], "layout": layout, "project": project,
                                    "printed": printed, "python": layout_python,
                                    "certificates": certificates, "gunicorn_address": address,
                                    "ports": ports}  # fmt: skip
            return done[name, mode]

        yield get


def closing(state: dict) -> str:
    """What copier printed: the hook's lines and the closing message."""
    return state["printed"]


def appended_only(project: Path, before: dict[str, bytes], appended: tuple[str, ...]) -> list[str]:
    """Files changed other than by an append to one of `appended`."""
    changed = []
    for name, content in before.items():
        now = (project / name).read_bytes()
        if now != content and not (name in appended and now.startswith(content)):
            changed.append(name)
    return changed


@LAYOUT_MODES
def test_a_layouts_files_are_untouched_except_documented_appends(layouts, name, mode):
    state = layouts(name, mode)
    project, layout = state["project"], state["layout"]
    assert appended_only(project, state["before"], layout.appended) == []
    for appended in layout.appended:
        assert (project / appended).read_bytes() != state["before"][appended], appended


@LAYOUT_MODES
def test_a_layout_is_retrofitted_into_its_own_package_from_what_was_detected(layouts, name, mode):
    state = layouts(name, mode)
    project, layout = state["project"], state["layout"]
    answers = recorded_answers(project)
    assert (answers["project_slug"], answers["retrofit"]) == (layout.package, True)
    assert answers["existing_settings_module"] == layout.settings_module
    assert answers["existing_dependencies"] == layout.dependencies
    assert (project / layout.package / f"{OVERLAY}.py").is_file()
    assert not (project / "my_site").exists()
    assert not (project / "shipshape/tests").exists()


@LAYOUT_MODES
def test_a_layouts_own_tests_pass_before_and_after(layouts, name, mode):
    state = layouts(name, mode)
    layout = state["layout"]
    before = state["before_tests"]
    assert before.returncode == 0, before.stdout + before.stderr
    assert layout.passed in before.stdout + before.stderr
    after = own_tests(layout, state["python"], state["project"])
    assert after.returncode == 0, after.stdout + after.stderr
    assert layout.passed in after.stdout + after.stderr


@LAYOUT_MODES
def test_a_layout_passes_check_deploy_with_the_overlay(layouts, name, mode):
    state = layouts(name, mode)
    module = overlay_module(state["layout"].package)
    result = check_deploy(state["python"], state["project"], module)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@LAYOUT_MODES
def test_a_layouts_static_files_are_collected_with_the_overlay(layouts, name, mode, tmp_path):
    state = layouts(name, mode)
    project = tmp_path / name
    shutil.copytree(state["project"], project, symlinks=True)
    module = overlay_module(state["layout"].package)
    result = run([state["python"], "manage.py", "collectstatic", "--noinput"], cwd=project,
                 env={"DJANGO_SETTINGS_MODULE": module})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = project / "staticfiles/staticfiles.json"
    assert manifest.is_file()
    assert "admin/css/base.css" in manifest.read_text()


@LAYOUT_MODES
def test_a_layouts_env_file_is_private_and_git_ignored(layouts, name, mode):
    state = layouts(name, mode)
    project, layout = state["project"], state["layout"]
    env_file = layout.env_file
    assert stat.S_IMODE((project / env_file).stat().st_mode) == 0o600
    git("check-ignore", "-q", env_file, cwd=project)
    assert git("status", "--porcelain", "--ignored", "--", env_file, cwd=project).startswith("!!")


@LAYOUT_MODES
def test_copier_update_keeps_a_retrofitted_layout(layouts, name, mode, tmp_path):
    state = layouts(name, mode)
    layout = state["layout"]
    project = tmp_path / name
    shutil.copytree(state["project"], project, symlinks=True)
    commit_all(project, "production layer from django-shipshape 0.1.0")
    committed = snapshot_files(project)
    update(project, "0.2.0")
    answers = recorded_answers(project)
    assert (answers["_commit"], answers["existing_dependencies"]) == ("0.2.0", layout.dependencies)
    overlay = f"{layout.package}/{OVERLAY}.py"
    assert "inside the network: never redirected." in (project / overlay).read_text()
    status = git("status", "--porcelain", cwd=project)
    assert sorted(line.split()[-1] for line in status.splitlines()) == [
        ".copier-answers.yml",
        overlay,
    ]
    assert [name for name in unchanged(project, committed) if name not in status] == []
    assert appended_only(project, state["before"], layout.appended) == []
    assert not (project / ".env").exists() or layout.env_file == ".env"
    result = check_deploy(state["python"], project, overlay_module(layout.package))
    assert result.returncode == 0, result.stdout + result.stderr
    tests = own_tests(layout, state["python"], project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert layout.passed in tests.stdout + tests.stderr


@LAYOUT_MODES
def test_the_deploy_files_start_the_projects_own_wsgi_module(layouts, name, mode):
    state = layouts(name, mode)
    project, package = state["project"], state["layout"].package
    settings, gunicorn_args = served_unit(project, package)
    module = gunicorn_args[-1]
    assert (settings, module) == (overlay_module(package), f"{package}.wsgi")
    assert (project / package / "wsgi.py").read_bytes() == state["before"][f"{package}/wsgi.py"]
    loaded = run([state["python"], "-c", f"import {module}; print(type({module}.application).__name__)"],
                 cwd=project, env={"DJANGO_SETTINGS_MODULE": settings})  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "WSGIHandler"


@LAYOUT_MODES
def test_a_retrofitted_layout_serves_an_admin_login_through_its_proxy(
    layouts, name, mode, tmp_path
):
    """gunicorn as the rendered unit starts it, behind the rendered proxy config, over TLS."""
    state = layouts(name, mode)
    with ExitStack() as cleanup:
        stack = serve_retrofitted(cleanup, state, tmp_path)
        client = Client(stack.ca_path, stack.http_port, stack.https_port)
        form, response = log_in_to_admin(client, stack, stack.origin())
        assert response.status_code == 302, response.text[:2000] + stack.logs()
        assert "max-age=63072000" in form.headers["strict-transport-security"]
        index = client.get("/admin/", host=stack.domain,
                           headers={"Cookie": cookie_header(form, response)})  # fmt: skip
        assert index.status_code == 200
        assert f"<strong>{stack.admin_username}</strong>" in index.text
        css = client.get("/static/admin/css/base.css", host=stack.domain)
        assert css.status_code == 200
        assert "body" in css.text
        if name != "startproject":  # startproject has no page at /
            home = client.get(f"/{state['layout'].app}/", host=stack.domain)
            assert home.status_code == 200, stack.logs()
            assert home.headers["content-type"] == "application/json"


@pytest.mark.xdist_group("retrofit-environ")
def test_a_project_that_reads_env_itself_keeps_production_values_out_of_it(layouts):
    state = layouts("environ")
    project, python, message = state["project"], state["python"], closing(state)
    assert not (project / ".env").exists()
    assert "DATABASE_URL=postgres://" in (project / ".env.production").read_text()
    assert "The project reads .env itself (django-environ)" in message
    # The development settings still use the project's SQLite database...
    engine = setting(
        python, project, "config.settings.local", "settings.DATABASES['default']['ENGINE']"
    )
    assert engine == "django.db.backends.sqlite3"
    # ...and production the PostgreSQL of .env.production, with the project's own options.
    database = setting(python, project, overlay_module("config"), "settings.DATABASES['default']")
    assert "'ENGINE': 'django.db.backends.postgresql'" in database
    assert "'ATOMIC_REQUESTS': True" in database


@pytest.mark.xdist_group("retrofit-environ")
def test_the_gitignore_is_appended_and_said_so(layouts):
    state = layouts("environ")
    project = state["project"]
    before = state["before"][".gitignore"].decode()
    assert (project / ".gitignore").read_text() == (
        before + "# Secrets of this machine (django-shipshape).\n/.env.production\n"
    )
    assert ".gitignore: /.env.production appended, so git ignores .env.production" in closing(state)


@pytest.mark.xdist_group("retrofit-environ")
def test_the_projects_own_security_variables_are_reported(layouts):
    message = closing(layouts("environ"))
    for setting_name, variable in [
        ("SECRET_KEY", "DJANGO_SECRET_KEY"),
        ("SECURE_SSL_REDIRECT", "DJANGO_SECURE_SSL_REDIRECT"),
        ("SECURE_HSTS_SECONDS", "DJANGO_SECURE_HSTS_SECONDS"),
    ]:
        assert f"\n  {setting_name} (your {variable})\n" in message


@pytest.mark.xdist_group("retrofit-portal")
def test_the_portals_database_storages_and_checks_are_kept(layouts):
    state = layouts("portal")
    project, python = state["project"], state["python"]
    module = overlay_module("portal")
    database = setting(python, project, module, "settings.DATABASES['default']")
    assert "portal.sqlite3" in database and "'CONN_MAX_AGE': 60" in database
    assert "'OPTIONS': {'timeout': 20}" in database and "'ATOMIC_REQUESTS': True" in database
    silenced = setting(python, project, module, "settings.SILENCED_SYSTEM_CHECKS")
    assert silenced == str(["pages.W002", "security.W021"])
    middleware = setting(python, project, module, "settings.MIDDLEWARE[-1]")
    assert middleware == "pages.middleware.PageHeaderMiddleware"


@pytest.mark.xdist_group("retrofit-portal")
def test_the_portals_own_files_are_kept_and_named(layouts):
    state = layouts("portal")
    message = closing(state)
    assert "Kept as they were, never rendered over: .env.example.\n" in message
    assert "deploy/production.env.example lists every variable production reads" in message
    assert "\n  SECURE_HSTS_SECONDS (your PORTAL_HSTS_SECONDS)\n" in message
    assert "(requirements.txt):\n  dj-database-url>=2.3,<4\n  gunicorn" in message
    assert "then python -m pip install -r requirements.txt" in message


@pytest.mark.xdist_group("retrofit-blog")
def test_the_blogs_whitenoise_and_logging_are_kept(layouts):
    state = layouts("blog")
    project, python = state["project"], state["python"]
    module = overlay_module("blog")
    middleware = yaml.safe_load(setting(python, project, module, "settings.MIDDLEWARE"))
    assert middleware.count("whitenoise.middleware.WhiteNoiseMiddleware") == 1
    loggers = setting(python, project, module, "list(settings.LOGGING['loggers'])")
    assert loggers == "['posts', 'django.security.DisallowedHost']"
    assert setting(python, project, module, "settings.LOGGING['handlers']['console']") == str(
        {"class": "logging.StreamHandler"}
    )
    storage = setting(python, project, module, "settings.STORAGES['staticfiles']['BACKEND']")
    assert storage == "whitenoise.storage.CompressedManifestStaticFilesStorage"


# A scanner's request with a forged Host, in the process Django serves from: what reaches
# stderr, and how many mails mail_admins sends (Django's default LOGGING mails ERRORs).
DISALLOWED_HOST_PROBE = """
import logging
import django
from django.conf import settings
from django.core import mail
from django.test import Client
from django.test.utils import setup_test_environment
django.setup()
setup_test_environment()
settings.ADMINS = [("Ops", "ops@example.com")]
seen = []  # what the DisallowedHost logger hands its handlers, after its own filters
watcher = logging.Handler()
watcher.emit = seen.append
logging.getLogger("django.security.DisallowedHost").addHandler(watcher)
logging.getLogger("posts").info("the posts logger still writes")
response = Client().get("/", HTTP_HOST="scanner.invalid")
print(response.status_code, len(mail.outbox), *[record.levelname for record in seen])
"""


@pytest.mark.parametrize(
    ("name", "own_settings"),
    [layout_param("blog", "blog.settings"), layout_param("portal", "portal.settings.base")],
)
def test_an_unknown_host_is_a_logged_warning_not_a_mail_beside_the_projects_logging(
    layouts, name, own_settings
):
    """The overlay extends the project's LOGGING (the blog has one, the portal none)."""
    state = layouts(name)
    project, python = state["project"], state["python"]
    own = run([python, "-c", DISALLOWED_HOST_PROBE], cwd=project,
              env={"DJANGO_SETTINGS_MODULE": own_settings})  # fmt: skip
    assert own.stdout.split() == ["400", "1", "ERROR"], own.stdout + own.stderr
    served = run([python, "-c", DISALLOWED_HOST_PROBE], cwd=project,
                 env={"DJANGO_SETTINGS_MODULE": overlay_module(name)})  # fmt: skip
    assert served.stdout.split() == ["400", "0", "WARNING"], served.stdout + served.stderr
    assert "Invalid HTTP_HOST header: 'scanner.invalid'" in served.stderr
    # The blog's own handler and logger still write.
    assert ("the posts logger still writes" in served.stderr) == (name == "blog")


# What a retrofit writes for production's environment, never in the way of the project's own.
EXAMPLE = "deploy/production.env.example"


def runbook_block(runbook: str, start: str) -> list[str]:
    """The lines of RUNBOOK.md's console block that holds a line starting with `start`."""
    for block in runbook.split("```console\n")[1:]:
        lines = block.split("```")[0].splitlines()
        if any(line.startswith(start) for line in lines):
            return lines
    raise AssertionError(f"no console block has a line starting with {start!r}")


@pytest.mark.parametrize("name", [layout_param("portal"), layout_param("startproject")])
def test_the_runbook_installs_as_the_project_does_and_the_layer_imports(layouts, name, tmp_path):
    """requirements.txt (or no file at all): the RUNBOOK's own install lines, run by bash
    in a copy of the checkout, give a virtualenv that runs the production layer."""
    state = layouts(name)
    project, layout = state["project"], state["layout"]
    runbook = (project / "RUNBOOK.md").read_text()
    assert "uv sync" not in runbook
    app_dir = recorded_answers(project)["app_dir"]
    defined = [line for line in runbook_block(runbook, "manage() {")
               if line.startswith("install_dependencies() {")]  # fmt: skip
    first = [line for line in runbook_block(runbook, "git clone ")
             if line.startswith(f"cd {app_dir} && ")]  # fmt: skip
    assert len(defined) == 1 and first == [f"cd {app_dir} && uv venv .venv && install_dependencies"]
    for releasing in ("## Every release", "## Rollback"):
        assert "&& install_dependencies\n" in runbook.split(releasing)[1].split("```\n")[0]
    wanted = "-r requirements.txt" if layout.dependencies == "requirements.txt" else "'django>="
    assert wanted in defined[0]
    # The server's checkout: the project as committed, with the production layer.
    server = tmp_path / "server"
    shutil.copytree(project, server, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "uv").symlink_to(Path(sys.executable).parent / "uv")
    script = "\n".join(["set -eu", defined[0], first[0].replace(app_dir, str(server), 1)])
    # Offline, from uv's cache: the suite reaches no package index.
    installed = run(["bash", "-c", script], cwd=tmp_path, timeout=600,
                    env={"PATH": f"{tools}:/usr/bin:/bin", "UV_OFFLINE": "1",
                         "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": find_python("5.2")})  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # This server's .env, from the example the retrofit wrote, as the RUNBOOK makes it
    # (install -o root -g <service> becomes cp: the tests run unprivileged).
    secrets = [line for line in runbook_block(runbook, "git clone ")
               if line.startswith(("install -m 640 ", "sed -i "))]  # fmt: skip
    assert secrets[0] == f"install -m 640 -o root -g {layout.package} {EXAMPLE} .env"
    (server / ".env").unlink()
    made = run(["bash", "-c", f"set -eu\ncp {EXAMPLE} .env\n{secrets[1]}"], cwd=server)
    assert made.returncode == 0, made.stderr
    venv_python = server / ".venv/bin/python"
    result = check_deploy(venv_python, server, overlay_module(layout.package))
    assert result.returncode == 0, result.stdout + result.stderr
    imported = run([venv_python, "-c", "import gunicorn, pydantic_settings, httpx, crossplane"],
                   cwd=server)  # fmt: skip
    assert imported.returncode == 0, imported.stderr


@pytest.mark.parametrize("name", [layout_param("blog"), layout_param("environ")])
def test_the_runbook_of_a_pyproject_project_syncs_and_names_what_to_add(layouts, name):
    state = layouts(name)
    runbook = (state["project"] / "RUNBOOK.md").read_text()
    assert "install_dependencies" not in runbook
    assert runbook.count("uv sync --no-dev") == 3
    hint = runbook.split("# uv add ", 1)[1].split("\n", 1)[0]
    assert hint.endswith(", then commit).")
    answers = recorded_answers(state["project"])
    named = hint.removesuffix(", then commit).").split("' '")
    # django-csp sends the Content-Security-Policy on Django 5.2 (6.x has its own).
    assert any(name.startswith("django-csp") for name in named) is (
        answers["django_version"] == "5.2"
    )
    assert len(named) == (8 if answers["proxy"] == "load_balancer" else 7) + (
        answers["database"] == "postgres"
    ) + (answers["django_version"] == "5.2")


@pytest.mark.xdist_group("retrofit-blog")
def test_an_invalid_environment_is_one_line_per_variable(layouts):
    state = layouts("blog")
    result = check_deploy(state["python"], state["project"], overlay_module("blog"),
                          env={"DJANGO_ENV_FILE": "", "DJANGO_ALLOWED_HOSTS": "https://blog.example"})  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "The environment is not valid for these settings:"
    assert [line.split()[0] for line in lines[1:]] == [
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
    ]


@pytest.mark.parametrize(
    ("files", "data", "refusal"),
    [
        pytest.param(
            {"manage.py": manage_py("site.settings"), "site_code/__init__.py": ""}, [],
            "refused: project_slug: 'my_site' is not the project's package (manage.py runs "
            "site.settings); answer project_slug=the package that holds your settings",
            id="package-missing",
        ),
        pytest.param(
            {"manage.py": manage_py("shop.settings"), "shop/__init__.py": "", "shop/settings.py": ""},
            ["project_slug=my_site"],
            "refused: project_slug: 'my_site' is not the project's package (manage.py runs "
            "shop.settings, package shop); answer project_slug=shop",
            id="another-package",
        ),
        pytest.param(
            {"manage.py": manage_py("shop.settings"), "shop/__init__.py": "", "shop/settings.py": ""},
            ["existing_settings_module=shop.settings.dev"],
            "refused: existing_settings_module: 'shop.settings.dev' is not a module of the "
            "project (manage.py runs shop.settings, package shop); answer "
            "existing_settings_module=shop.settings",
            id="module-missing",
        ),
        pytest.param(
            {"manage.py": manage_py("shop.settings"), "shop/__init__.py": "", "shop/settings.py": "",
             "shop/health.py": "# the team's own\n", "deploy/gunicorn.conf.py": "workers = 3\n"},
            [],
            "refused: retrofit: the project already has shop/health.py, deploy/gunicorn.conf.py, "
            "which the production layer adds; move yours aside (git mv shop/health.py "
            "shop/health.py.mine), commit, and run it again",
            id="layer-file-taken",
        ),
        pytest.param({"README.md": "hello\n"}, [],
                     "refused: retrofit: the destination has no manage.py", id="no-project"),
    ],
)  # fmt: skip
def test_a_retrofit_that_would_miss_the_project_is_refused_in_one_line(
    template_repo, tmp_path, files, data, refusal
):
    project = write_files(tmp_path / "existing", files)
    before = tree(project)
    result = copier_copy_cli(template_repo, project, "retrofit=true", *data)
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("refused:")] == [
        line for line in result.stderr.splitlines() if refusal.split(";")[0] in line
    ]
    assert refusal in result.stderr
    assert "Traceback" not in result.stderr
    assert tree(project) == before


@pytest.mark.parametrize("mode", MODES)
def test_a_projects_own_docker_and_ci_files_are_kept_and_listed(template_repo, tmp_path, mode):
    """deployment=compose on a project with its own Dockerfile, compose.yaml and workflow,
    by -d answers and at the prompts: never rendered over, never an overwrite prompt."""
    own = {
        "Dockerfile": 'FROM python:3.12-slim\nCMD ["gunicorn", "shop.wsgi"]\n',
        "compose.yaml": "services:\n  web:\n    build: .\n",
        ".dockerignore": ".git\n",
        ".github/workflows/ci.yml": "on: push\njobs: {}\n",
    }
    files = {"manage.py": manage_py("shop.settings"), "shop/__init__.py": "",
             "shop/settings.py": "SECRET_KEY = 'dev'\n", ".gitignore": ".env\n", **own}  # fmt: skip
    project = write_files(tmp_path / "shop", files)
    new_repo(project, "the shop with its own containers")
    if mode == "answers":
        result = copier_copy_cli(template_repo, project, "retrofit=true", "deployment=compose")
        status, printed = result.returncode, result.stdout + result.stderr
    else:
        status, printed = press_enter_through_prompts(
            template_repo, project, ["deployment=compose"], vcs_ref="0.1.0"
        )
    assert status == 0, printed
    assert {name: (project / name).read_text() for name in own} == own
    printed = " ".join(printed.split())
    assert (
        "Kept as they were, never rendered over: compose.yaml, Dockerfile, .dockerignore, "
        ".github/workflows. The template's own compose.yaml, Dockerfile, .dockerignore, "
        ".github/workflows are in its template/ folder, to compare with yours." in printed
    )
    runbook = (project / "RUNBOOK.md").read_text()
    assert f"cp {EXAMPLE} .env && chmod 600 .env\n" in runbook
    assert "DJANGO_SECRET_KEY=" in (project / EXAMPLE).read_text()
    assert recorded_answers(project)["project_slug"] == "shop"
