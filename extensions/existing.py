"""What an existing Django project already is, read from its files before a retrofit.

`copier copy --trust -d retrofit=true <template> path/to/project` renders the production
layer into a project that did not start from this template. The answers that must match
that project (its package, its settings module) default to what is read here, so pressing
Enter through the prompts, or --defaults, renders into the project's real package; and a
retrofit into a folder whose package does not exist is refused with one line naming what
was found, before copier writes a file.

Nothing is imported or run from the project: its manage.py, wsgi.py and settings are read
as text. `detect()` needs only the standard library, so hooks/write_env.py reads the same
facts; the Jinja extension at the end hands them to copier.yml.
The result is also what the closing message reports: the files the retrofit kept, and the
security settings the project drives from its own variables, which the overlay replaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SETTINGS_DEFAULT = re.compile(
    r"""environ\.setdefault\(\s*["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']"""
)
WSGI_APPLICATION = re.compile(r"""^WSGI_APPLICATION\s*=\s*["']([\w.]+)["']""", re.M)
# A settings line that takes a security setting from a variable of the project's own:
# `SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60)`.
SECURITY_SETTING = re.compile(
    r"""^(SECURE_\w+|SESSION_COOKIE_SECURE|CSRF_COOKIE_SECURE|CSRF_TRUSTED_ORIGINS"""
    r"""|ALLOWED_HOSTS|SECRET_KEY|DEBUG)\s*=.*?["']([A-Z][A-Z0-9_]*)["']""",
    re.M,
)
# How a project reads .env by itself, by library.
ENV_READERS = {
    "django-environ": re.compile(r"\bread_env\(|^import environ\b|^from environ\b", re.M),
    "python-dotenv": re.compile(r"\bload_dotenv\(|^from dotenv\b|^import dotenv\b", re.M),
    "python-decouple": re.compile(r"^from decouple\b|^import decouple\b", re.M),
}
# Files a team writes for itself, which a retrofit keeps and never asks about.
OWN_FILES = (".env.example", "compose.yaml", "Dockerfile", ".dockerignore", ".github/workflows")


@dataclass(frozen=True)
class ExistingProject:
    """The facts a retrofit builds on; all empty when the folder holds no Django project."""

    manage_py: bool = False
    package: str = ""  # the package that holds the settings and wsgi.py
    settings_module: str = ""  # what the overlay builds on
    manage_settings_module: str = ""  # what manage.py runs by default
    wsgi_module: str = ""  # what WSGI_APPLICATION names, without `.application`
    env_reader: str = ""  # the library the project reads .env with, if any
    installs_with: str = ""  # "pyproject.toml", "requirements.txt" or "none"
    security_variables: tuple[tuple[str, str], ...] = ()  # (setting, variable)
    own_files: tuple[str, ...] = field(default=())

    @property
    def reads_env_file(self) -> bool:
        return bool(self.env_reader)

    def summary(self) -> str:
        """One line naming what was found, for a refusal."""
        if not self.manage_py:
            return "no manage.py"
        found = [f"manage.py runs {self.manage_settings_module or 'no settings module'}"]
        if self.package:
            found.append(f"package {self.package}")
        return ", ".join(found)


def module_file(root: Path, module: str) -> Path | None:
    """The file of a dotted module under `root`: a module or a package's __init__.py."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def read(path: Path | None) -> str:
    try:
        return path.read_text(encoding="utf-8") if path else ""
    except (OSError, UnicodeDecodeError):
        return ""


def settings_files(root: Path, module: str) -> list[Path]:
    """The settings module's file and, for a settings package, every module in it."""
    file = module_file(root, module)
    if file is None:
        return []
    folder = file.parent
    package = module.rsplit(".", 1)[0] if file.name != "__init__.py" else module
    if (folder / "__init__.py").is_file() and package.split(".")[-1] == "settings":
        return sorted(folder.glob("*.py"))
    return [file]


def overlay_base(root: Path, module: str) -> str:
    """The module the overlay imports: a settings package's base module when it has one.

    A package of base/local/production modules keeps its production module for itself:
    it usually demands variables of its own, and the overlay replaces what it sets.
    """
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        package = ".".join(parts[:depth])
        if package.split(".")[-1] == "settings" and module_file(root, f"{package}.base"):
            return f"{package}.base"
    return module


def detect(root: Path) -> ExistingProject:
    """Read the project in `root`; an empty result when there is none."""
    root = Path(root)
    manage = root / "manage.py"
    if not manage.is_file():
        return ExistingProject()
    match = SETTINGS_DEFAULT.search(read(manage))
    manage_module = match.group(1) if match else ""
    package = manage_module.split(".")[0] if manage_module else ""
    if package and not (root / package / "__init__.py").is_file():
        package = ""
    files = settings_files(root, manage_module) if package else []
    text = "\n".join(read(file) for file in files)
    wsgi = WSGI_APPLICATION.search(text)
    wsgi_module = wsgi.group(1).rsplit(".", 1)[0] if wsgi else ""
    if not wsgi_module and module_file(root, f"{package}.wsgi"):
        wsgi_module = f"{package}.wsgi"
    readers = [name for name, pattern in ENV_READERS.items() if pattern.search(text)]
    return ExistingProject(
        manage_py=True,
        package=package,
        settings_module=overlay_base(root, manage_module) if package else "",
        manage_settings_module=manage_module,
        wsgi_module=wsgi_module,
        env_reader=readers[0] if readers else "",
        installs_with=dependencies_file(root),
        security_variables=tuple(dict.fromkeys(SECURITY_SETTING.findall(text))),
        own_files=tuple(name for name in OWN_FILES if (root / name).exists()),
    )


def dependencies_file(root: Path) -> str:
    """Where the project lists its dependencies: what `pip install`s it on a server."""
    if "[project]" in read(root / "pyproject.toml"):
        return "pyproject.toml"
    if (root / "requirements.txt").is_file():
        return "requirements.txt"
    # A pyproject.toml of another tool's format still says where dependencies go.
    return "pyproject.toml" if (root / "pyproject.toml").is_file() else "none"


def layer_files(slug: str) -> tuple[str, ...]:
    """What a retrofit adds beside the project's files: a project that has one of them
    already would get copier's overwrite prompt, or a copy that stops halfway."""
    return (
        f"{slug}/settings_production.py", f"{slug}/env.py", f"{slug}/health.py",
        f"{slug}/logging_filters.py", "RUNBOOK.md", "shipshape", "deploy/gunicorn.conf.py",
        "deploy/production.env.example", f"deploy/nginx/{slug}.conf", "deploy/caddy",
        f"deploy/systemd/{slug}.service", f"deploy/systemd/{slug}.socket", "deploy/kubernetes",
    )  # fmt: skip


def retrofit_problem(root: Path, slug: str, settings_module: str) -> str | None:
    """Why a retrofit with these answers would not land in the project in `root`, or None."""
    found = detect(root)
    if not found.manage_py:
        return (
            "retrofit: the destination has no manage.py; run it on the folder that holds "
            "your Django project's manage.py"
        )
    if not found.package or found.package != slug:
        return (
            f"project_slug: '{slug}' is not the project's package ({found.summary()}); "
            f"answer project_slug={found.package or 'the package that holds your settings'}"
        )
    if module_file(Path(root), settings_module) is None:
        return (
            f"existing_settings_module: '{settings_module}' is not a module of the project "
            f"({found.summary()}); answer existing_settings_module={found.settings_module}"
        )
    # A project retrofitted before (it has copier's answers file) is updated instead.
    taken = [name for name in layer_files(slug) if (Path(root) / name).exists()]
    if taken and not (Path(root) / ".copier-answers.yml").exists():
        first = taken[0]
        return (
            f"retrofit: the project already has {', '.join(taken)}, which the production "
            f"layer adds; move yours aside (git mv {first} {first}.mine), commit, and run "
            "it again"
        )
    if found.wsgi_module and found.wsgi_module != f"{slug}.wsgi":
        return (
            f"project_slug: the project serves {found.wsgi_module}, outside '{slug}'; "
            f"move wsgi.py into {slug}/ (deploy/ starts {slug}.wsgi)"
        )
    return None


# -- the Jinja extension copier loads (`_jinja_extensions` in copier.yml) -------------

# Read once per destination and copier run: the closing message must report the files
# the project had before the render added its own.
_found: dict[Path, ExistingProject] = {}


def _destination(context) -> Path:
    return Path(context["_copier_conf"]["dst_path"]).resolve()


def _existing_project(context) -> ExistingProject:
    root = _destination(context)
    if root not in _found:
        _found[root] = detect(root)
    return _found[root]


def _updating() -> bool:
    """Whether copier runs an update, whose scratch renders go to empty folders."""
    try:
        from copier._main import _operation  # not public API; as extensions/updates.py
    except ImportError:  # pragma: no cover - another copier: check every render
        return False
    return _operation.get(None) == "update"


def _refuse_retrofit(context) -> str:
    """The last checkpoint of a retrofit copy: the package and settings must exist."""
    from copier.errors import UserMessageError

    if not context.get("retrofit") or _updating():
        return ""
    root = _destination(context)
    slug, module = context["project_slug"], context["existing_settings_module"]
    if problem := retrofit_problem(root, slug, module):
        raise UserMessageError(f"refused: {problem}")
    return ""


def _extension():
    from jinja2 import pass_context
    from jinja2.ext import Extension

    class ExistingProjectExtension(Extension):
        """`existing_project()` and `refuse_retrofit()` as globals of copier.yml."""

        def __init__(self, environment):
            super().__init__(environment)
            environment.globals.update(
                existing_project=pass_context(_existing_project),
                refuse_retrofit=pass_context(_refuse_retrofit),
            )

    return ExistingProjectExtension


def __getattr__(name: str):
    # Built on first use, so hooks/write_env.py imports this module without Jinja.
    if name == "ExistingProjectExtension":
        return _extension()
    raise AttributeError(name)
