"""An update that renames the session and CSRF cookies says what that does to users.

The __Host- prefix renames both cookies: browsers keep sending the old ones, Django
no longer reads them, so everyone logged in is logged out once. `copier update`
says so after it runs, once, and only when the project's production settings did
not have the prefix before.

Releases built here: 0.0.1 is the working tree without the cookie names (as projects
made before them are), 0.1.0 the working tree, 0.2.0 the working tree with a reworded
comment, so a project already on the prefix gets an update too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .support.git import new_repo, release
from .support.project import edit
from .support.rendering import copier_cli, render, snapshot_template

SECURITY_SETTINGS = "my_site/settings/security.py"
HOST_COOKIE_LINES = (
    'SESSION_COOKIE_NAME = "__Host-sessionid"\nCSRF_COOKIE_NAME = "__Host-csrftoken"\n'
)
NOTICE = "The session and CSRF cookies are renamed to __Host-sessionid and __Host-csrftoken"


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> Path:
    template = snapshot_template(tmp_path_factory.mktemp("releases") / "django-shipshape")
    security = template / "includes/settings/security.py.jinja"
    text = security.read_text()
    comment = text[text.index("# The __Host- prefix") : text.index(HOST_COOKIE_LINES)]
    edit(security, comment + HOST_COOKIE_LINES, "")
    release(template, "0.0.1")
    security.write_text(text)
    edit(security, "SESSION_COOKIE_SECURE = True\n", "# Cookies.\nSESSION_COOKIE_SECURE = True\n")
    release(template, "0.2.0")
    return template


def updated(template: Path, project: Path, version: str) -> str:
    """`copier update` as a user runs it; what it prints on stderr."""
    result = copier_cli(
        "update", "--trust", "--defaults", "--vcs-ref", version, cwd=project,
        settings_dir=project.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_renaming_the_cookies_says_users_are_logged_out_once(releases, tmp_path):
    project = render(releases, tmp_path / "my_site", vcs_ref="0.0.1")
    assert "__Host-" not in (project / SECURITY_SETTINGS).read_text()
    new_repo(project, "generated at 0.0.1")
    stderr = updated(releases, project, "0.1.0")
    assert stderr.count(NOTICE) == 1, stderr
    assert "logged out once" in stderr and "my_site/settings/security.py" in stderr
    assert HOST_COOKIE_LINES in (project / SECURITY_SETTINGS).read_text()


def test_a_project_that_has_the_prefix_already_is_told_nothing(releases, tmp_path):
    project = render(releases, tmp_path / "my_site", vcs_ref="0.1.0")
    new_repo(project, "generated at 0.1.0")
    stderr = updated(releases, project, "0.2.0")
    assert NOTICE not in stderr, stderr
    assert "# Cookies." in (project / SECURITY_SETTINGS).read_text()
