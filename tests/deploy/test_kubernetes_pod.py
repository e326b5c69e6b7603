"""The rendered Kubernetes pods, run on the suite's engine as the kubelet would run them.

No kubelet runs here, so the test does its part: the image is built from the rendered
Dockerfile (target web, local base images), and the rendered migrations Job's and
Deployment's containers run with what their specs say, taken from the manifests
deploy.sh applies: the command (replacing the image's entrypoint and CMD), the
environment from the rendered ConfigMap and Secret, the numeric user, a read-only root
filesystem, every capability dropped, no privilege escalation, the in-memory /tmp
volume, and no image healthcheck (Kubernetes ignores it). PostgreSQL runs beside them.

Then the probes run as declared, on the named port with the Host the kubelet sends
(the pod's IP and port).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from ..support.client import Client, log_in_to_admin
from ..support.containers import base_images, docker, nginx_image, steady_network
from ..support.kubernetes import load_all
from ..support.ports import free_port
from ..support.processes import clean_env, run
from ..support.rendering import render
from ..support.stack import ADMIN_PASSWORD, ADMIN_USERNAME, Certificates

pytestmark = pytest.mark.xdist_group("kubernetes-pod")

RELEASE = "v1"
DB = {"POSTGRES_DB": "my_site", "POSTGRES_USER": "my_site", "POSTGRES_PASSWORD": "pod-test-pw"}
SECRET_KEY = "k8s-pod-test-" + "x7Qm2Lp9Zr4Vt8Wn3Ys6" * 3


@dataclass
class Pod:
    """The web container of the rendered Deployment, running, and how to reach it."""

    name: str
    ip: str
    port: int
    container_port: int
    spec: dict


def kubelet_flags(pod_spec: dict, container: dict, env: dict[str, str], env_file: Path) -> list:
    """docker run flags for what a pod spec asks of the kubelet (the restricted profile)."""
    pod_context = pod_spec["securityContext"]
    context = container["securityContext"]
    flags = [
        "--user", f"{pod_context['runAsUser']}:{pod_context['runAsGroup']}",
        "--env-file", env_file, "--no-healthcheck",
    ]  # fmt: skip
    assert pod_context["runAsNonRoot"] and pod_context["seccompProfile"]["type"] == "RuntimeDefault"
    if context["readOnlyRootFilesystem"]:
        flags.append("--read-only")
    if context["capabilities"]["drop"] == ["ALL"]:
        flags += ["--cap-drop", "ALL"]
    if context["allowPrivilegeEscalation"] is False:
        flags += ["--security-opt", "no-new-privileges"]
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        empty_dir = volumes[mount["name"]]["emptyDir"]
        assert empty_dir["medium"] == "Memory"
        size = empty_dir["sizeLimit"].replace("Mi", "m")
        flags += ["--tmpfs", f"{mount['mountPath']}:size={size},uid={pod_context['runAsUser']}"]
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    # The command replaces the image's entrypoint; with no args, CMD is dropped too.
    command = container["command"]
    return [*flags, "--entrypoint", command[0], "@IMAGE@", *command[1:]]


def container_env(objects: list[dict], container: dict) -> dict[str, str]:
    """envFrom: the rendered ConfigMap's data and the rendered Secret's decoded data."""
    env = {}
    for source in container["envFrom"]:
        if ref := source.get("configMapRef"):
            config = next(o for o in objects if o["kind"] == "ConfigMap"
                          and o["metadata"]["name"] == ref["name"])  # fmt: skip
            env.update(config["data"])
        if ref := source.get("secretRef"):
            secret = next(o for o in objects if o["kind"] == "Secret"
                          and o["metadata"]["name"] == ref["name"])  # fmt: skip
            env.update({k: base64.b64decode(v).decode() for k, v in secret["data"].items()})
    return env


def with_image(flags: list, image: str) -> list:
    return [image if flag == "@IMAGE@" else flag for flag in flags]


@pytest.fixture(scope="module")
def release(engine, template_repo, tmp_path_factory) -> Iterator[dict]:
    """The rendered project, its image built, PostgreSQL up, the manifests of RELEASE.

    The project network's subnet is fixed first, so that the ingress-nginx stand-in gets
    an address of its own, which the project trusts (lb_trusted_cidrs) and nothing else
    on the network has.
    """
    workdir = tmp_path_factory.mktemp("kubernetes-pod")
    run_id = (os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex)[:8]
    name = f"shipshape-{run_id}-k8s-pod"
    image = f"{name}:{RELEASE}"
    started: list[str] = []
    try:
        with steady_network(changing=True):
            docker("network", "create", "--driver", "bridge", "--opt",
                   "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", name)  # fmt: skip
            subnet = json.loads(docker("network", "inspect", name).stdout)[0]["IPAM"]["Config"][0]
            docker("network", "rm", name)
            docker("network", "create", "--driver", "bridge", "--subnet", subnet["Subnet"],
                   "--opt", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", name)  # fmt: skip
        front_ip = str(ipaddress.ip_network(subnet["Subnet"])[200])
        http_port, https_port = free_port(), free_port()
        answers = {
            "deployment": "kubernetes", "proxy": "load_balancer", "database": "postgres",
            "kubernetes_routing": "ingress-nginx", "lb_trusted_cidrs": [f"{front_ip}/32"],
            "http_port": http_port, "https_port": https_port,
        }  # fmt: skip
        project = render(template_repo, workdir / "my_site", **answers)
        overlay = project / "deploy" / "kubernetes" / "overlays" / "production"
        (overlay / "secret.env").write_text(
            f"DJANGO_SECRET_KEY={SECRET_KEY}\n"
            f"DATABASE_URL=postgres://{DB['POSTGRES_USER']}:{DB['POSTGRES_PASSWORD']}@db:5432/"
            f"{DB['POSTGRES_DB']}\n"
        )
        printed = run(["bash", overlay.parent.parent / "deploy.sh", "production", RELEASE,
                       "--print"], cwd=project,
                      env={"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})  # fmt: skip
        assert printed.returncode == 0, printed.stderr
        objects = load_all(printed.stdout)

        images = base_images(project / "pyproject.toml", "load_balancer", "postgres")
        with steady_network(changing=True):
            docker("build", "--pull=false", "--quiet", "--target", "web", "--build-arg",
                   f"PYTHON_IMAGE={images['PYTHON_IMAGE']}", "--tag", image, project,
                   timeout=900)  # fmt: skip
            started.append(f"{name}-db")
            docker("run", "--detach", "--name", f"{name}-db", "--network", name,
                   "--network-alias", "db",
                   *[a for k, v in DB.items() for a in ("--env", f"{k}={v}")],
                   images["POSTGRES_IMAGE"])  # fmt: skip
        deadline = time.monotonic() + 90
        while docker("exec", f"{name}-db", "pg_isready", "--username", DB["POSTGRES_USER"],
                     "--dbname", DB["POSTGRES_DB"], check=False).returncode != 0:  # fmt: skip
            assert time.monotonic() < deadline, docker("logs", f"{name}-db").stderr[-2000:]
            time.sleep(1)
        yield {"name": name, "image": image, "objects": objects, "workdir": workdir,
               "started": started, "project": project, "front_ip": front_ip,
               "http_port": http_port, "https_port": https_port}  # fmt: skip
    finally:
        with steady_network(changing=True):
            for container in started:
                docker("rm", "--force", container, check=False)
            docker("network", "rm", name, check=False)
            docker("image", "rm", image, check=False)


def workload(objects: list[dict], kind: str) -> tuple[dict, dict]:
    obj = next(o for o in objects if o["kind"] == kind)
    pod_spec = obj["spec"]["template"]["spec"]
    return pod_spec, pod_spec["containers"][0]


@pytest.fixture(scope="module")
def pod(release) -> Pod:
    """The migrations Job run to completion, then the Deployment's web container started."""
    objects, workdir, name = release["objects"], release["workdir"], release["name"]
    job_pod, job = workload(objects, "Job")
    assert job_pod["restartPolicy"] == "Never"
    flags = kubelet_flags(job_pod, job, container_env(objects, job), workdir / "job.env")
    with steady_network(changing=True):
        migrated = docker("run", "--rm", "--network", name,
                          *with_image(flags, release["image"]), timeout=300, check=False)  # fmt: skip
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
    assert "Applying" in migrated.stdout
    # The operator's account for the admin login through the front, made like a one-off Job.
    admin = {
        **job,
        "command": [
            "python",
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            ADMIN_USERNAME,
            "--email",
            "admin@example.com",
        ],
    }
    env = {**container_env(objects, job), "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}
    flags = kubelet_flags(job_pod, admin, env, workdir / "admin.env")
    with steady_network(changing=True):
        made = docker("run", "--rm", "--network", name, *with_image(flags, release["image"]),
                      timeout=300, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]

    web_pod, web = workload(objects, "Deployment")
    container_port = web["ports"][0]["containerPort"]
    port = free_port()
    flags = kubelet_flags(web_pod, web, container_env(objects, web), workdir / "web.env")
    with steady_network(changing=True):
        docker("run", "--detach", "--name", f"{name}-web", "--network", name,
               "--publish", f"127.0.0.1:{port}:{container_port}",
               *with_image(flags, release["image"]))  # fmt: skip
    release["started"].append(f"{name}-web")
    inspected = json.loads(docker("inspect", f"{name}-web").stdout)[0]
    ip = inspected["NetworkSettings"]["Networks"][name]["IPAddress"]
    started = Pod(f"{name}-web", ip, port, container_port, web)
    # The startup probe, as declared: every periodSeconds, failureThreshold times.
    startup = web["startupProbe"]
    for _ in range(startup["failureThreshold"]):
        try:
            if probe(started, "startupProbe").status_code == 200:
                return started
        except httpx.TransportError:
            pass
        time.sleep(startup["periodSeconds"])
    raise AssertionError(docker("logs", started.name).stderr[-3000:])


def probe(pod: Pod, kind: str) -> httpx.Response:
    """One run of a declared httpGet probe, with the Host the kubelet sends."""
    declared = pod.spec[kind]["httpGet"]
    assert declared["port"] == "http" and pod.spec["ports"][0]["name"] == "http"
    return httpx.get(
        f"http://127.0.0.1:{pod.port}{declared['path']}",
        headers={"Host": f"{pod.ip}:{pod.container_port}"},
        timeout=pod.spec[kind].get("timeoutSeconds", 1),
    )


def test_the_probes_pass_with_the_pod_ip_as_host(pod):
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        response = probe(pod, kind)
        assert response.status_code == 200 and response.text == "ok\n"
    # Readiness has a path of its own, which also asks the database and the migrations.
    assert pod.spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod.spec["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_any_other_path_with_the_pod_ip_as_host_is_refused(pod):
    response = httpx.get(
        f"http://127.0.0.1:{pod.port}/", headers={"Host": f"{pod.ip}:{pod.container_port}"}
    )
    assert response.status_code == 400


def test_a_client_around_the_controller_cannot_pass_as_https(release, pod):
    """Only the ingress's address is in lb_trusted_cidrs: a client reaching gunicorn from
    anywhere else (here the engine's gateway) is not believed when it claims HTTPS."""
    response = httpx.get(
        f"http://127.0.0.1:{pod.port}/",
        headers={"Host": "example.com", "X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 301
    assert response.headers["location"] == f"https://example.com:{release['https_port']}/"


def test_the_pod_runs_unprivileged_on_a_read_only_root(pod):
    identity = docker("exec", pod.name, "id", "-u").stdout.strip()
    assert identity == "10001"
    # media/ belongs to the pod's user in the image: only the read-only mount refuses.
    refused = docker("exec", pod.name, "touch", "media/written", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    status = docker("exec", pod.name, "grep", "^CapEff", "/proc/1/status").stdout
    assert status.split()[1] == "0000000000000000"


def test_the_placeholder_secret_stops_the_job_with_one_line(release):
    """env.py validates the pod's environment at startup, exactly as on a server."""
    objects, workdir = release["objects"], release["workdir"]
    job_pod, job = workload(objects, "Job")
    env = container_env(objects, job)
    example = release["project"] / "deploy/kubernetes/overlays/production/secret.env.example"
    placeholder = next(
        line.split("=", 1)[1] for line in example.read_text().splitlines()
        if line.startswith("DJANGO_SECRET_KEY=")
    )  # fmt: skip
    env["DJANGO_SECRET_KEY"] = placeholder
    flags = kubelet_flags(job_pod, job, env, workdir / "placeholder.env")
    with steady_network(changing=True):
        refused = docker("run", "--rm", "--network", release["name"],
                         *with_image(flags, release["image"]), timeout=300, check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY is still the placeholder from .env.example" in refused.stderr


# -- ingress-nginx in front -----------------------------------------------------------

# The server blocks ingress-nginx writes for the rendered Ingress with its defaults
# (use-forwarded-headers "false", force-ssl-redirect on): the catch-all server answers
# unknown hosts from its default backend (404); the Ingress's hosts share one server
# each, redirect plain HTTP with 308, pass the browser's Host, and overwrite every
# X-Forwarded-* header with what nginx itself saw.
INGRESS_NGINX_CONF = """\
upstream upstream_balancer {
    server @POD@;
    keepalive 320;
}
server {
    listen 80 default_server;
    listen 443 ssl default_server;
    ssl_certificate /etc/nginx/tls/fullchain.pem;
    ssl_certificate_key /etc/nginx/tls/privkey.pem;
    return 404;
}
server {
    listen 80;
    listen 443 ssl;
    server_name @HOSTS@;
    ssl_certificate /etc/nginx/tls/fullchain.pem;
    ssl_certificate_key /etc/nginx/tls/privkey.pem;
    if ($scheme = http) {
        return 308 https://$host:@HTTPS_PORT@$request_uri;
    }
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Request-ID $request_id;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Forwarded-Port $server_port;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Scheme $scheme;
        proxy_set_header X-Scheme $scheme;
        proxy_set_header X-Original-URI $request_uri;
        proxy_pass http://upstream_balancer;
    }
}
# use-forwarded-headers "true", proxy-real-ip-cidr the L7 load balancer's address: the
# scheme, host and client come from the X-Forwarded-* headers it sends.
map $http_x_forwarded_proto $forwarded_proto {
    default $http_x_forwarded_proto;
    "" $scheme;
}
map $http_x_forwarded_host $forwarded_host {
    default $http_x_forwarded_host;
    "" $http_host;
}
server {
    listen 8080 default_server;
    return 404;
}
server {
    listen 8080;
    server_name @HOSTS@;
    set_real_ip_from @LB@/32;
    real_ip_header X-Forwarded-For;
    if ($forwarded_proto = http) {
        return 308 https://$forwarded_host$request_uri;
    }
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $forwarded_host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Host $forwarded_host;
        proxy_set_header X-Forwarded-Proto $forwarded_proto;
        proxy_set_header X-Original-URI $request_uri;
        proxy_pass http://upstream_balancer;
    }
}
"""
# An L7 load balancer in front of that: it terminates TLS, sets X-Forwarded-Proto and
# -For itself and drops a client's X-Forwarded-Host (one that passed it on would let a
# client pick, among the allowed hosts, the Host Django sees).
LOAD_BALANCER_CONF = """\
server {
    listen 443 ssl default_server;
    ssl_certificate /etc/nginx/tls/fullchain.pem;
    ssl_certificate_key /etc/nginx/tls/privkey.pem;
    return 444;
}
server {
    listen 443 ssl;
    server_name @HOSTS@;
    ssl_certificate /etc/nginx/tls/fullchain.pem;
    ssl_certificate_key /etc/nginx/tls/privkey.pem;
    location / {
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Host "";
        proxy_pass http://@FRONT@:8080;
    }
}
"""


@dataclass
class Front:
    client: Client
    hosts: list[str]
    https_port: int
    answers: dict
    admin_username: str = ADMIN_USERNAME
    admin_password: str = ADMIN_PASSWORD

    @property
    def domain(self) -> str:
        return self.hosts[0]

    def origin(self) -> str:
        return f"https://{self.domain}:{self.https_port}"


@pytest.fixture(scope="module")
def front(release, pod, tmp_path_factory) -> Front:
    """nginx as ingress-nginx configures itself for the rendered Ingress, at the address
    the project trusts, connecting to the pod's IP as ingress-nginx does."""
    ingress = next(o for o in release["objects"] if o["kind"] == "Ingress")
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    folder = tmp_path_factory.mktemp("ingress-nginx")
    ca = trustme.CA(organization_name="django-shipshape kubernetes tests")
    certificates = Certificates.issue(ca, hosts, folder / "tls")
    (folder / "conf.d").mkdir()
    (folder / "conf.d" / "ingress.conf").write_text(
        INGRESS_NGINX_CONF.replace("@POD@", f"{pod.ip}:{pod.container_port}")
        .replace("@HOSTS@", " ".join(hosts))
        .replace("@HTTPS_PORT@", str(release["https_port"]))
        .replace("@LB@", lb_address(release))
    )
    name = f"{release['name']}-ingress"
    # Built (under the network lock building takes) before that lock is held here.
    image = nginx_image()
    with steady_network(changing=True):
        release["started"].append(name)
        docker("run", "--detach", "--name", name, "--network", release["name"],
               "--ip", release["front_ip"],
               "--publish", f"127.0.0.1:{release['http_port']}:80",
               "--publish", f"127.0.0.1:{release['https_port']}:443",
               "--volume", f"{folder / 'conf.d'}:/etc/nginx/conf.d:ro",
               "--volume", f"{folder / 'tls'}:/etc/nginx/tls:ro", image)  # fmt: skip
    client = Client(certificates.ca_path, release["http_port"], release["https_port"], timeout=10)
    answers = {"admin_path": "admin/"}
    served = Front(client, hosts, release["https_port"], answers)
    deadline = time.monotonic() + 30
    while True:
        try:
            if client.get("/", host=hosts[0]).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, docker("logs", name).stderr[-3000:]
        time.sleep(0.5)


def lb_address(release: dict) -> str:
    return str(ipaddress.ip_address(release["front_ip"]) + 1)


@pytest.fixture(scope="module")
def behind_lb(release, front, tmp_path_factory) -> Front:
    """The L7 load balancer in front of the controller's use-forwarded-headers server."""
    folder = tmp_path_factory.mktemp("l7-load-balancer")
    (folder / "conf.d").mkdir()
    (folder / "conf.d" / "lb.conf").write_text(
        LOAD_BALANCER_CONF.replace("@HOSTS@", " ".join(front.hosts)).replace(
            "@FRONT@", release["front_ip"]
        )
    )
    tls = front.client.ca_path.parent
    name = f"{release['name']}-lb"
    https_port = free_port()
    image = nginx_image()
    with steady_network(changing=True):
        release["started"].append(name)
        docker("run", "--detach", "--name", name, "--network", release["name"],
               "--ip", lb_address(release), "--publish", f"127.0.0.1:{https_port}:443",
               "--volume", f"{folder / 'conf.d'}:/etc/nginx/conf.d:ro",
               "--volume", f"{tls}:/etc/nginx/tls:ro", image)  # fmt: skip
    client = Client(front.client.ca_path, 0, https_port, timeout=10)
    served = Front(client, front.hosts, https_port, front.answers)
    deadline = time.monotonic() + 30
    while True:
        try:
            if client.get("/", host=front.domain).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, docker("logs", name).stderr[-3000:]
        time.sleep(0.5)


def test_behind_an_l7_load_balancer_forged_headers_change_nothing(behind_lb):
    """ingress-nginx with use-forwarded-headers "true" and proxy-real-ip-cidr the load
    balancer's address, as docs/guides/kubernetes.md says to configure it."""
    for host in behind_lb.hosts:
        assert behind_lb.client.get("/", host=host).status_code == 200
    baseline = behind_lb.client.get("/", host=behind_lb.domain)
    forged = behind_lb.client.get("/", host=behind_lb.domain, headers={
        "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example.org",
        "X-Forwarded-For": "203.0.113.9",
    })  # fmt: skip
    assert (forged.status_code, forged.text) == (baseline.status_code, baseline.text)
    assert "strict-transport-security" in forged.headers
    _, login = log_in_to_admin(behind_lb.client, behind_lb, behind_lb.origin())
    assert login.status_code == 302 and login.headers["location"] == "/admin/"


def test_every_host_is_served_through_the_ingress(front):
    for host in front.hosts:
        response = front.client.get("/", host=host)
        assert response.status_code == 200
        assert "strict-transport-security" in response.headers


def test_plain_http_is_redirected_by_the_ingress(front):
    response = front.client.get("/", host=front.domain, scheme="http")
    assert response.status_code == 308
    assert response.headers["location"] == f"{front.origin()}/"


def test_a_forged_host_never_reaches_django_through_the_ingress(front):
    response = front.client.get("/", host=front.domain, host_header="evil.example.org")
    assert response.status_code == 404 and "Django" not in response.text


def test_forged_forwarded_headers_change_nothing_through_the_ingress(front):
    baseline = front.client.get("/", host=front.domain)
    forged = front.client.get("/", host=front.domain, headers={
        "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example.org",
        "X-Forwarded-For": "203.0.113.9",
    })  # fmt: skip
    assert (forged.status_code, forged.text) == (baseline.status_code, baseline.text)
    assert "evil.example.org" not in forged.text


def test_smoketest_passes_through_the_ingress_and_its_default_backend(
    release, front, project_python
):
    """The runbook's smoketest, against the pod behind the ingress-nginx stand-in, whose
    catch-all server answers an unknown Host from the default backend (404) instead of
    closing the connection."""
    objects = release["objects"]
    _, web = workload(objects, "Deployment")
    env = clean_env(**container_env(objects, web), OPS_PASSWORD=front.admin_password)
    https_port = release["https_port"]
    checked = run(
        [project_python("5.2"), "manage.py", "smoketest", front.origin(),
         *[a for host in front.hosts for a in ("--resolve", f"{host}:{https_port}:127.0.0.1")],
         "--http-port", str(release["http_port"]), "--cacert", front.client.ca_path,
         "--admin-user", front.admin_username, "--admin-password-env", "OPS_PASSWORD",
         "--json"],
        cwd=release["project"], env=env,
    )  # fmt: skip
    report = json.loads(checked.stdout)
    results = {r["id"]: r for r in report["results"]}
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert {r["status"] for r in report["results"]} == {"pass"}, checked.stdout
    assert "404 from the front, not the site's own 404 page" in results["unknown-host"]["detail"]


def test_the_admin_login_works_through_the_ingress(front):
    _, response = log_in_to_admin(front.client, front, front.origin())
    assert response.status_code == 302, response.text[-2000:]
    assert response.headers["location"] == "/admin/"


def test_readiness_answers_503_database_while_postgresql_is_stopped(release, pod):
    """The readiness probe takes the pod out of the Service while the database is gone;
    liveness, which restarts pods, stays 200.

    The database's name keeps resolving, as a Service's does without endpoints: a
    container holds the alias with nothing listening (this engine's DNS would otherwise
    spend 10 s on the closed network for a name it no longer knows).
    """
    db, down = f"{release['name']}-db", f"{release['name']}-db-down"
    image = json.loads(docker("inspect", db).stdout)[0]["Config"]["Image"]
    release["started"].append(down)
    with steady_network(changing=True):
        docker("stop", db)
        docker("run", "--detach", "--name", down, "--network", release["name"],
               "--network-alias", "db", "--entrypoint", "sleep", image, "infinity")  # fmt: skip
    try:
        response = probe(pod, "readinessProbe")
        assert (response.status_code, response.text) == (503, "database\n")
        assert probe(pod, "livenessProbe").status_code == 200
    finally:
        with steady_network(changing=True):
            docker("rm", "--force", down)
            docker("start", db)
        deadline = time.monotonic() + 90
        while docker("exec", db, "pg_isready", "--username", DB["POSTGRES_USER"],
                     "--dbname", DB["POSTGRES_DB"], check=False).returncode != 0:  # fmt: skip
            assert time.monotonic() < deadline, docker("logs", db).stderr[-2000:]
            time.sleep(1)
    response = probe(pod, "readinessProbe")
    assert (response.status_code, response.text) == (200, "ok\n")
