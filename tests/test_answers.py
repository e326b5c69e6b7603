"""The answers model (extensions/answers.py) on its own: fast, no copier in between.

tests/test_questions.py proves the copier wiring (prompt, -d, --data-file, update); these
prove the rules themselves, one case each.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from extensions import answers
from extensions.answers import Answers, AnswersError, check_given, problem_at_prompt, validate

from .support.paths import ROOT

# What copier answers with --defaults (test_defaults_are_copiers_defaults keeps this true).
DEFAULTS = {
    "project_name": "My Site",
    "project_slug": "my_site",
    "domain": "example.com",
    "extra_hosts": ["www.example.com"],
    "proxy": "nginx",
    "lb_trusted_cidrs": ["10.0.0.0/8"],
    "settings_layout": "split",
    "deployment": "systemd",
    "kubernetes_routing": "gateway",
    "kubernetes_controller_namespace": "gateway-system",
    "database": "sqlite",
    "django_version": "5.2",
    "hsts_seconds": 63072000,
    "hsts_include_subdomains": True,
    "hsts_preload": False,
    "admin_path": "admin/",
    "health_path": "/healthz",
    "retrofit": False,
    "existing_settings_module": "my_site.settings",
    "app_dir": "/srv/my_site",
    "http_port": 80,
    "https_port": 443,
    "tls_cert": "/etc/letsencrypt/live/example.com/fullchain.pem",
    "tls_key": "/etc/letsencrypt/live/example.com/privkey.pem",
    "gunicorn_bind": "unix:/run/my_site/gunicorn.sock",
    "ci": "github",
    "readiness_path": "/readyz",
    "existing_dependencies": "pyproject.toml",
    "csp_report_only": False,
    "security_contact": "mailto:security@example.com",
}


def problems(**changes) -> list[str]:
    """The problems of the default answers with `changes`, each change counted as given."""
    try:
        validate({**DEFAULTS, **changes}, given=changes)
    except AnswersError as error:
        return error.problems
    return []


def model(**changes) -> Answers:
    return validate({**DEFAULTS, **changes}, given=changes)


def copier_questions() -> dict:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    return {name: spec for name, spec in config.items() if not name.startswith("_")}


def test_the_defaults_are_accepted():
    assert problems() == []


def test_defaults_are_copiers_defaults(rendered):
    recorded = yaml.safe_load((rendered() / ".copier-answers.yml").read_text())
    # `when` is false by default
    hidden = {
        "lb_trusted_cidrs", "existing_settings_module", "kubernetes_routing",
        "kubernetes_controller_namespace", "existing_dependencies",
    }  # fmt: skip
    assert {k: v for k, v in recorded.items() if not k.startswith("_")} == {
        k: v for k, v in DEFAULTS.items() if k not in hidden
    }


def test_the_model_asks_what_copier_asks_in_the_same_order():
    """Rules that span answers sit on the later field: the order must be copier's."""
    asked = [name for name in copier_questions() if name in answers.QUESTIONS]
    assert asked == list(answers.QUESTIONS)
    checkpoints = [name for name in copier_questions() if name not in answers.QUESTIONS]
    assert checkpoints == ["given_answers_checked", "answers_checked"]


def test_copier_types_agree_with_the_model():
    from extensions.context import YAML_QUESTIONS

    types = {name: spec.get("type") for name, spec in copier_questions().items()}
    fields = Answers.model_fields
    assert {n for n, t in types.items() if t == "yaml"} == set(YAML_QUESTIONS)
    assert {n for n, t in types.items() if t == "int"} == {
        n for n, f in fields.items() if f.annotation is int
    }
    assert {n for n, t in types.items() if t == "bool" and n in fields} == {
        n for n, f in fields.items() if f.annotation is bool
    }
    for name, spec in copier_questions().items():
        if "choices" in spec:
            assert set(spec["choices"].values()) == set(fields[name].annotation.__args__)


def test_every_typed_in_answer_goes_through_the_models_validator():
    """Choices and yes/no questions cannot be answered wrongly at the prompt; the rest can."""
    for name, spec in copier_questions().items():
        if name in answers.QUESTIONS and "choices" not in spec and spec["type"] != "bool":
            assert spec.get("validator") == f"{{{{ problem('{name}') }}}}", name


def test_values_computed_once_from_the_answers():
    computed = model().computed()
    assert computed["hosts"] == ["example.com", "www.example.com"]
    assert computed["https_port_suffix"] == ""
    assert computed["gunicorn_socket"] == "/run/my_site/gunicorn.sock"
    assert (computed["gunicorn_host"], computed["gunicorn_port"]) == ("", "")
    assert computed["settings_module"] == "my_site.settings.production"
    assert computed["proxy_serves_static"] is True
    assert computed["proxy_name"] == "nginx"
    assert computed["proxy_user"] == "www-data"
    assert computed["silenced_checks"] == ["security.W021"]


@pytest.mark.parametrize(
    ("changes", "name", "value"),
    [
        ({"https_port": 8443}, "https_port_suffix", ":8443"),
        ({"gunicorn_bind": "[::1]:8000"}, "gunicorn_host", "[::1]"),
        ({"gunicorn_bind": "127.0.0.1:9000"}, "gunicorn_port", "9000"),
        ({"settings_layout": "single"}, "settings_module", "my_site.settings"),
        ({"retrofit": True}, "settings_module", "my_site.settings_production"),
        ({"proxy": "load_balancer", "gunicorn_bind": "0.0.0.0:8000"}, "proxy_serves_static", False),
        ({"proxy": "caddy", "tls_cert": "", "tls_key": ""}, "proxy_name", "Caddy"),
        ({"hsts_seconds": 0}, "silenced_checks", ["security.W004"]),
        ({"hsts_include_subdomains": False}, "silenced_checks", ["security.W005", "security.W021"]),
        ({"hsts_preload": True}, "silenced_checks", []),
        (
            {"proxy": "load_balancer", "gunicorn_bind": "0.0.0.0:8000", "https_port": 8443},
            "redirects_to_https_port",
            True,
        ),
        ({"https_port": 8443}, "redirects_to_https_port", False),
    ],
)
def test_a_computed_value_follows_its_answers(changes, name, value):
    assert model(**changes).computed()[name] == value


@pytest.mark.parametrize(
    ("changes", "normalised"),
    [
        ({"domain": " Shop.Example.ORG. "}, {"domain": "shop.example.org"}),
        ({"extra_hosts": "api.example.com, static.example.com"}, {"extra_hosts": ["api.example.com", "static.example.com"]}),
        ({"extra_hosts": None}, {"extra_hosts": []}),
        ({"proxy": "load_balancer", "gunicorn_bind": "0.0.0.0:8000", "lb_trusted_cidrs": "10.1.0.0/16"}, {"lb_trusted_cidrs": ["10.1.0.0/16"]}),
        ({"proxy": "load_balancer", "gunicorn_bind": "0.0.0.0:8000", "lb_trusted_cidrs": ["2001:DB8::/32"]}, {"lb_trusted_cidrs": ["2001:db8::/32"]}),
        ({"http_port": "8080", "hsts_preload": "yes", "retrofit": "off"}, {"http_port": 8080, "hsts_preload": True, "retrofit": False}),
    ],
)  # fmt: skip
def test_answers_are_normalised_once(changes, normalised):
    dumped = model(**changes).model_dump()
    assert {name: dumped[name] for name in normalised} == normalised


K8S = {
    "deployment": "kubernetes", "proxy": "load_balancer", "database": "postgres",
    "gunicorn_bind": "0.0.0.0:8000",
}  # fmt: skip

REFUSED = [
    ({"project_name": " "}, "project_name: give the project a name"),
    ({"project_name": "My\nSite"}, "project_name: 'My\\nSite' contains a control character"),
    ({"project_name": "x" * 101}, "project_name: keep the name under 100 characters"),
    ({"project_slug": "My-Site"}, "project_slug: 'My-Site' is not a lowercase Python identifier"),
    ({"project_slug": "_private"}, "project_slug: '_private' is not a lowercase Python identifier"),
    ({"project_slug": "class"}, "project_slug: 'class' is a Python keyword"),
    ({"project_slug": "match"}, "project_slug: 'match' is a Python keyword"),
    ({"project_slug": "django"}, "project_slug: 'django' shadows a module the project imports"),
    ({"project_slug": "tomllib"}, "project_slug: 'tomllib' shadows"),
    ({"project_slug": "annotated_types"}, "project_slug: 'annotated_types' shadows"),
    ({"project_slug": "shipshape"}, "project_slug: 'shipshape' shadows"),
    ({"project_slug": "a" * 41}, "project_slug: '" + "a" * 41 + "' is longer than 40 characters"),
    ({"domain": "https://shop.example.org"}, "domain: 'https://shop.example.org' has a scheme; answer with the bare hostname 'shop.example.org'"),
    ({"domain": "shop.example.org/store"}, "domain: 'shop.example.org/store' has a path"),
    ({"domain": "shop.example.org:8443"}, "domain: 'shop.example.org:8443' has a port"),
    ({"domain": "*.example.org"}, "domain: '*.example.org' is a wildcard"),
    ({"domain": "203.0.113.7"}, "domain: '203.0.113.7' is an IP address"),
    ({"domain": "203.0.113.007"}, "domain: '203.0.113.007' is an IP address"),
    ({"domain": "[2001:db8::1]"}, "domain: '[2001:db8::1]' is an IP address"),
    ({"domain": "localhost"}, "domain: 'localhost' is not a public hostname"),
    ({"domain": "shop.localhost"}, "domain: 'shop.localhost' is a local name"),
    ({"domain": "printer.local"}, "domain: 'printer.local' is a local name"),
    ({"domain": "a.home.arpa"}, "domain: 'a.home.arpa' is a local name"),
    ({"domain": ".example.org"}, "domain: '.example.org' starts with a dot"),
    ({"domain": "bad_host.example.org"}, "domain: 'bad_host.example.org' is not a valid hostname"),
    ({"domain": ("a" * 63 + ".") * 4 + "com"}, "is not a valid hostname"),
    ({"extra_hosts": ["www.example.com", "WWW.example.com"]}, "extra_hosts: 'WWW.example.com' is listed twice"),
    ({"extra_hosts": ["example.com"]}, "extra_hosts: 'example.com' is listed twice (the domain counts)"),
    ({"extra_hosts": {"a": "b"}}, "extra_hosts: give a list of hostnames"),
    ({"extra_hosts": [["nested"]]}, "extra_hosts: ['nested'] is not text"),
    ({"proxy": "apache"}, "proxy: 'apache' is not one of the choices; answer one of nginx, caddy, load_balancer"),
    ({"lb_trusted_cidrs": ["10.0.0.0/8"]}, "lb_trusted_cidrs: applies only to proxy=load_balancer"),
    ({"django_version": 5.1}, "django_version: 5.1 is not one of the choices"),
    ({"hsts_seconds": -1}, "hsts_seconds: give 0 (no HSTS) or a positive number"),
    ({"hsts_seconds": True}, "hsts_seconds: True is not a whole number"),
    ({"hsts_seconds": "1e6"}, "hsts_seconds: '1e6' is not a whole number"),
    ({"hsts_seconds": 0, "hsts_preload": True}, "hsts_preload: preloading needs HSTS"),
    ({"hsts_include_subdomains": False, "hsts_preload": True}, "hsts_preload: preloading needs hsts_include_subdomains true"),
    ({"hsts_seconds": 86400, "hsts_preload": True}, "hsts_preload: preloading needs"),
    ({"hsts_preload": "flase"}, "hsts_preload: 'flase' is not true or false"),
    ({"csp_report_only": "flase"}, "csp_report_only: 'flase' is not true or false"),
    ({"security_contact": ""}, "security_contact: give an address or page where people report"),
    ({"security_contact": "security@example.com"}, "security_contact: 'security@example.com' is not a mailto: or https: URI"),
    ({"security_contact": "http://example.com/security"}, "is not a mailto: or https: URI"),
    ({"security_contact": "javascript:alert(1)"}, "is not a mailto: or https: URI"),
    ({"security_contact": "mailto:security@localhost"}, "security_contact: the host of 'mailto:security@localhost': 'localhost' is not a public hostname"),
    ({"security_contact": "https://example.com/report?to=me"}, "is not a plain address or URL"),
    ({"security_contact": "https://example.com/a/../b"}, "security_contact: 'https://example.com/a/../b' has a '.' or '..' segment"),
    ({"admin_path": "/admin"}, "admin_path: '/admin' must be a relative URL prefix ending in a slash"),
    ({"admin_path": "../admin/"}, "admin_path: '../admin/' must be a relative URL prefix"),
    ({"admin_path": "a/./b/"}, "admin_path: 'a/./b/' must be a relative URL prefix"),
    ({"admin_path": "admin;}/"}, "admin_path: 'admin;}/' must be a relative URL prefix"),
    ({"admin_path": "static/"}, "admin_path: 'static/' overlaps the static or media URLs"),
    ({"admin_path": "media/admin/"}, "admin_path: 'media/admin/' overlaps"),
    ({"health_path": "healthz"}, "health_path: 'healthz' must be an absolute path"),
    ({"health_path": "/ping/"}, "health_path: '/ping/' must be an absolute path without a trailing slash"),
    ({"health_path": "/./x"}, "health_path: '/./x' must be an absolute path"),
    ({"health_path": "/x y"}, "health_path: '/x y' must be an absolute path"),
    ({"health_path": "/x\n  respond 200"}, "health_path: '/x\\n  respond 200' contains a control character"),
    ({"health_path": "/admin"}, "health_path: '/admin' overlaps the admin, static or media URLs"),
    ({"health_path": "/admin/ping"}, "health_path: '/admin/ping' overlaps"),
    ({"health_path": "/static/ping"}, "health_path: '/static/ping' overlaps"),
    ({"existing_settings_module": "my_site.settings"}, "existing_settings_module: applies only to retrofit=true"),
    ({"retrofit": True, "existing_settings_module": "settings"}, "existing_settings_module: 'settings' is not a dotted module path"),
    ({"retrofit": True, "existing_settings_module": "shop.settings"}, "existing_settings_module: 'shop.settings' is not inside project_slug 'my_site'"),
    ({"retrofit": True, "existing_settings_module": "my_site.settings_production"}, "existing_settings_module: 'my_site.settings_production' is the overlay"),
    ({"existing_dependencies": "requirements.txt"}, "existing_dependencies: applies only to retrofit=true"),
    ({"retrofit": True, "existing_dependencies": "requirements"}, "existing_dependencies: 'requirements' is not one of the choices; answer one of pyproject.toml, requirements.txt, none"),
    ({"app_dir": "srv/site"}, "app_dir: 'srv/site' must be an absolute path"),
    ({"app_dir": "/srv/my site"}, "app_dir: '/srv/my site' must be an absolute path without spaces"),
    ({"app_dir": "/srv/../etc"}, "app_dir: '/srv/../etc' must be an absolute path"),
    ({"app_dir": "/srv/x;rm"}, "app_dir: '/srv/x;rm' must be an absolute path"),
    ({"http_port": 0}, "http_port: give a TCP port between 1 and 65535"),
    ({"http_port": 65536}, "http_port: give a TCP port between 1 and 65535"),
    ({"http_port": "eighty"}, "http_port: 'eighty' is not a whole number"),
    ({"https_port": 80}, "https_port: must differ from http_port (80)"),
    ({"tls_cert": "fullchain.pem"}, "tls_cert: 'fullchain.pem' must be the absolute path of a certificate chain"),
    ({"tls_cert": ""}, "tls_cert: nginx needs the absolute path of a certificate chain"),
    ({"tls_key": "privkey.pem"}, "tls_key: give the absolute path of the private key"),
    ({"proxy": "caddy", "tls_cert": "", "tls_key": "/k.pem"}, "tls_key: set tls_cert too"),
    ({"gunicorn_bind": "localhost"}, "gunicorn_bind: 'localhost' must be unix:/absolute/path.sock or host:port"),
    ({"gunicorn_bind": "127.0.0.1:70000"}, "gunicorn_bind: '127.0.0.1:70000' must be unix:/absolute/path.sock or host:port"),
    ({"gunicorn_bind": "::1:8000"}, "gunicorn_bind: write an IPv6 address in brackets, e.g. [::1]:8000"),
    ({"gunicorn_bind": "unix:relative.sock"}, "gunicorn_bind: 'unix:relative.sock' must be unix:/absolute/path.sock"),
    ({"gunicorn_bind": "unix:/run/" + "s" * 120 + ".sock"}, "gunicorn_bind: the socket path is longer than 107 bytes"),
    ({"deployment": "compose"}, "gunicorn_bind: compose runs gunicorn in its own container"),
    ({"deployment": "compose", "gunicorn_bind": "127.0.0.1:8000"}, "gunicorn_bind: the proxy container cannot reach gunicorn on loopback"),
    ({"proxy": "load_balancer"}, "gunicorn_bind: a load balancer on another host cannot reach a unix socket"),
    ({"proxy": "load_balancer", "gunicorn_bind": "127.0.0.1:8000"}, "gunicorn_bind: a load balancer on another host cannot reach loopback"),
    # Kubernetes: the cluster's controller is the load balancer, PostgreSQL the database.
    ({"deployment": "kubernetes", "database": "postgres", "gunicorn_bind": "0.0.0.0:8000"}, "deployment: kubernetes puts the cluster's Gateway or Ingress controller in front of gunicorn, terminating TLS as a load balancer does; answer proxy=load_balancer"),
    ({**K8S, "database": "sqlite"}, "database: kubernetes runs several pods, which cannot share one SQLite file; answer database=postgres"),
    ({**K8S, "gunicorn_bind": "unix:/run/my_site/gunicorn.sock"}, "gunicorn_bind: 'unix:/run/my_site/gunicorn.sock': the Service and the kubelet's probes reach the pod on its own address"),
    ({**K8S, "gunicorn_bind": "127.0.0.1:8000"}, "gunicorn_bind: '127.0.0.1:8000': the Service and the kubelet's probes"),
    ({**K8S, "gunicorn_bind": "10.1.2.3:8000"}, "gunicorn_bind: '10.1.2.3:8000': the Service"),
    ({**K8S, "gunicorn_bind": "0.0.0.0:80"}, "gunicorn_bind: '0.0.0.0:80': the Service and the kubelet's probes reach the pod on its own address, and the pod runs unprivileged; give 0.0.0.0:8000 (any port from 1024)"),
    ({**K8S, "gunicorn_bind": "0.0.0.0:1023"}, "gunicorn_bind: '0.0.0.0:1023'"),
    ({**K8S, "kubernetes_routing": "istio"}, "kubernetes_routing: 'istio' is not one of the choices; answer one of gateway, ingress-nginx, traefik"),
    ({**K8S, "kubernetes_controller_namespace": "Ingress_NGINX"}, "kubernetes_controller_namespace: 'Ingress_NGINX' is not a Kubernetes namespace name"),
    ({**K8S, "kubernetes_controller_namespace": "a" * 64}, "kubernetes_controller_namespace: '" + "a" * 64 + "' is not a Kubernetes namespace name"),
    ({"kubernetes_routing": "traefik"}, "kubernetes_routing: applies only to deployment=kubernetes; drop it"),
    ({"kubernetes_controller_namespace": "traefik"}, "kubernetes_controller_namespace: applies only to deployment=kubernetes; drop it"),
    # Readiness beside liveness.
    ({"readiness_path": "/healthz"}, "readiness_path: '/healthz' is the health path, which stays a cheap liveness answer; give readiness its own path, e.g. /readyz"),
    ({"health_path": "/-/health", "readiness_path": "/-/health"}, "readiness_path: '/-/health' is the health path, which stays a cheap liveness answer; give readiness its own path, e.g. /-/ready"),
    ({"readiness_path": "readyz"}, "readiness_path: 'readyz' must be an absolute path without a trailing slash, e.g. /readyz"),
    ({"readiness_path": "/readyz/"}, "readiness_path: '/readyz/' must be an absolute path"),
    ({"readiness_path": "/../readyz"}, "readiness_path: '/../readyz' must be an absolute path"),
    ({"readiness_path": "/ready z"}, "readiness_path: '/ready z' must be an absolute path"),
    ({"readiness_path": ""}, "readiness_path: '' must be an absolute path"),
    ({"readiness_path": True}, "readiness_path: True is not text"),
    ({"readiness_path": ["/readyz"]}, "readiness_path: ['/readyz'] is not text"),
    ({"readiness_path": "/readyz\n  respond 200"}, "readiness_path: '/readyz\\n  respond 200' contains a control character"),
    ({"readiness_path": "/admin"}, "readiness_path: '/admin' overlaps the admin, static or media URLs"),
    ({"readiness_path": "/admin/ready"}, "readiness_path: '/admin/ready' overlaps"),
    ({"readiness_path": "/media/ready"}, "readiness_path: '/media/ready' overlaps"),
    ({"readiness_path": "/" + "r" * 120}, "readiness_path: '/rrrr"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("health_path", "readiness_path"),
    [("/healthz", "/readyz"), ("/health", "/ready"), ("/-/health", "/-/ready"),
     ("/ops/healthcheck", "/ops/readycheck"), ("/ping", "/ping/ready"), ("/_status", "/_status/ready")],
)  # fmt: skip
def test_the_readiness_path_sits_beside_the_health_path_and_is_accepted(
    health_path, readiness_path
):
    assert answers.readiness_path_from(health_path) == readiness_path
    assert problems(health_path=health_path, readiness_path=readiness_path) == []


@pytest.mark.parametrize(("changes", "expected"), REFUSED, ids=[repr(c) for c, _ in REFUSED])
def test_a_refused_answer_gets_one_line_naming_the_question_and_the_fix(changes, expected):
    found = problems(**changes)
    assert len(found) == 1, found
    assert found[0].startswith(expected) or expected in found[0], found


@pytest.mark.parametrize(
    "changes",
    [
        {"proxy": "load_balancer", "gunicorn_bind": "0.0.0.0:8000", "lb_trusted_cidrs": c}
        for c in (["10.0.0.1/8"], ["10.0.0.0/33"], ["010.0.0.0/8"], ["load-balancer"], [],
                  ["2001:db8::1/32"], ["2001:db8:0:0:0:0:0:0:1/64"], ["2001:db8::/129"],
                  ["10.0.0.0/8", "0.0.0.0/0"], ["::/0"], ["10.0.0.0/8\n"], ["10.0.0.0/8;"])
    ],
    ids=lambda c: str(c["lb_trusted_cidrs"]),
)  # fmt: skip
def test_a_cidr_that_gunicorn_would_refuse_is_refused(changes):
    (found,) = problems(**changes)
    assert found.startswith("lb_trusted_cidrs: ")


def test_every_problem_is_listed_once_in_question_order():
    found = problems(project_slug="os", health_path="x", http_port=0)
    assert [line.split(":")[0] for line in found] == ["project_slug", "health_path", "http_port"]


def test_a_rule_that_depends_on_a_refused_answer_is_not_reported_again():
    """A refused http_port is not also a reason to refuse https_port."""
    assert [p.split(":")[0] for p in problems(http_port="x", https_port=80)] == ["http_port"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [("My Site", "my_site"), ("Café Ünïon 2", "cafe_union_2"), ("  --Shop--  ", "shop"), ("☃", "")],
)
def test_the_slug_a_name_suggests(name, slug):
    assert answers.slug_from_name(name) == slug


def test_given_answers_are_judged_alone_before_copier_casts_them():
    assert check_given({"http_port": "abc"}) == ["http_port: 'abc' is not a whole number"]
    assert check_given({"retrofit": "flase"})[0].startswith("retrofit: 'flase' is not true")
    assert check_given({"http_port": True}) == ["http_port: True is not a whole number"]
    assert check_given({"domain": "example.org", "_commit": "0.1.0"}) == []


def test_a_given_name_that_is_no_question_is_refused():
    assert check_given({"domian": "example.org"}) == [
        "domian: no such question in this template; see the README's list of questions"
    ]
    assert check_given({"hosts": ["evil.example"]})[0].startswith("hosts: no such question")


def test_given_answers_wait_for_the_rules_that_need_other_answers():
    """tls_key alone says nothing about tls_cert, whose default comes later."""
    assert check_given({"tls_key": "/etc/ssl/private/site.key"}) == []
    assert check_given({"https_port": 8443}) == []


def test_the_prompt_judges_only_the_question_asked():
    so_far = {**DEFAULTS, "domain": "https://shop.example.org", "http_port": 0}
    assert problem_at_prompt("domain", so_far).startswith("domain: 'https://shop.example.org'")
    assert problem_at_prompt("project_slug", so_far) == ""


def test_the_prompt_sees_the_answers_asked_before():
    so_far = {**DEFAULTS, "admin_path": "ops/", "health_path": "/ops/ping"}
    assert "overlaps" in problem_at_prompt("health_path", so_far)


def test_every_package_a_project_installs_is_reserved(project_python):
    """The reserved names cover the real import names of a generated project's virtualenv."""
    for series in ("5.2", "6.1"):
        listed = subprocess.run(
            [
                project_python(series),
                "-c",
                "import importlib.metadata as m, sys;"
                "print(*m.packages_distributions(), *sys.stdlib_module_names)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        public = {name for name in listed if name.isidentifier() and not name.startswith("_")}
        assert public - answers.RESERVED_NAMES == set(), series


@pytest.mark.parametrize(
    "changes",
    [K8S, {**K8S, "gunicorn_bind": "[::]:8080"}, {**K8S, "kubernetes_routing": "traefik",
     "kubernetes_controller_namespace": "traefik-v3"}],
    ids=["defaults", "ipv6-wildcard", "traefik"],
)  # fmt: skip
def test_kubernetes_is_accepted_behind_its_controller(changes):
    assert problems(**changes) == []


def test_kubernetes_names_drop_the_underscore_and_staging_has_its_own_host():
    computed = model(**K8S, project_slug="shop_front", domain="shop.example.org").computed()
    assert computed["kubernetes_name"] == "shop-front"
    assert computed["staging_hosts"] == ["staging.shop.example.org"]


def test_a_refused_health_path_is_reported_alone_not_the_readiness_path_derived_from_it():
    derived = {**DEFAULTS, "health_path": "/admin", "readiness_path": "/admin/ready"}
    with pytest.raises(AnswersError) as refused:
        validate(derived, given={"health_path"})
    assert [line.split(":")[0] for line in refused.value.problems] == ["health_path"]
    # Given explicitly, the readiness path is judged on its own.
    assert [line.split(":")[0] for line in problems(readiness_path="/admin/ready")] == [
        "readiness_path"
    ]
