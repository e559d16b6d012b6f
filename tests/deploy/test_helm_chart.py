"""The Helm chart: lint, render with every values set in helm/csms/ci/, validate, and check what matters."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from csms import config as csms_config
from tests.deploy.chart import CHART, CI_VALUES, REPO, HelmError, Rendered, helm_run, notes, template

SETTINGS = {s.env: s for s in csms_config.SETTINGS}
# Kubernetes versions the chart promises (Chart.yaml kubeVersion) and the newest the validator knows.
K8S_VERSIONS = ("1.27", "1.33")
OPERATOR_CRDS = {"ServiceMonitor", "PrometheusRule"}
DEFAULT_VALUES = CHART / "ci" / "default-values.yaml"


def _values(rendered: Rendered) -> dict[str, Any]:
    assert rendered.values_file is not None
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    return _merge(chart_values, yaml.safe_load(rendered.values_file.read_text()) or {})


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _pod_labels(rendered: Rendered) -> dict[str, str]:
    labels: dict[str, str] = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects_pods(selector: dict[str, str], rendered: Rendered) -> bool:
    labels = _pod_labels(rendered)
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _port_named(container: dict[str, Any], name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    return int(ports[name])


# ---------------------------------------------------------------------------------------------- lint, schema


def test_ci_values_sets_cover_the_issue(helm: str) -> None:
    names = {p.name for p in CI_VALUES}
    assert {"default-values.yaml", "ingress-values.yaml", "monitoring-values.yaml"} <= names
    assert {"existing-secrets-values.yaml", "hpa-values.yaml"} <= names


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name.removesuffix("-values.yaml"))
def test_helm_lint(helm: str, values_file: Path) -> None:
    out = helm_run(helm, ["lint", "--strict", str(CHART), "-f", str(values_file)])
    assert "0 chart(s) failed" in out


def test_every_rendered_manifest_passes_kubernetes_schema(rendered: Rendered) -> None:
    validated = 0
    for doc in rendered.docs:
        if doc["kind"] in OPERATOR_CRDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version}: {exc}")
        validated += 1
    assert validated >= 6


def test_the_validator_can_fail() -> None:
    """Guards the test above: strict validation must reject a misspelt field."""
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "targetPot": "api"}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


SECRET = "internalSecret.value=0123456789abcdef"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ([], "database.url or database.existingSecret"),
        (["database.url=postgresql://x/y"], "internalSecret.existingSecret"),
        (["database.url=postgresql://x/y", SECRET, "config.registraton=auto"], "registraton"),
        (["database.url=postgresql://x/y", SECRET, "config.logLevel=verbose"], "logLevel"),
        (["database.url=mysql://x/y", SECRET], "url"),
        (["database.url=postgresql://x/y", SECRET, "replicaCount=0"], "replicaCount"),
        (["database.url=postgresql://x/y", SECRET, "lifecycle.terminationGracePeriodSeconds=20"], "must exceed"),
        (["database.url=postgresql://x/y", SECRET, "tls.enabled=true"], "tls.secretName"),
        (["database.url=postgresql://x/y", SECRET, "etcd.embedded.enabled=false"], "no etcd"),
        (["database.url=postgresql://x/y", SECRET, "apiTokens.tokens={short}"], "tokens"),
        (["database.url=postgresql://x/y", SECRET, "podDisruptionBudget.minAvailable=2"], "not both"),
    ],
)
def test_bad_values_fail_at_install(helm: str, sets: list[str], message: str) -> None:
    with pytest.raises(HelmError, match=message):
        template(helm, sets=sets)


# ---------------------------------------------------------------------------------------------- probes, drain


def test_probes_hit_the_real_health_routes_on_the_api_port(rendered: Rendered) -> None:
    container = rendered.container
    api_port = _port_named(container, "api")
    assert api_port == int(_values(rendered)["config"]["apiPort"])
    expected = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
    for probe, path in expected.items():
        if probe == "startupProbe" and probe not in container:
            continue
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in ("api", api_port), probe
    # The routes the probes hit are the ones the API serves.
    from csms.api.health_routes import HEALTHZ, READYZ

    assert (HEALTHZ.method, HEALTHZ.path, READYZ.method, READYZ.path) == ("GET", "/healthz", "GET", "/readyz")


def test_grace_period_covers_prestop_and_the_whole_drain(rendered: Rendered) -> None:
    container = rendered.container
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert pre_stop > 0
    configmap = rendered.one("ConfigMap", "csms")["data"]
    drain_timeout = float(configmap["CSMS_DRAIN_TIMEOUT"])
    grace = rendered.pod_spec["terminationGracePeriodSeconds"]
    assert pre_stop + drain_timeout < grace, (pre_stop, drain_timeout, grace)


def test_grace_period_follows_a_longer_drain(helm: str) -> None:
    rendered = template(helm, [DEFAULT_VALUES], ["config.drainTimeout=120"])
    assert rendered.pod_spec["terminationGracePeriodSeconds"] > 120 + 5


# ---------------------------------------------------------------------------------------------- settings


def _environment(rendered: Rendered) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """The CSMS_* variables a replica sees: literal values, and secret/field references kept as refs."""
    container = rendered.container
    literal: dict[str, str] = {}
    refs: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            cm = next(c for c in rendered.all("ConfigMap") if c["metadata"]["name"] == ref["name"])
            literal.update(cm["data"])
    seen: list[str] = []
    for var in container.get("env", []):
        if "value" in var:
            # $(VAR) must name a variable defined earlier in the list, or Kubernetes leaves it verbatim.
            for dependency in ("POD_IP", "POD_NAME"):
                if f"$({dependency})" in var["value"]:
                    assert dependency in seen, f"{var['name']} uses $({dependency}) before it is defined"
            literal[var["name"]] = var["value"]
        else:
            refs[var["name"]] = var["valueFrom"]
        seen.append(var["name"])
    return literal, refs


def test_every_csms_variable_the_chart_sets_is_a_setting(rendered: Rendered) -> None:
    literal, refs = _environment(rendered)
    names = {n for n in [*literal, *refs] if n.startswith("CSMS_")}
    assert names, "the chart sets no CSMS_* variable"
    unknown = names - set(SETTINGS)
    assert not unknown, f"not in csms.config.SETTINGS: {sorted(unknown)}"
    # Every non-CSMS variable is a helper the CSMS_* ones interpolate.
    assert {n for n in [*literal, *refs] if not n.startswith("CSMS_")} <= {"POD_IP", "POD_NAME"}


def test_rendered_settings_parse_and_load_like_csms_serve(rendered: Rendered) -> None:
    literal, refs = _environment(rendered)
    secrets = {s["metadata"]["name"]: s.get("data", {}) for s in rendered.all("Secret")}
    values = _values(rendered)
    environ = {k: v for k, v in literal.items() if k.startswith("CSMS_")}
    for name, ref in refs.items():
        if not name.startswith("CSMS_"):
            continue
        if "fieldRef" in ref:
            environ[name] = {"metadata.name": "rel-csms-7d9f-abcde", "status.podIP": "10.0.0.7"}[
                ref["fieldRef"]["fieldPath"]
            ]
            continue
        key_ref = ref["secretKeyRef"]
        if key_ref["name"] in secrets:
            assert key_ref["key"] in secrets[key_ref["name"]], f"{name}: key {key_ref['key']} not in chart Secret"
            environ[name] = base64.b64decode(secrets[key_ref["name"]][key_ref["key"]]).decode()
        else:
            existing = {
                values["database"]["existingSecret"],
                values["etcd"]["existingSecret"],
                values["apiTokens"]["existingSecret"],
                values["internalSecret"]["existingSecret"],
            } - {""}
            assert key_ref["name"] in existing, f"{name} reads Secret {key_ref['name']} that nobody provides"
            stand_in = {
                "CSMS_DATABASE_URL": "postgresql://u:p@db/csms",
                "CSMS_API_TOKENS": "0123456789ab:admin",
            }
            environ[name] = stand_in.get(name, "from-existing-secret")
    for name, raw in environ.items():
        if "$(" not in raw:
            SETTINGS[name].parse(raw)  # raises on a value `csms serve` would refuse
    environ["CSMS_ADVERTISE_ADDRESS"] = environ["CSMS_ADVERTISE_ADDRESS"].replace("$(POD_IP)", "10.0.0.7")
    loaded = csms_config.load(None, environ)
    csms_config.require_database(loaded)
    assert loaded.node_id == "rel-csms-7d9f-abcde"
    assert loaded.advertise_address == f"http://10.0.0.7:{loaded.api_port}"
    assert loaded.etcd_endpoints, "a multi-replica install must coordinate through etcd"
    assert len(loaded.internal_secret) >= 16


def test_node_id_and_advertise_address_come_from_the_downward_api(rendered: Rendered) -> None:
    env = {v["name"]: v for v in rendered.container["env"]}
    assert env["CSMS_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    api_port = _port_named(rendered.container, "api")
    assert env["CSMS_ADVERTISE_ADDRESS"]["value"] == f"http://$(POD_IP):{api_port}"


def test_container_ports_match_the_configured_ports(rendered: Rendered) -> None:
    data = rendered.one("ConfigMap", "csms")["data"]
    assert _port_named(rendered.container, "ocpp") == int(data["CSMS_OCPP_PORT"])
    assert _port_named(rendered.container, "api") == int(data["CSMS_API_PORT"])


def test_tls_files_are_mounted_from_the_tls_secret(rendered: Rendered) -> None:
    data = rendered.one("ConfigMap", "csms")["data"]
    values = _values(rendered)
    if not values["tls"]["enabled"]:
        assert "CSMS_TLS_CERT_FILE" not in data
        return
    mounts = {m["mountPath"]: m["name"] for m in rendered.container["volumeMounts"]}
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    for key in ("CSMS_TLS_CERT_FILE", "CSMS_TLS_KEY_FILE"):
        path = Path(data[key])
        volume = volumes[mounts[str(path.parent)]]
        assert volume["secret"]["secretName"] == values["tls"]["secretName"]
        assert path.name in ("tls.crt", "tls.key")


def test_chart_secret_holds_exactly_what_is_not_from_existing_secrets(helm: str) -> None:
    existing = template(helm, [CHART / "ci" / "existing-secrets-values.yaml"])
    assert existing.all("Secret") == [], "with every existingSecret set the chart must create no Secret"
    own = template(helm, [CHART / "ci" / "ingress-values.yaml"])
    data = own.one("Secret", "csms")["data"]
    assert set(data) == {"database-url", "internal-secret", "api-tokens"}
    given = template(helm, [DEFAULT_VALUES], ["internalSecret.value=0123456789abcdef0123"])
    assert base64.b64decode(given.one("Secret", "csms")["data"]["internal-secret"]) == b"0123456789abcdef0123"


# ---------------------------------------------------------------------------------------------- hardening


def test_security_context_is_locked_down(rendered: Rendered) -> None:
    pod = rendered.pod_spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    ctx = rendered.container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["runAsNonRoot"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert rendered.pod_spec["automountServiceAccountToken"] is False
    resources = rendered.container["resources"]
    assert resources["requests"]["cpu"] and resources["limits"]["memory"]


def test_replicas_spread_and_disruptions_are_bounded(rendered: Rendered) -> None:
    spec = rendered.deployment["spec"]
    values = _values(rendered)
    if values["autoscaling"]["enabled"]:
        assert "replicas" not in spec, "the HPA owns the replica count"
        hpa = rendered.one("HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"]["name"] == rendered.deployment["metadata"]["name"]
        assert hpa["spec"]["minReplicas"] >= 2
    else:
        assert spec["replicas"] == values["replicaCount"] == 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    keys = {c["topologyKey"] for c in rendered.pod_spec["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in rendered.pod_spec["topologySpreadConstraints"]:
        assert _selects_pods(constraint["labelSelector"]["matchLabels"], rendered)
    anti = rendered.pod_spec["affinity"]["podAntiAffinity"]
    assert anti.get("preferredDuringSchedulingIgnoredDuringExecution") or anti.get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    pdb = rendered.one("PodDisruptionBudget", "csms")
    assert _selects_pods(pdb["spec"]["selector"]["matchLabels"], rendered)
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable", 0) >= 2


# ---------------------------------------------------------------------------------------------- networking


def test_services_route_to_the_right_container_ports(rendered: Rendered) -> None:
    container_ports = {p["name"] for p in rendered.container["ports"]}
    ocpp = rendered.one("Service", "-ocpp")
    api = rendered.one("Service", "-api")
    for svc, name in ((ocpp, "ocpp"), (api, "api")):
        assert _selects_pods(svc["spec"]["selector"], rendered)
        assert [p["targetPort"] for p in svc["spec"]["ports"]] == [name]
        assert name in container_ports
    assert ocpp["spec"]["type"] == _values(rendered)["service"]["ocpp"]["type"]


def test_ingress_routes_ocpp_and_api_to_rendered_services(rendered: Rendered) -> None:
    ingresses = rendered.all("Ingress")
    if not _values(rendered)["ingress"]["enabled"]:
        assert ingresses == []
        return
    services = {s["metadata"]["name"]: {p["name"] for p in s["spec"]["ports"]} for s in rendered.all("Service")}
    prefix = rendered.one("ConfigMap", "csms")["data"]["CSMS_OCPP_PATH_PREFIX"]
    paths = {}
    for rule in ingresses[0]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"]["name"] in services[backend["name"]]
            paths[path["path"]] = backend["name"]
    assert paths[prefix].endswith("-ocpp")
    assert paths["/api/"].endswith("-api")
    assert "/" not in paths and "/internal/" not in paths, "never expose /metrics or /internal/ publicly"


def test_network_policy_admits_stations_and_replicas(rendered: Rendered) -> None:
    policy = rendered.one("NetworkPolicy", "csms")
    assert _selects_pods(policy["spec"]["podSelector"]["matchLabels"], rendered)
    rules = policy["spec"]["ingress"]
    ports = {p["port"] for rule in rules for p in rule["ports"]}
    assert {"ocpp", "api"} <= ports
    api_rule = next(r for r in rules if r["ports"][0]["port"] == "api")
    if "from" in api_rule:  # narrowed: the replicas must still reach each other's /internal/
        assert any(_selects_pods(p.get("podSelector", {}).get("matchLabels", {}), rendered) for p in api_rule["from"])
    if "Egress" in policy["spec"]["policyTypes"]:
        egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
        assert 53 in egress_ports


# ---------------------------------------------------------------------------------------------- monitoring


def test_monitoring_objects_match_the_shipped_rules_and_dashboard(helm: str) -> None:
    rendered = template(helm, [CHART / "ci" / "monitoring-values.yaml"])
    monitor = rendered.one("ServiceMonitor")
    api = rendered.one("Service", "-api")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= api["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["api"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    # The rules in deploy/ say job="csms"; the chart's are the same with this release's job (the Service name).
    rule = rendered.one("PrometheusRule")
    shipped = (REPO / "deploy" / "prometheus" / "alerts.yaml").read_text()
    own = shipped.replace('job="csms"', f'job="{api["metadata"]["name"]}", namespace="csms"')
    assert rule["spec"] == yaml.safe_load(own)
    dashboard = rendered.one("ConfigMap", "-dashboard")
    shipped = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "csms.json").read_text())
    assert json.loads(dashboard["data"]["csms.json"]) == shipped
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_monitoring_is_off_by_default(helm: str) -> None:
    rendered = template(helm, [DEFAULT_VALUES])
    assert not rendered.all("ServiceMonitor") and not rendered.all("PrometheusRule")
    assert not rendered.all("HorizontalPodAutoscaler") and not rendered.all("Ingress")


@pytest.mark.parametrize(
    ("chart_copy", "source"),
    [
        ("files/alerts.yaml", "deploy/prometheus/alerts.yaml"),
        ("files/csms-dashboard.json", "deploy/grafana/dashboards/csms.json"),
    ],
)
def test_chart_copies_equal_the_deploy_files(chart_copy: str, source: str) -> None:
    """Helm cannot read outside the chart, so it ships copies; refresh with `cp <source> helm/csms/<copy>`."""
    assert (CHART / chart_copy).read_bytes() == (REPO / source).read_bytes(), f"cp {source} helm/csms/{chart_copy}"


# ---------------------------------------------------------------------------------------------- notes


def test_notes_give_urls_and_health_checks(helm: str) -> None:
    text = notes(helm, [CHART / "ci" / "ingress-values.yaml"])
    assert "wss://csms.example.com/ocpp/<station-id>" in text
    assert "https://csms.example.com/api/" in text
    assert "/readyz" in text and "rollout status" in text
    plain = notes(helm, [DEFAULT_VALUES])
    assert "port-forward svc/rel-csms-ocpp 9000" in plain
    assert "WARNING: no API tokens" in plain
