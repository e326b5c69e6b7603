"""The RUNBOOK's backup, restore drill and restore commands, run as written, bring the data back.

For a systemd project on SQLite and one on a real PostgreSQL server (tests/postgres.py),
the console blocks of "Backups and restore" run in one bash, in order, from the
project folder, as the runbook says to run them. Only what the runbook says to fill
in is filled in (`<backup>`, the drill's scratch database), and what only a server
has stands in: the SQLite file and the backups folder are a temporary folder's
(the two paths the runbook defines once per shell), `systemctl` records what it
was asked, and `manage` runs manage.py with this machine's Python (its smoketest,
which needs the public site, is recorded instead). Between the backup and the
restore, the data is destroyed; afterwards the users are found again.
"""

from __future__ import annotations

import re
from pathlib import Path

from .deploy.systemd_host import console_blocks
from .postgres import postgres_database, postgres_server  # noqa: F401
from .support.processes import run
from .support.project import settings_module

USERS = ["alice", "bob", "carol"]
SECTION = "Backups and restore"
# What the restore asks of the server besides the database: stop, start, smoke test.
EXPECTED_CALLS = [
    "systemctl stop my_site.socket my_site",
    "systemctl start my_site.socket my_site.service",
    "manage smoketest https://example.com",
]


def prelude(python: Path, calls: Path) -> str:
    """The server-only commands, as this machine runs them (see the module docstring)."""
    return (
        f'systemctl() {{ echo "systemctl $*" >> "{calls}"; }}\n'
        f'manage() {{ if [ "$1" = smoketest ]; then echo "manage $*" >> "{calls}"; '
        f'else "{python}" manage.py "$@"; fi; }}\n'
    )


def fill_in(block: str, **values: str) -> str:
    """The block with each `<placeholder>` the runbook asks for replaced, each found once."""
    for placeholder, value in values.items():
        assert block.count(placeholder) == 1, f"{placeholder} is not in the block once:\n{block}"
        block = block.replace(placeholder, value)
    assert not re.search(r"<[a-z][^>]*>", block), f"a placeholder is left:\n{block}"
    return block


def set_line(block: str, name: str, value: str) -> str:
    """The block with the shell variable `name` assigned `value` instead (a server path)."""
    pattern = re.compile(rf"^{name}=.*$", re.M)
    assert len(pattern.findall(block)) == 1, f"no single {name}= in:\n{block}"
    return pattern.sub(f"{name}={value}", block)


def bash(project: Path, script: str, env: dict[str, str]) -> str:
    result = run(["bash", "-e", "-o", "pipefail", "-c", script], project, env)
    assert result.returncode == 0, (
        f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout


def django(python: Path, project: Path, env: dict[str, str], code: str) -> str:
    script = f"import django; django.setup(); from django.contrib.auth.models import User; {code}"
    result = run([python, "-c", script], project, env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def create_users(python: Path, project: Path, env: dict[str, str]) -> None:
    migrated = run([python, "manage.py", "migrate", "--noinput"], project, env)
    assert migrated.returncode == 0, migrated.stderr
    django(python, project, env, f"[User.objects.create_user(n) for n in {USERS!r}]")


def usernames(python: Path, project: Path, env: dict[str, str]) -> list[str]:
    out = django(
        python,
        project,
        env,
        "print(*User.objects.order_by('username').values_list('username', flat=True))",
    )
    return out.split()


def test_the_sqlite_backup_restores_a_destroyed_database(fresh_project, project_python, tmp_path):
    project = fresh_project()
    python = project_python("5.2")
    db, backups, calls = tmp_path / "lib" / "db.sqlite3", tmp_path / "backups", tmp_path / "calls"
    db.parent.mkdir()
    env = {"DJANGO_SETTINGS_MODULE": settings_module({}), "DATABASE_URL": f"sqlite:///{db}"}
    create_users(python, project, env)

    runbook = (project / "RUNBOOK.md").read_text()
    definitions, backup, drill, restore = console_blocks(runbook, SECTION)
    definitions = set_line(set_line(definitions, "db", str(db)), "backups", str(backups))
    shell = prelude(python, calls) + definitions

    bash(project, shell + backup, env)
    [taken] = list(backups.iterdir())
    assert taken.name.startswith("db-") and taken.suffix == ".sqlite3"

    drilled = bash(project, shell + drill, env)
    assert drilled.split() == ["ok", str(len(USERS))], drilled

    db.write_bytes(b"")  # destroyed: an empty file where the database was
    bash(project, shell + fill_in(restore, **{"<backup>": taken.name}), env)

    assert usernames(python, project, env) == USERS
    assert calls.read_text().splitlines() == EXPECTED_CALLS


def test_the_postgres_backup_restores_a_destroyed_database(
    fresh_project,
    project_python,
    postgres_database,  # noqa: F811
    tmp_path,
):
    project = fresh_project(database="postgres")
    python = project_python("5.2")
    url, scratch_url = postgres_database("backup"), postgres_database("drill")
    # The server's .env holds its DATABASE_URL, which the runbook reads from there.
    env_file = project / ".env"
    env_file.write_text(
        re.sub(r"^DATABASE_URL=.*$", f"DATABASE_URL={url}", env_file.read_text(), flags=re.M)
    )
    backups, calls = tmp_path / "backups", tmp_path / "calls"
    env = {"DJANGO_SETTINGS_MODULE": settings_module({})}
    create_users(python, project, env)

    runbook = (project / "RUNBOOK.md").read_text()
    definitions, backup, drill, restore = console_blocks(runbook, SECTION)
    shell = prelude(python, calls) + set_line(definitions, "backups", str(backups))

    bash(project, shell + backup, env)
    [taken] = list(backups.iterdir())
    assert taken.name.startswith("db-") and taken.suffix == ".dump"

    drilled = bash(
        project,
        shell + fill_in(drill, **{"<the URL of an empty scratch database>": scratch_url}),
        env,
    )
    assert drilled.split() == [str(len(USERS))], drilled

    destroyed = run(["psql", url, "--command", "DROP TABLE auth_user CASCADE"], project)
    assert destroyed.returncode == 0, destroyed.stderr
    bash(project, shell + fill_in(restore, **{"<backup>": taken.name}), env)

    assert usernames(python, project, env) == USERS
    assert calls.read_text().splitlines() == EXPECTED_CALLS
