"""The chart's own etcd: rendered when `etcd.endpoints` is empty, left out when external endpoints are given."""

from __future__ import annotations

from typing import Any

from tests.deploy.chart import CHART, Rendered, template

ONLY_DATABASE = ["database.url=postgresql://csms:pw@db:5432/csms", "internalSecret.value=0123456789abcdef"]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _args(statefulset: dict[str, Any]) -> dict[str, str]:
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    return dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])


def test_a_bare_install_brings_a_three_member_etcd(helm: str) -> None:
    rendered = template(helm, sets=ONLY_DATABASE)
    etcd = rendered.one("StatefulSet", "-etcd")
    spec = etcd["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 3 and spec["podManagementPolicy"] == "Parallel"
    image = spec["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("gcr.io/etcd-development/etcd:v3.5."), "a pinned etcd version"
    # Persistent data, one claim per member, mounted where --data-dir points.
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"] and claim["spec"]["resources"]["requests"]["storage"]
    mount = spec["template"]["spec"]["containers"][0]["volumeMounts"][0]
    assert mount["name"] == claim["metadata"]["name"]
    assert _args(etcd)["data-dir"].startswith(mount["mountPath"] + "/")
    # Members on different nodes.
    anti = spec["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert _matches(anti[0]["labelSelector"]["matchLabels"], pod_labels)
    # A PDB of one member and a headless Service that names every member.
    pdb = rendered.one("PodDisruptionBudget", "-etcd")
    assert pdb["spec"]["maxUnavailable"] == 1 and _matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    service = rendered.one("Service", "-etcd")
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["metadata"]["name"] == spec["serviceName"]
    assert _matches(service["spec"]["selector"], pod_labels)
    # The replicas' pods are not etcd's, and the other way round.
    server_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    assert not _matches(pdb["spec"]["selector"]["matchLabels"], server_labels)
    assert not _matches(rendered.one("PodDisruptionBudget", "csms")["spec"]["selector"]["matchLabels"], pod_labels)


def test_replicas_and_members_agree_on_the_member_addresses(helm: str) -> None:
    rendered = template(helm, sets=ONLY_DATABASE)
    etcd = rendered.one("StatefulSet", "-etcd")
    args = _args(etcd)
    name, service, namespace = etcd["metadata"]["name"], etcd["spec"]["serviceName"], etcd["metadata"]["namespace"]
    hosts = [f"{name}-{i}.{service}.{namespace}.svc" for i in range(3)]
    assert args["initial-cluster"] == ",".join(f"{name}-{i}=http://{h}:2380" for i, h in enumerate(hosts))
    assert args["advertise-client-urls"] == f"http://$(POD_NAME).{service}.{namespace}.svc:2379"
    endpoints = rendered.one("ConfigMap", "csms")["data"]["CSMS_ETCD_ENDPOINTS"]
    assert endpoints.split(",") == [f"http://{h}:2379" for h in hosts]


def test_only_replicas_and_members_reach_the_in_chart_etcd(helm: str) -> None:
    rendered = template(helm, sets=ONLY_DATABASE)
    policy = rendered.one("NetworkPolicy", "-etcd")
    server_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    etcd_labels = rendered.one("StatefulSet", "-etcd")["spec"]["template"]["metadata"]["labels"]
    client_rule, peer_rule = policy["spec"]["ingress"][:2]
    assert [p["port"] for p in client_rule["ports"]] == ["client"]
    assert all(_matches(peer["podSelector"]["matchLabels"], server_labels) for peer in client_rule["from"])
    assert _matches(peer_rule["from"][0]["podSelector"]["matchLabels"], etcd_labels)
    restricted = template(helm, sets=[*ONLY_DATABASE, "networkPolicy.restrictEgress=true"])
    egress = restricted.one("NetworkPolicy", "csms")["spec"]["egress"]
    assert any(
        _matches(to.get("podSelector", {}).get("matchLabels", {}), etcd_labels)
        for rule in egress
        for to in rule.get("to", [])
    ), "restricted egress must still let the replicas reach the in-chart etcd"


def test_external_endpoints_leave_the_in_chart_etcd_out(helm: str) -> None:
    external: Rendered = template(helm, [CHART / "ci" / "existing-secrets-values.yaml"])
    assert not external.all("StatefulSet")
    assert [s["metadata"]["name"] for s in external.all("Service") if s["metadata"]["name"].endswith("-etcd")] == []
    assert external.one("ConfigMap", "csms")["data"]["CSMS_ETCD_ENDPOINTS"].startswith("https://etcd-0.etcd:2379")


def test_a_single_replica_may_run_without_etcd(helm: str) -> None:
    single = template(helm, sets=[*ONLY_DATABASE, "etcd.embedded.enabled=false", "replicaCount=1"])
    assert not single.all("StatefulSet")
    assert single.one("ConfigMap", "csms")["data"]["CSMS_ETCD_ENDPOINTS"] == ""
