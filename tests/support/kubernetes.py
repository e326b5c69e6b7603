"""Kubernetes manifests judged as an API server and its controllers would, without a cluster.

- `validate`: every object against the OpenAPI schemas of a Kubernetes minor, strictly
  (an unknown field is an error), with PyPI's kubernetes-validate; a kind or API version
  that minor does not serve (a removed one included) is an error, not a warning.
  Gateway API objects are CRDs, whose schemas kubernetes-validate does not bundle: they
  are checked twice, against the upstream CRDs' OpenAPI schemas as npm's
  @kubernetes-models/gateway-api compiles them (types, enums, patterns, limits), and
  against GATEWAY_API, a strict schema of the fields of Gateway API v1 (standard
  channel) that the template writes, since a CRD schema does not refuse unknown fields
  (an API server prunes them, or refuses them under strict field validation).
- `lint`: what no schema can say and the API server or a controller would act on:
  one problem per line, each starting with the rule's name (RULES). Given the project's
  `probe_paths` (the health and readiness paths), it also checks that each probe asks
  the path it is for.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import jsonschema
import kubernetes_validate.utils as kv
import yaml

from .npm import NODE, npm_package

GATEWAY_API_MODELS = "@kubernetes-models/gateway-api@2.0.0"

# The oldest and newest minors docs/guides/kubernetes.md says are supported.
OLDEST_MINOR = "1.34"
NEWEST_MINOR = "1.37"

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
PORT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")

# Objects named as DNS-1035 labels (Service) or DNS-1123 labels (Namespace); the rest
# take DNS-1123 subdomains.
LABEL_NAMED = {"Service": DNS_1035_LABEL, "Namespace": DNS_LABEL}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")

RULES = (
    "selector",
    "named-port",
    "probe-handler",
    "probe-path",
    "reference",
    "disruption-budget",
    "autoscaler",
    "job-restart-policy",
    "name",
    "label",
)


def load_all(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


# -- schemas ------------------------------------------------------------------------


def _strict(properties: dict, required: Iterable[str] = ()) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_STRING = {"type": "string", "minLength": 1}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_NAME = {"type": "string", "minLength": 1, "maxLength": 253}
_SECTION = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253}
_HOSTNAME = {
    "type": "string",
    "maxLength": 253,
    "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
_METADATA = _strict(
    {
        "name": _NAME,
        "namespace": _NAME,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    ["name"],
)
_PARENT_REF = _strict(
    {
        "group": {"type": "string"},
        "kind": _STRING,
        "name": _NAME,
        "namespace": _NAME,
        "sectionName": _SECTION,
        "port": _PORT,
    },
    ["name"],
)
_BACKEND_REF = _strict(
    {
        "group": {"type": "string"},
        "kind": _STRING,
        "name": _NAME,
        "namespace": _NAME,
        "port": _PORT,
        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
    },
    ["name"],
)
_REDIRECT = _strict(
    {
        "scheme": {"enum": ["http", "https"]},
        "hostname": _HOSTNAME,
        "port": _PORT,
        # The standard channel's redirect codes.
        "statusCode": {"enum": [301, 302]},
    }
)
_FILTER = {
    **_strict({"type": {"enum": ["RequestRedirect"]}, "requestRedirect": _REDIRECT}),
    "required": ["type", "requestRedirect"],
}
_LABEL_SELECTOR = _strict(
    {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": _strict(
                {
                    "key": _STRING,
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
                ["key", "operator"],
            ),
        },
    }
)
_LISTENER = _strict(
    {
        "name": _SECTION,
        "hostname": _HOSTNAME,
        "port": _PORT,
        "protocol": {"enum": ["HTTP", "HTTPS", "TLS", "TCP", "UDP"]},
        "tls": _strict(
            {
                "mode": {"enum": ["Terminate", "Passthrough"]},
                "certificateRefs": {
                    "type": "array",
                    "maxItems": 64,
                    "items": _strict(
                        {
                            "group": {"type": "string"},
                            "kind": {"enum": ["Secret"]},
                            "name": _NAME,
                            "namespace": _NAME,
                        },
                        ["name"],
                    ),
                },
            }
        ),
        "allowedRoutes": _strict(
            {
                "namespaces": _strict(
                    {"from": {"enum": ["All", "Same", "Selector"]}, "selector": _LABEL_SELECTOR}
                ),
            }
        ),
    },
    ["name", "port", "protocol"],
)

GATEWAY_API = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): _strict(
        {
            "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
            "kind": {"const": "HTTPRoute"},
            "metadata": _METADATA,
            "spec": _strict(
                {
                    "parentRefs": {"type": "array", "minItems": 1, "maxItems": 32,
                                   "items": _PARENT_REF},
                    "hostnames": {"type": "array", "maxItems": 16, "items": _HOSTNAME},
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 16,
                        "items": _strict(
                            {
                                "filters": {"type": "array", "maxItems": 16, "items": _FILTER},
                                "backendRefs": {"type": "array", "maxItems": 16,
                                                "items": _BACKEND_REF},
                            }
                        ),
                    },
                }
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
    ("gateway.networking.k8s.io/v1", "Gateway"): _strict(
        {
            "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
            "kind": {"const": "Gateway"},
            "metadata": _METADATA,
            "spec": _strict(
                {
                    "gatewayClassName": _SECTION,
                    "listeners": {"type": "array", "minItems": 1, "maxItems": 64,
                                  "items": _LISTENER},
                },
                ["gatewayClassName", "listeners"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
}  # fmt: skip


def validate(objects: Iterable[dict], minor: str) -> list[str]:
    """Every schema problem of `objects` for Kubernetes `minor` (e.g. "1.34"), one per line."""
    problems = []
    gateway_api = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        custom = GATEWAY_API.get((obj.get("apiVersion"), obj.get("kind")))
        if str(obj.get("apiVersion", "")).startswith("gateway.networking.k8s.io/"):
            gateway_api.append(obj)
            if custom is None:
                problems.append(f"{where}: no strict schema of {obj.get('kind')} in GATEWAY_API")
                continue
        if custom is not None:
            for error in jsonschema.Draft202012Validator(custom).iter_errors(obj):
                path = ".".join(map(str, error.absolute_path))
                problems.append(f"{where}: {path}: {error.message}")
            if obj["kind"] == "HTTPRoute":
                problems += _httproute_rules(obj, where)
            continue
        try:
            kv.validate(obj, f"{minor}.0", strict=True)
        except kv.SchemaNotFoundError:
            problems.append(
                f"{where}: Kubernetes {minor} serves no {obj.get('kind')} in "
                f"{obj.get('apiVersion')} (removed, or never existed)"
            )
        except kv.ValidationError as error:
            path = ".".join(map(str, error.absolute_path))
            problems.append(f"{where}: {path}: {error.message}")
    if gateway_api:
        problems += gateway_api_crd_problems(gateway_api)
    return problems


def gateway_api_crd_problems(objects: list[dict]) -> list[str]:
    """Problems the upstream Gateway API CRD schemas find, one per line."""
    checked = subprocess.run(
        [NODE, str(Path(__file__).with_name("gateway_api.mjs")), str(npm_package(GATEWAY_API_MODELS))],
        input=json.dumps(objects), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if checked.returncode != 0:
        raise RuntimeError(f"the Gateway API schema check failed: {checked.stderr.strip()}")
    return json.loads(checked.stdout)


def _httproute_rules(route: dict, where: str) -> list[str]:
    """The CRD's validation rules that a JSON schema cannot say."""
    problems = []
    for index, rule in enumerate(route["spec"].get("rules", [])):
        redirects = [f for f in rule.get("filters", []) if f["type"] == "RequestRedirect"]
        if redirects and rule.get("backendRefs"):
            problems.append(f"{where}: rules.{index}: a redirect rule must not name backends")
        if not redirects and not rule.get("backendRefs"):
            problems.append(f"{where}: rules.{index}: neither a redirect nor a backend")
    return problems


# -- semantic lint ------------------------------------------------------------------


def _name(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _pod_template(obj: dict) -> dict | None:
    if obj["kind"] in WORKLOADS:
        return obj["spec"]["template"]
    return None


def _matches(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels and matchExpressions, or a Service's plain map)."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return True
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _selected_pods(selector: dict, workloads: list[dict]) -> list[dict]:
    return [
        _pod_template(w)
        for w in workloads
        if _matches(selector, _pod_template(w)["metadata"].get("labels", {}))
    ]


def _container_ports(pod: dict) -> dict[str, int]:
    return {
        port["name"]: port["containerPort"]
        for container in pod["spec"]["containers"]
        for port in container.get("ports", [])
        if "name" in port
    }


def probe_paths(health_path: str, readiness_path: str) -> dict[str, str]:
    """The path each probe must ask: liveness and startup only say the process answers
    (a database outage must not restart every pod); readiness also asks the database
    and the migrations, so the Service sends a pod nothing it cannot serve."""
    return {
        "startupProbe": health_path,
        "livenessProbe": health_path,
        "readinessProbe": readiness_path,
    }


def lint(objects: list[dict], paths: dict[str, str] | None = None) -> list[str]:
    """What the API server or a controller would refuse or act on wrongly, one rule per line.

    `paths` (from `probe_paths`): the path each httpGet probe must ask.
    """
    problems: list[str] = []
    workloads = [o for o in objects if _pod_template(o) is not None]
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    existing = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects}

    def problem(rule: str, obj: dict, text: str) -> None:
        problems.append(f"{rule}: {_name(obj)}: {text}")

    # Names and labels, on every object and pod template.
    for obj in objects:
        name = obj["metadata"]["name"]
        pattern = LABEL_NAMED.get(obj["kind"], DNS_SUBDOMAIN)
        limit = 63 if obj["kind"] in LABEL_NAMED or obj["kind"] == "Job" else 253
        if not pattern.fullmatch(name) or len(name) > limit:
            problem("name", obj, f"'{name}' is not a valid {obj['kind']} name")
        labelled = [obj["metadata"]]
        if (pod := _pod_template(obj)) is not None:
            labelled.append(pod["metadata"])
            for container in pod["spec"]["containers"]:
                if not DNS_LABEL.fullmatch(container["name"]) or len(container["name"]) > 63:
                    problem("name", obj, f"container name '{container['name']}' is not DNS-1123")
                for port in container.get("ports", []):
                    if "name" in port and not _port_name_ok(port["name"]):
                        problem("name", obj, f"port name '{port['name']}' is not an IANA name")
        for metadata in labelled:
            for key, value in metadata.get("labels", {}).items():
                prefix, _, label_name = key.rpartition("/")
                if (
                    not LABEL_NAME.fullmatch(label_name)
                    or len(label_name) > 63
                    or (prefix and (not DNS_SUBDOMAIN.fullmatch(prefix) or len(prefix) > 253))
                ):
                    problem("label", obj, f"label key '{key}' is not valid")
                if (
                    not isinstance(value, str)
                    or not LABEL_VALUE.fullmatch(value)
                    or len(value) > 63
                ):
                    problem("label", obj, f"label {key}={value!r} is not a valid label value")

    for obj in workloads:
        pod = _pod_template(obj)
        labels = pod["metadata"].get("labels", {})
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] != "Job":
            selector = obj["spec"].get("selector", {})
            if not selector or not _matches(selector, labels):
                problem("selector", obj, "spec.selector does not match the pod template's labels")
        if obj["kind"] == "Job" and pod["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
            problem("job-restart-policy", obj, "a Job's pods need restartPolicy Never or OnFailure")
        for container in pod["spec"]["containers"]:
            ports = {p["name"] for p in container.get("ports", []) if "name" in p}
            asked = {
                kind: container[kind]["httpGet"].get("path")
                for kind in ("startupProbe", "readinessProbe", "livenessProbe")
                if "httpGet" in container.get(kind, {})
            }
            if asked.get("readinessProbe") and asked.get("readinessProbe") == asked.get(
                "livenessProbe"
            ):
                problem(
                    "probe-path",
                    obj,
                    f"readiness and liveness both ask {asked['readinessProbe']}: one of them "
                    "either ignores the database or restarts pods when it is down",
                )
            for kind, path in asked.items():
                if paths and path != paths[kind]:
                    problem("probe-path", obj, f"{kind} asks {path}, expected {paths[kind]}")
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                if (probe := container.get(kind)) is None:
                    continue
                handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in probe]
                if len(handlers) != 1:
                    problem(
                        "probe-handler", obj, f"{kind} needs exactly one handler, has {handlers}"
                    )
                for handler in ("httpGet", "tcpSocket"):
                    port = probe.get(handler, {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        problem(
                            "named-port",
                            obj,
                            f"{kind} names port '{port}', which the container lacks",
                        )
            for source in container.get("envFrom", []):
                for ref_kind, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = source.get(ref_kind)
                    if (
                        ref
                        and not ref.get("optional")
                        and (kind, namespace, ref["name"]) not in existing
                    ):
                        problem(
                            "reference",
                            obj,
                            f"envFrom names {kind} '{ref['name']}', which is not rendered",
                        )
            for variable in container.get("env", []):
                for ref_kind, kind in (
                    ("configMapKeyRef", "ConfigMap"),
                    ("secretKeyRef", "Secret"),
                ):
                    ref = variable.get("valueFrom", {}).get(ref_kind)
                    if ref and (kind, namespace, ref["name"]) not in existing:
                        problem(
                            "reference",
                            obj,
                            f"{variable['name']} names {kind} '{ref['name']}', which is not rendered",
                        )
        for volume in pod["spec"].get("volumes", []):
            for field, kind, key in (
                ("configMap", "ConfigMap", "name"),
                ("secret", "Secret", "secretName"),
            ):
                if field in volume and (kind, namespace, volume[field][key]) not in existing:
                    problem(
                        "reference",
                        obj,
                        f"volume {volume['name']} names {kind} '{volume[field][key]}', which is not rendered",
                    )

    for service in by_kind.get("Service", []):
        pods = _selected_pods(service["spec"].get("selector", {}), workloads)
        if not pods:
            problem("selector", service, "selects no pod template")
        for port in service["spec"].get("ports", []):
            target = port.get("targetPort")
            if isinstance(target, str) and not all(target in _container_ports(p) for p in pods):
                problem("named-port", service, f"targetPort '{target}' is not a port of its pods")

    for policy in by_kind.get("NetworkPolicy", []):
        pods = _selected_pods(policy["spec"]["podSelector"], workloads)
        if not pods:
            problem("selector", policy, "podSelector selects no pod template")
        named = {p for pod in pods for p in _container_ports(pod)}
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                if isinstance(port.get("port"), str) and port["port"] not in named:
                    problem(
                        "named-port", policy, f"port '{port['port']}' is not a port of its pods"
                    )

    services = {
        (s["metadata"].get("namespace"), s["metadata"]["name"]): s
        for s in by_kind.get("Service", [])
    }
    for ingress in by_kind.get("Ingress", []):
        namespace = ingress["metadata"].get("namespace")
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                service = services.get((namespace, backend["name"]))
                if service is None:
                    problem(
                        "reference", ingress, f"backend Service '{backend['name']}' is not rendered"
                    )
                    continue
                port = backend["port"]
                names = {p.get("name") for p in service["spec"]["ports"]}
                numbers = {p["port"] for p in service["spec"]["ports"]}
                if ("name" in port and port["name"] not in names) or (
                    "number" in port and port["number"] not in numbers
                ):
                    problem(
                        "named-port",
                        ingress,
                        f"backend port {port} is not a port of Service '{backend['name']}'",
                    )
    for route in by_kind.get("HTTPRoute", []):
        namespace = route["metadata"].get("namespace")
        for rule in route["spec"].get("rules", []):
            for ref in rule.get("backendRefs", []):
                service = services.get((ref.get("namespace", namespace), ref["name"]))
                if service is None:
                    problem("reference", route, f"backend Service '{ref['name']}' is not rendered")
                elif ref.get("port") not in {p["port"] for p in service["spec"]["ports"]}:
                    problem(
                        "named-port",
                        route,
                        f"backend port {ref.get('port')} is not a port of Service '{ref['name']}'",
                    )

    autoscalers = by_kind.get("HorizontalPodAutoscaler", [])
    for pdb in by_kind.get("PodDisruptionBudget", []):
        spec = pdb["spec"]
        pods = _selected_pods(spec.get("selector", {}), workloads)
        if not pods:
            problem("selector", pdb, "selects no pod template")
        fewest = min((a["spec"].get("minReplicas", 1) for a in autoscalers), default=1)
        if "minAvailable" in spec:
            minimum = spec["minAvailable"]
            if minimum == "100%" or (isinstance(minimum, int) and minimum >= fewest):
                problem(
                    "disruption-budget",
                    pdb,
                    f"minAvailable {minimum} with {fewest} replica(s) blocks every drain",
                )
        else:
            unavailable = spec.get("maxUnavailable")
            if unavailable in (None, 0, "0%"):
                problem(
                    "disruption-budget", pdb, f"maxUnavailable {unavailable} blocks every drain"
                )

    deployments = {
        (d["metadata"].get("namespace"), d["metadata"]["name"]): d
        for d in by_kind.get("Deployment", [])
    }
    for hpa in autoscalers:
        spec = hpa["spec"]
        if spec.get("minReplicas", 1) > spec["maxReplicas"] or spec.get("minReplicas", 1) < 1:
            problem(
                "autoscaler",
                hpa,
                f"minReplicas {spec.get('minReplicas')} must be 1 to maxReplicas {spec['maxReplicas']}",
            )
        target = spec["scaleTargetRef"]
        deployment = deployments.get((hpa["metadata"].get("namespace"), target["name"]))
        if target["kind"] != "Deployment" or deployment is None:
            problem(
                "autoscaler",
                hpa,
                f"scales {target['kind']}/{target['name']}, which is not rendered",
            )
            continue
        if "replicas" in deployment["spec"]:
            problem(
                "autoscaler",
                hpa,
                "the Deployment sets replicas, which every apply resets under the autoscaler",
            )
        on_cpu = any(m.get("resource", {}).get("name") == "cpu" for m in spec.get("metrics", []))
        containers = _pod_template(deployment)["spec"]["containers"]
        if on_cpu and not all(
            c.get("resources", {}).get("requests", {}).get("cpu") for c in containers
        ):
            problem(
                "autoscaler", hpa, "scales on CPU utilisation, but a container has no CPU request"
            )
    return problems


def _port_name_ok(name: str) -> bool:
    """IANA_SVC_NAME: at most 15 lowercase letters, digits and inner single hyphens, one letter."""
    return (
        len(name) <= 15
        and bool(PORT_NAME.fullmatch(name))
        and "--" not in name
        and any(c.isalpha() for c in name)
    )
