"""Write the project's .env once, with a freshly generated secret key.

copier runs this task after every copy and update (three times per update), so it
must be idempotent: an existing .env is the team's and is never touched. It prints
nothing secret: only whether it wrote the file.

Only the standard library is used, because this runs on the interpreter that runs
copier, not in the generated project's environment.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

# URL-safe characters only: the value survives systemd's EnvironmentFile, docker
# compose's env_file interpolation and python-dotenv without quoting.
SECRET_KEY_BYTES = 48  # 64 characters
DATABASE_PASSWORD_BYTES = 24


def render(*, hosts: list[str], database: str, deployment: str, project_slug: str) -> str:
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
    ]
    if database == "postgres":
        password = secrets.token_urlsafe(DATABASE_PASSWORD_BYTES)
        db_host = "db" if deployment == "compose" else "localhost"
        if deployment == "compose":
            lines += [
                "",
                "# Read by the db service in compose.yaml on its first start.",
                f"POSTGRES_DB={project_slug}",
                f"POSTGRES_USER={project_slug}",
                f"POSTGRES_PASSWORD={password}",
            ]
        lines += [
            "",
            f"DATABASE_URL=postgres://{project_slug}:{password}@{db_host}:5432/{project_slug}",
        ]
    else:
        lines += [
            "",
            "# Unset: SQLite in db.sqlite3 at the project root.",
            "# DATABASE_URL=sqlite:////absolute/path/db.sqlite3",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", required=True, help="comma-separated public hostnames")
    parser.add_argument("--database", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--deployment", choices=["systemd", "compose"], required=True)
    parser.add_argument("--project-slug", required=True)
    parser.add_argument("--path", type=Path, default=Path(".env"))
    args = parser.parse_args(argv)

    if args.path.exists():
        print(f"{args.path} exists: left unchanged")
        return 0

    content = render(
        hosts=[h for h in args.hosts.split(",") if h],
        database=args.database,
        deployment=args.deployment,
        project_slug=args.project_slug,
    )
    # Created 0600 from the start: the secret is never readable by others, not even briefly.
    fd = os.open(args.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as env_file:
        env_file.write(content)
    print(f"{args.path} written with a new secret key")
    return 0


if __name__ == "__main__":
    sys.exit(main())
