"""Write the project's .env once, with a freshly generated secret key.

copier runs this task after every copy and update (three times per update), so it
must be idempotent: an existing .env is the team's and is never touched. It prints
nothing secret: only what it did, and only about the project itself (an update's
scratch renders, which copier makes to compute its diff, get a .env without a word).

The file is written whole or not at all: the content goes to a private temporary
file beside it, which is renamed over the name only once it is on disk. A full disk
or a read-only folder leaves no empty .env that a later run would keep as if it held
a key.

A .env missing from a project being updated was deleted: the new one says so loudly,
because its secret key is new, and for PostgreSQL it carries no password, since the
database was created with the old one and a new one would only lock Django out.

In a retrofit, the project is the team's: a project that reads .env itself (django-environ,
python-dotenv, decouple) would run its development and tests with production's values, so
those go to .env.production instead, which the overlay reads. The project's .gitignore is
appended to, never rewritten, and what git ignores is checked with `git check-ignore`.

Only the standard library is used, because this runs on the interpreter that runs
copier, not in the generated project's environment.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

# URL-safe characters only: the value survives systemd's EnvironmentFile, docker
# compose's env_file interpolation and python-dotenv without quoting.
SECRET_KEY_BYTES = 48  # 64 characters
DATABASE_PASSWORD_BYTES = 24


def mail_lines(host: str) -> list[str]:
    """Mail's variables: where error reports go and come from (see .env.example)."""
    return [
        "",
        "# Error reports go to DJANGO_ADMINS (comma-separated). Replace these with the",
        "# team's real addresses; mail servers refuse Django's @localhost defaults.",
        f"DJANGO_ADMINS=webmaster@{host}",
        f"DJANGO_SERVER_EMAIL=django@{host}",
        f"DJANGO_DEFAULT_FROM_EMAIL=noreply@{host}",
        "# DJANGO_EMAIL_URL is not set: development prints mail to the console,",
        "# production sends it through this machine's mail server (smtp://localhost:25).",
    ]


def render(
    *,
    hosts: list[str],
    database: str,
    deployment: str,
    project_slug: str,
    new_database_password: bool = True,
) -> str:
    lines = [
        "# Settings for this machine. Git-ignored: never commit this file.",
        "# Every variable is validated by " + project_slug + "/env.py when Django starts.",
        "",
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(SECRET_KEY_BYTES)}",
        f"DJANGO_ALLOWED_HOSTS={','.join(hosts)}",
        "# Only for browser POSTs from other origins; the site's own hosts never need it.",
        "DJANGO_CSRF_TRUSTED_ORIGINS=",
        "# DJANGO_DEBUG is not set: debug pages stay off unless the development settings",
        "# or DJANGO_DEBUG=true turn them on, and production settings refuse true.",
        *mail_lines(hosts[0]),
    ]
    if database == "postgres":
        db_host = "db" if deployment == "compose" else "localhost"
        url = f"postgres://{project_slug}:{{password}}@{db_host}:5432/{project_slug}"
        if new_database_password:
            password = secrets.token_urlsafe(DATABASE_PASSWORD_BYTES)
            assign, restore = "", []
        else:
            # The database keeps the password it was created with: put that one back.
            password, assign = "THE-PASSWORD-THE-DATABASE-WAS-CREATED-WITH", "# "
            restore = ["# .env was regenerated: restore the database's own password below."]
        if deployment == "compose":
            lines += [
                "",
                "# Read by the db service in compose.yaml on its first start.",
                *restore,
                f"POSTGRES_DB={project_slug}",
                f"POSTGRES_USER={project_slug}",
                f"{assign}POSTGRES_PASSWORD={password}",
            ]
        lines += ["", *restore, assign + "DATABASE_URL=" + url.format(password=password)]
    else:
        lines += [
            "",
            "# Unset: SQLite in db.sqlite3 at the project root.",
            "# DATABASE_URL=sqlite:////absolute/path/db.sqlite3",
        ]
    return "\n".join(lines) + "\n"


def is_tracked(name: str) -> bool:
    """Whether git tracks `name` here: the project has been committed since it was copied."""
    result = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "--", name], capture_output=True, check=False
    )
    return result.returncode == 0


def write_whole(path: Path, content: str) -> None:
    """Put `content` at `path` in one step, 0600 from the start, or raise leaving nothing."""
    fd, partial = tempfile.mkstemp(
        dir=path.parent or ".", prefix=f"{path.name}.", suffix=".partial"
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as env_file:
            env_file.write(content)
            env_file.flush()
            os.fsync(env_file.fileno())
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def existing_project(root: Path):
    """extensions/existing.py's reading of the project, loaded by path like copier does."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "extensions" / "existing.py"
    spec = importlib.util.spec_from_file_location("django_shipshape_existing", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.detect(root)


def git_ignores(name: str) -> bool | None:
    """Whether git ignores `name` here; None outside a git repository."""
    result = subprocess.run(
        ["git", "check-ignore", "-q", "--", name], capture_output=True, check=False
    )
    return {0: True, 1: False}.get(result.returncode)


def ensure_ignored(name: str, gitignore: Path = Path(".gitignore")) -> None:
    """Append `name` to the project's .gitignore unless git already ignores it, and say so."""
    ignored = git_ignores(name)
    if ignored is None:
        warn(f"not a git repository: nothing checks that {name} stays out of version control")
        return
    if ignored:
        print(f"{name} is git-ignored")
        return
    existing = gitignore.read_bytes() if gitignore.is_file() else b""
    with gitignore.open("ab") as file:
        if existing and not existing.endswith(b"\n"):
            file.write(b"\n")
        file.write(f"# Secrets of this machine (django-shipshape).\n/{name}\n".encode())
    if git_ignores(name):
        print(f"{gitignore}: /{name} appended, so git ignores {name}")
    else:
        warn(f"git still does not ignore {name} (a rule after ours?): keep it out of commits")


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", required=True, help="comma-separated public hostnames")
    parser.add_argument("--database", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--deployment", choices=["systemd", "compose", "kubernetes"], required=True)
    parser.add_argument("--project-slug", required=True)
    parser.add_argument("--path", type=Path, default=Path(".env"))
    parser.add_argument(
        "--operation", choices=["copy", "update"], default="copy", help="what copier is doing"
    )
    parser.add_argument("--answers-file", default=".copier-answers.yml")
    parser.add_argument(
        "--retrofit", type=lambda value: value.lower() == "true", default=False,
        help="true when the destination is an existing project",
    )  # fmt: skip
    args = parser.parse_args(argv)

    # In an update, the project is a git repository that tracks its answers file; the
    # scratch renders copier makes beside it are not. They still get a .env, quietly:
    # copier removes from the project every file its render of the old version has and
    # its render of the new version lacks, and earlier releases wrote .env in both.
    updating_the_project = args.operation == "update" and is_tracked(args.answers_file)
    scratch = args.operation == "update" and not updating_the_project
    if args.retrofit and not scratch and args.path == Path(".env"):
        production = args.path.with_name(".env.production")
        if production.exists() or existing_project(Path.cwd()).reads_env_file:
            args.path = production
        ensure_ignored(args.path.name)
    empty = args.path.is_file() and args.path.stat().st_size == 0
    if args.path.exists() and not empty:
        if not scratch:
            print(f"{args.path} exists: left unchanged")
        return 0

    content = render(
        hosts=[h for h in args.hosts.split(",") if h],
        database=args.database,
        deployment=args.deployment,
        project_slug=args.project_slug,
        new_database_password=not updating_the_project,
    )
    try:
        write_whole(args.path, content)
    except OSError as error:
        print(
            f"error: could not write {args.path}: {error.strerror or error}; nothing was left "
            "in its place. Free space or make the folder writable, then run copier again",
            file=sys.stderr,
        )
        return 1

    if scratch:
        return 0
    if empty:
        warn(f"{args.path} was empty (an interrupted write?): written again with a new secret key")
    elif updating_the_project:
        warn(
            f"{args.path} was missing, so a new one was written with a new secret key: sessions "
            "and signed links made with the old key no longer work; if the old key is still on "
            f"your servers, put it back in {args.path}"
        )
    else:
        print(f"{args.path} written with a new secret key")
    if updating_the_project and args.database == "postgres":
        warn(
            f"{args.path} holds no database password: the database was created with the one "
            f"in the lost {args.path}; put that password back where {args.path} says, since a "
            "new one would not open the existing database"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
