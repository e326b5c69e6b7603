"""The answers of django-shipshape as one validated model, and the values computed from them.

copier asks the questions in copier.yml; this module decides what it accepts. Fields are
declared in the order copier asks them, so a rule that spans answers lives on the later
field and sees the earlier ones in `info.data` (an earlier answer that was refused is
absent there, so only the cause of a problem is reported, never its consequences).

Every refusal is one line that starts with the question's name and says how to fix the
answer. The module imports nothing from copier or Jinja: tests use it directly.
"""

from __future__ import annotations

import ipaddress
import keyword
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

# Python's own modules, on every Python the generated project supports (3.10 to 3.14):
# the running interpreter's list, plus modules it may lack that another version has.
STDLIB_MODULES = frozenset(sys.stdlib_module_names) | {
    "annotationlib", "asynchat", "asyncore", "audioop", "cgi", "cgitb", "chunk", "compression",
    "crypt", "distutils", "imghdr", "imp", "lib2to3", "mailcap", "msilib", "nis", "nntplib",
    "ossaudiodev", "pipes", "smtpd", "sndhdr", "spwd", "sunau", "telnetlib", "tomllib", "uu",
    "xdrlib",
}  # fmt: skip

# Top-level import names of every package a generated project installs, dependencies of
# dependencies included (tests/test_answers.py compares this with a real project virtualenv).
PROJECT_IMPORTS = frozenset({
    "annotated_types", "anyio", "asgiref", "certifi", "crossplane", "csp", "dj_database_url", "django",
    "dotenv", "gunicorn", "h11", "httpcore", "httpx", "idna", "iniconfig", "packaging", "pluggy",
    "psycopg", "psycopg_binary", "psycopg_c", "psycopg_pool", "py", "pydantic", "pydantic_core",
    "pydantic_settings", "pygments", "pytest", "pytest_django", "ruff", "sqlparse",
    "typing_extensions", "typing_inspection", "whitenoise",
})  # fmt: skip

# Names the project itself uses at its top level: the bundled app, folders and modules.
PROJECT_NAMES = frozenset({
    "shipshape", "deploy", "tests", "static", "media", "staticfiles", "templates", "manage",
    "settings", "test",
})  # fmt: skip

RESERVED_NAMES = STDLIB_MODULES | PROJECT_IMPORTS | PROJECT_NAMES

# Hostnames under these suffixes never reach the public internet.
LOCAL_SUFFIXES = ("localhost", "local", "localdomain", "internal", "invalid", "test", "home.arpa", "lan")  # fmt: skip

# A unix socket path must fit sockaddr_un.sun_path (108 bytes with its NUL).
MAX_SOCKET_PATH = 107
MAX_SLUG = 40
MAX_PATH = 200
MAX_URL_PATH = 100

LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DNS_LABEL = re.compile(LABEL)
HOSTNAME = re.compile(rf"({LABEL}\.)+[a-z]([a-z0-9-]{{0,61}}[a-z0-9])?")
SLUG = re.compile(r"[a-z][a-z0-9_]*")
URL_SEGMENT = r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*"
URL_PREFIX = re.compile(rf"({URL_SEGMENT}/)+")
ABSOLUTE_URL_PATH = re.compile(rf"(/{URL_SEGMENT})+")
FILE_PATH = re.compile(r"(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+")
DOTTED_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# security.txt's Contact: an address or a web page, in characters that need no escaping
# in a Python string, a URL or a text file (no quotes, backslashes, braces, spaces, query).
MAILTO = re.compile(r"mailto:(?P<local>[A-Za-z0-9._+-]+)@(?P<host>[^@]+)")
HTTPS_URL = re.compile(r"https://(?P<host>[^/?#:\s]+)(:[0-9]{1,5})?(?P<path>/[A-Za-z0-9._~/-]*)?")

BOOLEAN_WORDS = {
    "true": True, "yes": True, "y": True, "on": True, "1": True,
    "false": False, "no": False, "n": False, "off": False, "0": False,
}  # fmt: skip


class AnswersError(ValueError):
    """Answers that were refused: one line per problem, each naming its question."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def refuse(message: str) -> ValueError:
    return ValueError(message)


def refuse_if_longer(value: str, limit: int) -> None:
    if len(value) > limit:
        raise refuse(f"'{value[:40]}...' is longer than {limit} characters; give a shorter one")


def as_bool(value: Any) -> bool:
    """A real boolean: `flase` must not become True, nor a data file's 1 a yes by accident."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[value.strip().lower()]
    raise refuse(f"{value!r} is not true or false; answer true or false")


def as_int(value: Any) -> int:
    """A whole number: a data file's `true` must not become 1."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    raise refuse(f"{value!r} is not a whole number")


def as_text(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise refuse(f"{value!r} is not text; give a single value")
    text = str(value)
    if CONTROL.search(text):
        raise refuse(f"{text!r} contains a control character or line break; give it on one line")
    return text


def as_list(value: Any) -> list[str]:
    """Items of a list answer given as YAML (`[a, b]`) or as a comma-separated string (`a,b`)."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, (list, tuple)):
        return [text.strip() for text in map(as_text, value) if text.strip()]
    raise refuse("give a list, e.g. [a, b], or a comma-separated string")


def slug_from_name(name: str) -> str:
    """The package name a project name suggests: `Café Ünïon 2` gives `cafe_union_2`."""
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


def host_problem(value: str) -> str | None:
    """Why `value` is not a usable public hostname, or None when it is."""
    v = value.strip()
    if not v:
        return "give a public hostname, e.g. example.com"
    if "://" in v:
        bare = v.split("://", 1)[1].split("/")[0].split(":")[0]
        return f"'{v}' has a scheme; answer with the bare hostname '{bare}'"
    if len(v.split()) > 1:
        return f"'{v}' has spaces; give one hostname per entry"
    if "*" in v:
        return f"'{v}' is a wildcard; list every hostname the site serves explicitly"
    if "/" in v:
        return f"'{v}' has a path; answer with the bare hostname '{v.split('/')[0]}'"
    try:
        ipaddress.ip_address(v.strip("[]"))
    except ValueError:
        if re.fullmatch(r"[0-9.]+", v):
            return f"'{v}' is an IP address; give the hostname the public uses"
    else:
        return (
            f"'{v}' is an IP address; give the hostname the public uses "
            "(a load balancer's probe by IP reaches health_path on gunicorn without it; "
            "nginx and Caddy close IP hosts, so probe https://<domain><health_path> through them)"
        )
    if ":" in v:
        return (
            f"'{v}' has a port; give the bare hostname '{v.split(':')[0]}' "
            "(ports are the http_port and https_port answers)"
        )
    if v.startswith("."):
        return f"'{v}' starts with a dot; list every hostname the site serves explicitly"
    lower = v.lower().rstrip(".")
    if "." not in lower:
        return (
            f"'{v}' is not a public hostname; give a fully qualified name such as {v}.example.com"
        )
    if any(lower == suffix or lower.endswith("." + suffix) for suffix in LOCAL_SUFFIXES):
        return f"'{v}' is a local name the public cannot reach; give the site's public hostname"
    if len(lower) > 253 or not HOSTNAME.fullmatch(lower):
        return (
            f"'{v}' is not a valid hostname; use letters, digits and inner hyphens "
            "in dot-separated labels"
        )
    return None


def cidr_problem(value: str) -> str | None:
    """Why `value` is not a network in CIDR notation with its host bits clear, or None."""
    if "/" not in value or not re.fullmatch(r"[0-9]{1,3}", value.rpartition("/")[2]):
        return f"'{value}' is not a CIDR; write a network with its prefix length, e.g. 10.0.0.0/8"
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        if "has host bits set" in str(error):
            network = ipaddress.ip_network(value, strict=False)
            return f"'{value}' has host bits set; write the network address, e.g. {network}"
        kind = "IPv6" if ":" in value else "IPv4"
        limit = "128" if kind == "IPv6" else "32"
        return (
            f"'{value}' is not a valid {kind} network; write each part without leading zeros "
            f"and a prefix up to {limit}"
        )
    return None


def readiness_path_from(health_path: str) -> str:
    """The readiness path beside a health path: /healthz gives /readyz, /-/health gives
    /-/ready, and a path without "health" in its last segment gets /ready under it."""
    head, _, last = str(health_path).rpartition("/")
    if "health" in last:
        return f"{head}/{last.replace('health', 'ready', 1)}"
    return f"{str(health_path).rstrip('/')}/ready"


def is_file_path(value: str) -> bool:
    """An absolute path with no space, metacharacter, '.' or '..' segment, or trailing slash."""
    return bool(FILE_PATH.fullmatch(value)) and not path_segments_problem(value)


def check_probe_path(value: str, admin_path: str | None, example: str) -> None:
    """Refuse a probe's URL path (health or readiness) that is malformed or overlaps a
    URL the project already serves: the admin (`admin_path`, None when it was refused),
    static or media files. `example` is the path the message suggests instead."""
    if not ABSOLUTE_URL_PATH.fullmatch(value) or path_segments_problem(value):
        raise refuse(f"'{value}' must be an absolute path without a trailing slash, e.g. {example}")
    admin = "/" + (admin_path if admin_path is not None else "\0")
    if (
        (value + "/").startswith(admin)
        or admin.startswith(value + "/")
        or value.split("/")[1] in ("static", "media")
    ):
        raise refuse(f"'{value}' overlaps the admin, static or media URLs; pick its own path, e.g. {example}")  # fmt: skip
    refuse_if_longer(value, MAX_URL_PATH)


def path_segments_problem(value: str) -> str | None:
    if any(segment in (".", "..") for segment in value.split("/")):
        return f"'{value}' has a '.' or '..' segment; give the path without them"
    return None


class Answers(BaseModel):
    """Every answer of copier.yml, in the order copier asks them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_name: str
    project_slug: str
    domain: str
    extra_hosts: list[str]
    proxy: Literal["nginx", "caddy", "load_balancer"]
    lb_trusted_cidrs: list[str]
    settings_layout: Literal["split", "single"]
    deployment: Literal["systemd", "compose", "kubernetes"]
    kubernetes_routing: Literal["gateway", "ingress-nginx", "traefik"] = "gateway"
    kubernetes_controller_namespace: str = "gateway-system"
    database: Literal["sqlite", "postgres"]
    django_version: Literal["5.2", "6.1"]
    hsts_seconds: int
    hsts_include_subdomains: bool
    hsts_preload: bool
    admin_path: str
    health_path: str
    retrofit: bool
    existing_settings_module: str
    app_dir: str
    http_port: int
    https_port: int
    tls_cert: str
    tls_key: str
    gunicorn_bind: str
    # CI and template updates: where CI runs decides .github/ or .gitlab-ci.yml.
    ci: Literal["github", "gitlab"] = "github"
    # Readiness beside liveness (operations).
    readiness_path: str = "/readyz"
    existing_dependencies: Literal["pyproject.toml", "requirements.txt", "none"] = "pyproject.toml"
    csp_report_only: bool = False
    security_contact: str = Field("", validate_default=True)

    # -- types: what copier casts loosely, parsed strictly ------------------------------

    @field_validator(
        "project_name", "project_slug", "domain", "admin_path", "health_path",
        "existing_settings_module", "app_dir", "tls_cert", "tls_key", "gunicorn_bind",
        "kubernetes_controller_namespace", "readiness_path", "security_contact",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _text(cls, value: Any) -> str:
        return as_text(value)

    @field_validator(
        "proxy", "settings_layout", "deployment", "kubernetes_routing", "database",
        "django_version", "ci", "existing_dependencies", mode="before",
    )  # fmt: skip
    @classmethod
    def _choice(cls, value: Any, info: ValidationInfo) -> str:
        choices = cls.model_fields[info.field_name].annotation.__args__
        text = str(value) if isinstance(value, (str, int, float)) else value
        if text not in choices:
            listed = ", ".join(choices)
            raise refuse(f"{value!r} is not one of the choices; answer one of {listed}")
        return text

    @field_validator(
        "hsts_include_subdomains", "hsts_preload", "retrofit", "csp_report_only", mode="before"
    )
    @classmethod
    def _bool(cls, value: Any) -> bool:
        return as_bool(value)

    @field_validator("hsts_seconds", "http_port", "https_port", mode="before")
    @classmethod
    def _int(cls, value: Any) -> int:
        return as_int(value)

    @field_validator("extra_hosts", "lb_trusted_cidrs", mode="before")
    @classmethod
    def _list(cls, value: Any, info: ValidationInfo) -> list[str]:
        if isinstance(value, dict):
            if info.field_name == "extra_hosts":
                raise refuse("give a list of hostnames, e.g. [www.example.com]")
            raise refuse("give a list of networks, e.g. [10.0.0.0/8]")
        return as_list(value)

    # -- rules, one field at a time, each seeing the answers asked before it ------------

    @field_validator("project_name")
    @classmethod
    def _project_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise refuse("give the project a name, e.g. My Site")
        if len(value) > 100:
            raise refuse("keep the name under 100 characters")
        return value

    @field_validator("project_slug")
    @classmethod
    def _project_slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise refuse(
                f"'{value}' is not a lowercase Python identifier; use letters, digits and "
                "underscores, starting with a letter, e.g. my_site"
            )
        if keyword.iskeyword(value) or keyword.issoftkeyword(value):
            raise refuse(f"'{value}' is a Python keyword; pick another name, e.g. {value}_site")
        if value in RESERVED_NAMES:
            raise refuse(
                f"'{value}' shadows a module the project imports; pick another name, "
                f"e.g. {value}_site"
            )
        if len(value) > MAX_SLUG:
            raise refuse(f"'{value}' is longer than {MAX_SLUG} characters; pick a shorter name")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if problem := host_problem(value):
            raise refuse(problem)
        return value.strip().lower().rstrip(".")

    @field_validator("extra_hosts")
    @classmethod
    def _extra_hosts(cls, value: list[str], info: ValidationInfo) -> list[str]:
        seen = [info.data["domain"]] if "domain" in info.data else []
        for host in value:
            if problem := host_problem(host):
                raise refuse(problem)
            normal = host.lower().rstrip(".")
            if normal in seen:
                raise refuse(f"'{host}' is listed twice (the domain counts); remove the repeat")
            seen.append(normal)
        return seen[1:] if "domain" in info.data else seen

    @field_validator("lb_trusted_cidrs")
    @classmethod
    def _lb_trusted_cidrs(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("proxy", "load_balancer") != "load_balancer":
            if "lb_trusted_cidrs" in given(info):
                raise refuse("applies only to proxy=load_balancer; drop it or change the proxy")
            return value
        if not value:
            raise refuse("give at least one network, e.g. [10.0.0.0/8]")
        for cidr in value:
            if problem := cidr_problem(cidr):
                raise refuse(problem)
            if ipaddress.ip_network(cidr).prefixlen == 0:
                raise refuse(
                    f"'{cidr}' trusts every client's X-Forwarded-Proto; give the networks the "
                    "load balancer connects from, e.g. 10.0.0.0/8"
                )
        return [str(ipaddress.ip_network(cidr)) for cidr in value]

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, value: str, info: ValidationInfo) -> str:
        if value == "kubernetes" and info.data.get("proxy", "load_balancer") != "load_balancer":
            raise refuse(
                "kubernetes puts the cluster's Gateway or Ingress controller in front of "
                "gunicorn, terminating TLS as a load balancer does; answer proxy=load_balancer "
                "(lb_trusted_cidrs: the controller pods' network)"
            )
        return value

    @field_validator("kubernetes_routing")
    @classmethod
    def _kubernetes_routing(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("deployment", "kubernetes") != "kubernetes":
            if "kubernetes_routing" in given(info):
                raise refuse("applies only to deployment=kubernetes; drop it")
        return value

    @field_validator("kubernetes_controller_namespace")
    @classmethod
    def _kubernetes_controller_namespace(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("deployment", "kubernetes") != "kubernetes":
            if "kubernetes_controller_namespace" in given(info):
                raise refuse("applies only to deployment=kubernetes; drop it")
            return value
        if not DNS_LABEL.fullmatch(value):
            raise refuse(
                f"'{value}' is not a Kubernetes namespace name; use at most 63 lowercase "
                "letters, digits and inner hyphens, e.g. gateway-system"
            )
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str, info: ValidationInfo) -> str:
        if value == "sqlite" and info.data.get("deployment") == "kubernetes":
            raise refuse(
                "kubernetes runs several pods, which cannot share one SQLite file; "
                "answer database=postgres"
            )
        return value

    @field_validator("hsts_seconds")
    @classmethod
    def _hsts_seconds(cls, value: int) -> int:
        if value < 0:
            raise refuse("give 0 (no HSTS) or a positive number of seconds, e.g. 31536000")
        if value > 10 * 365 * 86400:
            raise refuse("give at most ten years (315360000); browsers cap max-age anyway")
        return value

    @field_validator("hsts_include_subdomains")
    @classmethod
    def _hsts_include_subdomains(cls, value: bool, info: ValidationInfo) -> bool:
        if info.data.get("hsts_seconds") == 0 and "hsts_include_subdomains" in given(info):
            raise refuse("applies only when hsts_seconds is above 0; drop it or turn HSTS on")
        return value

    @field_validator("hsts_preload")
    @classmethod
    def _hsts_preload(cls, value: bool, info: ValidationInfo) -> bool:
        seconds = info.data.get("hsts_seconds")
        if seconds == 0:
            if value and "hsts_preload" in given(info):
                raise refuse("preloading needs HSTS; give hsts_seconds of at least 31536000")
            return value
        subdomains = info.data.get("hsts_include_subdomains")
        if value and seconds is not None and subdomains is not None:
            if not (subdomains and seconds >= 31536000):
                raise refuse(
                    "preloading needs hsts_include_subdomains true and hsts_seconds of "
                    "at least 31536000"
                )
        return value

    @field_validator("admin_path")
    @classmethod
    def _admin_path(cls, value: str) -> str:
        if not URL_PREFIX.fullmatch(value) or path_segments_problem(value):
            raise refuse(
                f"'{value}' must be a relative URL prefix ending in a slash, "
                "e.g. admin/ or staff/admin/"
            )
        if value.split("/")[0] in ("static", "media"):
            raise refuse(f"'{value}' overlaps the static or media URLs; pick e.g. admin/")
        refuse_if_longer(value, MAX_URL_PATH)
        return value

    @field_validator("health_path")
    @classmethod
    def _health_path(cls, value: str, info: ValidationInfo) -> str:
        check_probe_path(value, info.data.get("admin_path"), "/healthz")
        return value

    @field_validator("existing_settings_module")
    @classmethod
    def _existing_settings_module(cls, value: str, info: ValidationInfo) -> str:
        if not info.data.get("retrofit"):
            if value and "existing_settings_module" in given(info):
                raise refuse("applies only to retrofit=true; drop it")
            return value
        slug = info.data.get("project_slug", "")
        if not DOTTED_MODULE.fullmatch(value):
            raise refuse(
                f"'{value}' is not a dotted module path; give the one DJANGO_SETTINGS_MODULE "
                f"names, e.g. {slug or 'my_site'}.settings"
            )
        if slug and value.split(".")[0] != slug:
            raise refuse(
                f"'{value}' is not inside project_slug '{slug}'; answer project_slug with the "
                f"package that holds the settings ({value.split('.')[0]})"
            )
        if value == f"{slug}.settings_production":
            raise refuse(
                f"'{value}' is the overlay the retrofit adds; give the project's own settings, "
                f"e.g. {slug}.settings"
            )
        return value

    @field_validator("existing_dependencies")
    @classmethod
    def _existing_dependencies(cls, value: str, info: ValidationInfo) -> str:
        if not info.data.get("retrofit") and "existing_dependencies" in given(info):
            raise refuse("applies only to retrofit=true; drop it")
        return value

    @field_validator("app_dir")
    @classmethod
    def _app_dir(cls, value: str, info: ValidationInfo) -> str:
        if not is_file_path(value):
            slug = info.data.get("project_slug", "my_site")
            raise refuse(
                f"'{value}' must be an absolute path without spaces or a trailing slash, "
                f"e.g. /srv/{slug}"
            )
        refuse_if_longer(value, MAX_PATH)
        return value

    @field_validator("http_port")
    @classmethod
    def _http_port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise refuse("give a TCP port between 1 and 65535")
        return value

    @field_validator("https_port")
    @classmethod
    def _https_port(cls, value: int, info: ValidationInfo) -> int:
        if not 0 < value < 65536:
            raise refuse("give a TCP port between 1 and 65535")
        if value == info.data.get("http_port"):
            raise refuse(f"must differ from http_port ({value})")
        return value

    @field_validator("tls_cert")
    @classmethod
    def _tls_cert(cls, value: str, info: ValidationInfo) -> str:
        example = f"/etc/letsencrypt/live/{info.data.get('domain', 'example.com')}/fullchain.pem"
        if not value and info.data.get("proxy") == "nginx":
            raise refuse(f"nginx needs the absolute path of a certificate chain, e.g. {example}")
        if value and (not is_file_path(value)):
            raise refuse(f"'{value}' must be the absolute path of a certificate chain, e.g. {example}")  # fmt: skip
        refuse_if_longer(value, MAX_PATH)
        return value

    @field_validator("tls_key")
    @classmethod
    def _tls_key(cls, value: str, info: ValidationInfo) -> str:
        cert = info.data.get("tls_cert")
        if cert and (not is_file_path(value)):
            raise refuse(f"give the absolute path of the private key that goes with {cert}")
        if value and cert == "":
            raise refuse("set tls_cert too, or leave both empty for Caddy's automatic HTTPS")
        refuse_if_longer(value, MAX_PATH)
        return value

    @field_validator("gunicorn_bind")
    @classmethod
    def _gunicorn_bind(cls, value: str, info: ValidationInfo) -> str:
        example = "e.g. 127.0.0.1:8000"
        wildcard = re.fullmatch(r"(0\.0\.0\.0|\[::\]):([1-9][0-9]{3,4})", value)
        if info.data.get("deployment") == "kubernetes" and not (
            wildcard and 1024 <= int(wildcard[2]) < 65536
        ):
            raise refuse(
                f"'{value}': the Service and the kubelet's probes reach the pod on its own "
                "address, and the pod runs unprivileged; give 0.0.0.0:8000 (any port from 1024)"
            )
        if value.startswith("unix:"):
            path = value[5:]
            if not is_file_path(path):
                raise refuse(f"'{value}' must be unix:/absolute/path.sock or host:port, {example}")
            if len(path.encode()) > MAX_SOCKET_PATH:
                raise refuse(
                    f"the socket path is longer than {MAX_SOCKET_PATH} bytes, the most a unix "
                    "socket takes; give a shorter one"
                )
            if info.data.get("deployment") == "compose":
                raise refuse(
                    "compose runs gunicorn in its own container, out of reach of a unix "
                    "socket; give 0.0.0.0:8000"
                )
            if info.data.get("proxy") == "load_balancer":
                raise refuse(
                    "a load balancer on another host cannot reach a unix socket; give 0.0.0.0:8000"
                )
            return value
        host, colon, port = value.rpartition(":")
        if not colon or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
            raise refuse(f"'{value}' must be unix:/absolute/path.sock or host:port, {example}")
        try:
            address = ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
        except ValueError:
            if host != "localhost" and (host.startswith("[") or not HOSTNAME.fullmatch(host)):
                raise refuse(
                    f"'{value}' must be unix:/absolute/path.sock or host:port, {example}"
                ) from None
            loopback = host == "localhost"
        else:
            if address.version == 6 and not host.startswith("["):
                raise refuse(f"write an IPv6 address in brackets, e.g. [{address}]:{port}")
            loopback = address.is_loopback
        if loopback and info.data.get("deployment") == "compose":
            raise refuse(
                "the proxy container cannot reach gunicorn on loopback inside its own "
                "container; give 0.0.0.0:8000"
            )
        if loopback and info.data.get("proxy") == "load_balancer":
            raise refuse(
                "a load balancer on another host cannot reach loopback; give 0.0.0.0:8000 "
                "(gunicorn trusts forwarded headers only from lb_trusted_cidrs)"
            )
        return value

    @field_validator("readiness_path")
    @classmethod
    def _readiness_path(cls, value: str, info: ValidationInfo) -> str:
        if "health_path" not in info.data and "readiness_path" not in given(info):
            return value  # derived from a refused health_path, which is the one reported
        example = readiness_path_from(info.data.get("health_path", "/healthz"))
        if value == info.data.get("health_path"):
            raise refuse(
                f"'{value}' is the health path, which stays a cheap liveness answer; "
                f"give readiness its own path, e.g. {example}"
            )
        check_probe_path(value, info.data.get("admin_path"), example)
        return value

    @field_validator("security_contact")
    @classmethod
    def _security_contact(cls, value: str, info: ValidationInfo) -> str:
        domain = info.data.get("domain", "example.com")
        example = f"e.g. mailto:security@{domain} or https://{domain}/security/"
        value = value.strip()
        if not value:
            if "security_contact" in given(info):
                raise refuse(
                    f"give an address or page where people report vulnerabilities, {example}"
                )
            return f"mailto:security@{domain}"
        refuse_if_longer(value, MAX_PATH)
        found = MAILTO.fullmatch(value) or HTTPS_URL.fullmatch(value)
        if not found:
            if value.lower().startswith(("mailto:", "https://")):
                raise refuse(
                    f"'{value}' is not a plain address or URL; use letters, digits and . _ ~ - + "
                    f"in it, without a query, {example}"
                )
            raise refuse(f"'{value}' is not a mailto: or https: URI; {example}")
        if problem := host_problem(found["host"]):
            raise refuse(f"the host of '{value}': {problem}")
        if problem := path_segments_problem(value):
            raise refuse(problem)
        return value

    # -- values computed once from the answers, for every generated file ---------------

    @cached_property
    def hosts(self) -> list[str]:
        """Every public hostname, the domain first."""
        return [self.domain, *self.extra_hosts]

    @cached_property
    def https_port_suffix(self) -> str:
        """What a URL carries after the host: nothing on 443."""
        return "" if self.https_port == 443 else f":{self.https_port}"

    @cached_property
    def gunicorn_socket(self) -> str:
        """The unix socket's path, or "" when gunicorn listens on TCP."""
        return self.gunicorn_bind[5:] if self.gunicorn_bind.startswith("unix:") else ""

    @cached_property
    def gunicorn_host(self) -> str:
        return "" if self.gunicorn_socket else self.gunicorn_bind.rpartition(":")[0]

    @cached_property
    def gunicorn_port(self) -> str:
        return "" if self.gunicorn_socket else self.gunicorn_bind.rpartition(":")[2]

    @cached_property
    def kubernetes_name(self) -> str:
        """The project's name in Kubernetes objects and labels (DNS-1123: no underscore)."""
        return self.project_slug.replace("_", "-")

    @cached_property
    def staging_hosts(self) -> list[str]:
        """The public hostname of the staging overlay (Kubernetes)."""
        return [f"staging.{self.domain}"]

    @cached_property
    def settings_module(self) -> str:
        """What DJANGO_SETTINGS_MODULE names in production."""
        if self.retrofit:
            return f"{self.project_slug}.settings_production"
        suffix = ".production" if self.settings_layout == "split" else ""
        return f"{self.project_slug}.settings{suffix}"

    @cached_property
    def redirects_to_https_port(self) -> bool:
        """Whether the project's own HTTPS redirect (<slug>/https.py) replaces Django's.

        Plain HTTP reaches Django only behind a load balancer (nginx and Caddy redirect it
        themselves). Django's redirect keeps the port of the request's Host, the HTTP
        port: right only on ports 80 and 443.
        """
        return self.proxy == "load_balancer" and (self.http_port, self.https_port) != (80, 443)

    @cached_property
    def production_requirements(self) -> list[str]:
        """What the production layer imports, beside Django: pyproject.toml's dependencies,
        and what a retrofit asks the project to add to its own."""
        return [
            "dj-database-url>=2.3,<4",
            "gunicorn>=27,<28",
            # manage.py smoketest checks the live site over HTTPS with httpx, on httpcore's
            # connection pool, trusting certifi's CA bundle unless --cacert names another.
            "httpx>=0.27,<1",
            "httpcore>=1,<2",
            "certifi>=2024.2.2",
            # The deploy checks and preflight read deploy/nginx/ with nginx's own parser.
            "crossplane>=0.5.8,<0.6",
            "pydantic-settings>=2.6,<3",
            # Django 6.x sends the Content-Security-Policy itself; on 5.2, django-csp does,
            # the package Django's own support grew from.
            *(["django-csp>=4,<5"] if self.django_version == "5.2" else []),
            *(["psycopg[binary]>=3.2,<4"] if self.database == "postgres" else []),
            *([] if self.proxy_serves_static else ["whitenoise>=6.8,<7"]),
        ]

    @cached_property
    def proxy_serves_static(self) -> bool:
        return self.proxy in ("nginx", "caddy")

    @cached_property
    def proxy_name(self) -> str:
        """The proxy as prose names it."""
        return {"nginx": "nginx", "caddy": "Caddy", "load_balancer": "the load balancer"}[
            self.proxy
        ]

    @cached_property
    def proxy_user(self) -> str:
        """The user Debian's package runs the proxy as ("" for a load balancer)."""
        return {"nginx": "www-data", "caddy": "caddy"}.get(self.proxy, "")

    @cached_property
    def silenced_checks(self) -> list[str]:
        """Django's HSTS warnings that the answers make deliberate."""
        if self.hsts_seconds == 0:
            return ["security.W004"]
        silenced = [] if self.hsts_include_subdomains else ["security.W005"]
        return silenced + ([] if self.hsts_preload else ["security.W021"])

    def computed(self) -> dict[str, Any]:
        """The values every generated file uses beside the answers themselves."""
        names = (
            "hosts", "https_port_suffix", "gunicorn_socket", "gunicorn_host", "gunicorn_port",
            "settings_module", "redirects_to_https_port",
            "production_requirements", "proxy_serves_static", "proxy_name", "proxy_user",
            "silenced_checks", "kubernetes_name", "staging_hosts",
        )  # fmt: skip
        return {name: getattr(self, name) for name in names}


QUESTIONS = tuple(Answers.model_fields)


def given(info: ValidationInfo) -> frozenset[str]:
    """The questions the user answered explicitly (with -d, a data file, or at the prompt)."""
    return (info.context or {}).get("given", frozenset())


def problems_of(error: ValidationError, only: Iterable[str] | None = None) -> list[str]:
    """One line per refused answer, `question: what is wrong and how to fix it`."""
    wanted = None if only is None else set(only)
    lines = []
    for detail in error.errors():
        question = str(detail["loc"][0]) if detail["loc"] else "answers"
        if detail["type"] == "missing" or (wanted is not None and question not in wanted):
            continue
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "no such question in this template; see the README's list of questions"
        lines.append(f"{question}: {message}")
    return lines


def validate(answers: Mapping[str, Any], given: Iterable[str] = ()) -> Answers:
    """The validated model of a complete set of answers, or AnswersError with every problem."""
    known = {name: value for name, value in answers.items() if name in QUESTIONS}
    try:
        return Answers.model_validate(known, context={"given": frozenset(given)})
    except ValidationError as error:
        raise AnswersError(problems_of(error)) from None


def check_given(data: Mapping[str, Any]) -> list[str]:
    """Problems with answers given on the command line or in a data file, on their own.

    Run before copier casts them (its casts turn `flase` into True and end a bad number in
    a traceback). Only the given answers are judged: rules that need an answer that was
    not given wait for the whole set.
    """
    problems = [
        f"{name}: no such question in this template; see the README's list of questions"
        for name in data
        if name not in QUESTIONS and not name.startswith("_")
    ]
    known = {name: value for name, value in data.items() if name in QUESTIONS}
    try:
        Answers.model_validate(known, context={"given": frozenset(known)})
    except ValidationError as error:
        problems += problems_of(error, only=known)
    return problems


def problem_at_prompt(question: str, answers: Mapping[str, Any]) -> str:
    """What the prompt shows for the answer to `question`, given the answers so far."""
    known = {name: value for name, value in answers.items() if name in QUESTIONS}
    asked = QUESTIONS[: QUESTIONS.index(question) + 1]
    so_far = {name: known[name] for name in asked if name in known}
    try:
        Answers.model_validate(so_far, context={"given": frozenset({question})})
    except ValidationError as error:
        return "\n".join(problems_of(error, only=[question]))
    return ""
