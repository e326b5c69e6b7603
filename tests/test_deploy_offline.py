"""Every deploy file passes the real validator of the program that reads it.

For each answer combination that generates the file: nginx -t (Debian's nginx),
caddy validate (Debian's 2.6.2 and the current 2.x from PyPI), systemd-analyze
verify and security, check-jsonschema against the compose spec, and hadolint.
Projects are rendered with paths these validators can check here: app_dir is a
folder holding a stand-in gunicorn (systemd-analyze verify refuses a unit whose
ExecStart does not exist) and the certificates come from a trustme test CA.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from .combinations import parametrize_combinations
from .support.binaries import (
    CHECK_JSONSCHEMA,
    CURRENT_CADDY,
    CURRENT_NGINX,
    DEBIAN_CADDY,
    NGINX,
    venv_tool,
)
from .support.processes import run
from .support.validators import caddy_validate, nginx_test, systemd_verify, tool

CADDIES = {"caddy-2.6-debian": DEBIAN_CADDY, "caddy-current-pypi": CURRENT_CADDY}
MAX_SYSTEMD_EXPOSURE = 2.0


def combinations_where(predicate, *, slow: bool = True):
    """parametrize_combinations(), restricted to the combinations that generate a file.

    slow=False keeps only the default (covering) set, for a test whose subject
    varies along fewer axes than the combinations do.
    """
    mark = parametrize_combinations()
    argname, params = mark.args
    return pytest.mark.parametrize(
        argname, [p for p in params if predicate(p.values[0]) and (slow or not p.marks)]
    )


with_nginx = combinations_where(lambda a: a["proxy"] == "nginx")
with_caddy = combinations_where(lambda a: a["proxy"] == "caddy")
with_systemd = combinations_where(lambda a: a["deployment"] == "systemd")
with_compose = combinations_where(lambda a: a["deployment"] == "compose")


@pytest.fixture
def project_for(rendered, validation_paths):
    """Render these answers with the validation paths (and optionally without TLS files)."""

    def get(answers: dict, *, tls_files: bool = True) -> Path:
        paths = dict(validation_paths)
        if not tls_files:
            del paths["tls_cert"], paths["tls_key"]
        return rendered(**answers, **paths)

    return get


# nginx ------------------------------------------------------------------------


@with_nginx
def test_nginx_accepts_the_rendered_site_config(project_for, project_python, answers, tmp_path):
    """Without a word from the nginx that runs it: Debian 12's 1.22 under systemd, a current
    nginx (the compose image's series) under compose."""
    project = project_for(answers)
    python = project_python(answers.get("django_version", "5.2"))
    compose = answers["deployment"] == "compose"
    nginx = CURRENT_NGINX if compose else NGINX
    site = project / "deploy" / "nginx" / "my_site.conf"
    result = nginx_test(project, python, site, tmp_path, nginx=nginx)
    # nginx resolves upstream names when it loads a config, and `web` exists only on
    # the compose network: that one name, and nothing else, is tested as an address.
    assert result["notes"] == (
        ["upstream web:8000 does not resolve here; tested as 127.0.0.1:8000"] if compose else []
    ), "the compose upstream should be the web service"
    assert result["returncode"] == 0, result["stderr"]
    assert result["stderr"] == "", "nginx -t warned:\n" + result["stderr"]


def test_nginx_test_fails_on_a_broken_site_config(rendered, project_python, tmp_path):
    """The check above can fail: nginx -t rejects an unknown directive."""
    broken = tmp_path / "broken.conf"
    broken.write_text("server { listen 8080; not_a_directive on; }\n")
    result = nginx_test(rendered(), project_python("5.2"), broken, tmp_path)
    assert result["returncode"] != 0
    assert "not_a_directive" in result["stderr"]


def test_nginx_accepts_the_site_with_its_static_location_in_an_included_file(
    rendered, project_python, validation_paths, tmp_path
):
    """crossplane follows the include as nginx does: the certificates inside it are found."""
    project = rendered(**validation_paths)
    text = (project / "deploy" / "nginx" / "my_site.conf").read_text()
    start = text.index("    ssl_certificate ")
    moved = text[start : text.index("\n\n", start) + 1]
    included = tmp_path / "tls.conf"
    included.write_text(moved.replace(validation_paths["tls_cert"], "/missing/fullchain.pem"))
    site = tmp_path / "my_site.conf"
    site.write_text(text.replace(moved, f"    include {included};\n"))
    result = nginx_test(project, project_python("5.2"), site, tmp_path)
    assert result["returncode"] == 0, result["stderr"]
    assert "a throwaway certificate stood in for /missing/fullchain.pem" in result["notes"]


# Caddy ------------------------------------------------------------------------


# What the Caddyfile asks for on purpose (its own redirects for the known hosts only,
# and plain-HTTP sites that redirect or abort), and what the test certificates lack:
# trustme's certificates name no OCSP responder, so Caddy cannot staple one.
DELIBERATE_CADDY_WARNINGS = (
    "automatic HTTP->HTTPS redirects are disabled",
    "server is listening only on the HTTP port",
    "no OCSP server specified in certificate",
)


def caddy_warnings(output: str) -> list[str]:
    """Warnings other than the deliberate ones (e.g. a Caddyfile `caddy fmt` would change)."""
    return [
        line
        for line in output.splitlines()
        if '"level":"warn"' in line and not any(w in line for w in DELIBERATE_CADDY_WARNINGS)
    ]


@with_caddy
@pytest.mark.parametrize("caddy", list(CADDIES), ids=list(CADDIES))
@pytest.mark.parametrize("tls", ["automatic-https", "given-certificate"])
def test_caddy_accepts_the_rendered_caddyfile(project_for, answers, caddy, tls, tmp_path):
    project = project_for(answers, tls_files=tls == "given-certificate")
    caddyfile = project / "deploy" / "caddy" / "Caddyfile"
    result = caddy_validate(CADDIES[caddy], caddyfile, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Valid configuration" in output
    assert caddy_warnings(output) == [], output


def test_caddy_validate_fails_on_a_broken_caddyfile(tmp_path):
    """The check above can fail: both Caddies reject an unknown directive."""
    broken = tmp_path / "Caddyfile"
    broken.write_text("example.com {\n\tnot_a_directive\n}\n")
    for caddy in CADDIES.values():
        assert caddy_validate(caddy, broken, tmp_path).returncode != 0


# systemd ----------------------------------------------------------------------

EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) ")


def systemd_units(project: Path) -> list[str]:
    units = sorted(p.name for p in (project / "deploy" / "systemd").iterdir())
    assert "my_site.service" in units
    return units


def exposure(unit_dir: Path, tmp_path: Path) -> float:
    result = tool(
        ["systemd-analyze", "security", "--offline=true", "--threshold=100", "my_site.service"],
        unit_dir,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = EXPOSURE.search(result.stdout)
    assert match, result.stdout
    return float(match.group(1))


@with_systemd
def test_systemd_verify_accepts_the_units_without_a_word(project_for, answers, tmp_path):
    project = project_for(answers)
    units = systemd_units(project)
    # The default gunicorn_bind is a unix socket exactly when a proxy runs on the host.
    assert ("my_site.socket" in units) == (answers["proxy"] != "load_balancer")
    # systemd-analyze verify exits 0 on unknown or misspelled keys: any output fails.
    result = systemd_verify(project / "deploy" / "systemd", units, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_systemd_verify_reports_an_unknown_key(project_for, tmp_path):
    """The check above can fail: a misspelled key is reported, although verify exits 0."""
    project = project_for({"proxy": "nginx", "deployment": "systemd"})
    shutil.copytree(project / "deploy" / "systemd", tmp_path / "units")
    service = tmp_path / "units" / "my_site.service"
    service.write_text(service.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    result = systemd_verify(tmp_path / "units", ["my_site.service", "my_site.socket"], tmp_path)
    assert "NoNewPrivilege" in result.stderr


@pytest.mark.parametrize(
    ("answers", "allowed"),
    [
        ({"proxy": "load_balancer", "lb_trusted_cidrs": ["10.0.0.0/8", "fd00::/8"]},
         "localhost 10.0.0.0/8 fd00::/8"),
        ({"proxy": "nginx", "gunicorn_bind": "127.0.0.1:8000"}, "localhost"),
        ({"proxy": "caddy"}, None),
    ],
    ids=["load_balancer", "nginx-on-a-tcp-port", "caddy-on-a-unix-socket"],
)  # fmt: skip
def test_gunicorn_on_a_network_address_exchanges_packets_only_with_its_clients(
    project_for, answers, allowed, tmp_path
):
    """IPAddressAllow/IPAddressDeny, where gunicorn listens on an address and not a socket.

    systemd applies them only as PID 1, which this machine lacks: the unit passes verify
    with them, and they say exactly who may reach gunicorn.
    """
    project = project_for({**answers, "deployment": "systemd"})
    unit_dir = project / "deploy" / "systemd"
    lines = (unit_dir / "my_site.service").read_text().splitlines()
    address_lines = [line for line in lines if line.startswith("IPAddress")]
    if allowed is None:
        assert address_lines == [], "a unix socket needs no address filter"
    else:
        assert address_lines == [f"IPAddressAllow={allowed}", "IPAddressDeny=any"]
    result = systemd_verify(unit_dir, systemd_units(project), tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@with_systemd
def test_systemd_security_scores_the_service_at_most_2(project_for, answers, tmp_path):
    score = exposure(project_for(answers) / "deploy" / "systemd", tmp_path)
    print(f"systemd-analyze security: {score}")
    assert score <= MAX_SYSTEMD_EXPOSURE


def test_systemd_security_scores_an_unhardened_service_above_the_limit(tmp_path):
    """The check above can fail: the same service without its hardening scores high."""
    unit = tmp_path / "my_site.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nUser=nobody\n")
    assert exposure(tmp_path, tmp_path) > MAX_SYSTEMD_EXPOSURE


# compose ----------------------------------------------------------------------


@with_compose
def test_compose_file_matches_the_compose_spec(project_for, answers, tmp_path):
    project = project_for(answers)
    result = tool(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        project,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@with_compose
def test_compose_proxy_gets_its_config_and_the_static_files_where_the_config_says(
    project_for, answers
):
    project = project_for(answers)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    dockerfile = (project / "Dockerfile").read_text()
    services = compose["services"]
    proxy = answers["proxy"]
    if proxy == "load_balancer":
        assert set(services) - {"db"} == {"web"}
        assert services["web"]["ports"] == ["8000:8000"]
        return
    service = services[proxy]
    assert service["build"]["target"] == proxy
    mounted = {v.split(":")[0]: v.split(":")[1] for v in service["volumes"] if v.startswith("./")}
    config = "./deploy/nginx/my_site.conf" if proxy == "nginx" else "./deploy/caddy/Caddyfile"
    assert config in mounted and (project / config).is_file()
    rendered_config = (project / config).read_text()
    # The static files built into the proxy image sit where the proxy config looks.
    copied = re.search(r"^COPY --from=app (\S+) (\S+)$", dockerfile, re.MULTILINE)
    assert copied and copied.group(1) == copied.group(2)
    assert copied.group(1).endswith("/staticfiles")
    assert copied.group(1) in rendered_config
    # Uploads: the same volume, at the path the config serves them from.
    media = next(v for v in service["volumes"] if v.startswith("media:"))
    assert media.split(":")[1] in rendered_config
    assert f"media:{media.split(':')[1]}" in services["web"]["volumes"]


@with_compose
def test_compose_publishes_gunicorn_only_for_a_load_balancer(project_for, answers):
    """Behind nginx or Caddy, gunicorn is reached on the compose network only, by the proxy."""
    services = yaml.safe_load((project_for(answers) / "compose.yaml").read_text())["services"]
    published = {name: service.get("ports", []) for name, service in services.items()}
    if answers["proxy"] == "load_balancer":
        assert published.pop("web") == ["8000:8000"]
    else:
        assert published.pop("web") == []
        assert not [ports for ports in published.values() if any("8000" in p for p in ports)]
    assert not published.get("db"), "the database is never published"


@with_compose
def test_compose_database_is_postgres_with_a_healthcheck_when_chosen(project_for, answers):
    compose = yaml.safe_load((project_for(answers) / "compose.yaml").read_text())
    services = compose["services"]
    if answers["database"] == "sqlite":
        assert "db" not in services
        assert services["web"]["environment"]["DATABASE_URL"].startswith("sqlite:////")
        return
    db = services["db"]
    # POSTGRES_IMAGE, when set, swaps in an image with the same contract (the tests' offline copy).
    assert db["image"] == "${POSTGRES_IMAGE:-postgres:17}"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert services["web"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert "pgdata" in compose["volumes"]
    # .env's DATABASE_URL names the db service: the two must agree.
    env_file = (project_for(answers) / ".env").read_text()
    assert re.search(r"^DATABASE_URL=postgres://[^@]+@db:5432/", env_file, re.MULTILINE)


# Dockerfile -------------------------------------------------------------------


@with_compose
def test_hadolint_accepts_the_dockerfile(project_for, answers, tmp_path):
    project = project_for(answers)
    result = tool([venv_tool("hadolint"), "Dockerfile"], project, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


# collectstatic depends on the settings layout, the database answer (production
# requires DATABASE_URL for PostgreSQL), the proxy (storage backend) and Django's
# version; the covering set has each of them and takes a fraction of the time.
@combinations_where(lambda a: a["deployment"] == "compose", slow=False)
def test_image_build_collects_static_files_without_any_secret(
    rendered, project_python, answers, tmp_path
):
    """The Dockerfile's collectstatic step, run as written, in a build context without .env."""
    project = tmp_path / "context"
    shutil.copytree(rendered(**answers), project)
    dockerignore = (project / ".dockerignore").read_text().splitlines()
    assert ".env" in dockerignore
    (project / ".env").unlink()
    dockerfile = (project / "Dockerfile").read_text()
    assert not re.search(r"^(ENV|ARG)\b.*(SECRET|PASSWORD)", dockerfile, re.MULTILINE)
    step = re.search(
        r"^RUN (DJANGO_SECRET_KEY=.*?collectstatic --noinput)$", dockerfile, re.S | re.M
    )
    assert step, "the Dockerfile should run collectstatic with a throwaway key"
    command = step.group(1).replace("\\\n", " ")
    python = project_python(answers.get("django_version", "5.2"))
    env_line = re.search(r"^\s+DJANGO_SETTINGS_MODULE=(\S+)$", dockerfile, re.MULTILINE)
    assert env_line
    result = run(
        ["sh", "-c", command],
        cwd=project,
        env={
            "PATH": f"{python.parent}:{os.environ['PATH']}",
            "DJANGO_SETTINGS_MODULE": env_line.group(1),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = project / "staticfiles" / "staticfiles.json"
    assert manifest.is_file(), "production's manifest storage should have collected hashed files"
    assert re.search(r"admin/css/base\.[0-9a-f]{12}\.css", manifest.read_text())
