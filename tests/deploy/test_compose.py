"""deploy/compose.yaml and the files it mounts: every reference points at something that exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from csms.config import SETTINGS
from tests.deploy.chart import REPO

DEPLOY = REPO / "deploy"
SETTING_ENVS = {s.env: s for s in SETTINGS}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _depends_on(service: dict[str, Any]) -> set[str]:
    deps = service.get("depends_on", [])
    return set(deps if isinstance(deps, list) else deps.keys())


def _replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: s for n, s in compose["services"].items() if any(k.startswith("CSMS_") for k in s.get("environment", {}))
    }


def test_the_whole_system_is_there(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert {"etcd", "postgres", "haproxy", "prometheus", "grafana"} <= services
    assert len(_replicas(compose)) == 3


def test_references_name_only_defined_services_and_volumes(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    named_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        assert _depends_on(service) <= services, f"{name} depends on an undefined service"
        for link in service.get("links", []):
            assert link.split(":")[0] in services
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).resolve().exists(), f"{name} mounts missing {source}"
            else:
                assert source in named_volumes, f"{name} uses undeclared volume {source}"
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file()


def test_replicas_are_configured_with_real_settings(compose: dict[str, Any]) -> None:
    replicas = _replicas(compose)
    node_ids = set()
    for name, service in replicas.items():
        env = service["environment"]
        unknown = {k for k in env if k.startswith("CSMS_")} - set(SETTING_ENVS)
        assert not unknown, f"{name}: {unknown} not in csms.config.SETTINGS"
        for key, raw in env.items():
            if "${" not in str(raw):
                SETTING_ENVS[key].parse(str(raw))
        node_ids.add(env["CSMS_NODE_ID"])
        host = re.match(r"http://([^:/]+):(\d+)$", env["CSMS_ADVERTISE_ADDRESS"])
        assert host and host.group(1) == name
        assert {"etcd", "postgres"} <= _depends_on(service)
        assert "etcd:" in env["CSMS_ETCD_ENDPOINTS"] and "@postgres:" in env["CSMS_DATABASE_URL"]
        grace = service["stop_grace_period"]
        assert grace.endswith("s") and int(grace[:-1]) > float(env["CSMS_DRAIN_TIMEOUT"])
    assert len(node_ids) == len(replicas), "every replica needs its own CSMS_NODE_ID"


def test_haproxy_fronts_every_replica_on_both_ports(compose: dict[str, Any]) -> None:
    cfg = (DEPLOY / "haproxy.cfg").read_text()
    replicas = set(_replicas(compose))
    backends: dict[str, set[str]] = {}
    current = ""
    for line in cfg.splitlines():
        words = line.split()
        if words[:1] == ["backend"]:
            current = words[1]
            backends[current] = set()
        elif words[:1] == ["server"] and current:
            host, port = words[2].rsplit(":", 1)
            assert host in compose["services"]
            backends[current].add(f"{host}:{port}")
    defaults = {s.name: s.default for s in SETTINGS}
    ocpp = {f"{r}:{defaults['ocpp_port']}" for r in replicas}
    api = {f"{r}:{defaults['api_port']}" for r in replicas}
    assert ocpp in backends.values() and api in backends.values()
    assert cfg.count("option httpchk GET /readyz") == 2, "route only to ready (not draining) replicas"
    assert "timeout tunnel" in cfg, "WebSockets need a tunnel timeout"
    published = {p.split(":")[0] for p in compose["services"]["haproxy"]["ports"]}
    assert {defaults["ocpp_port"], defaults["api_port"]} <= published


def test_prometheus_scrapes_every_replica_and_loads_the_alerts(compose: dict[str, Any]) -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    targets = {t for c in jobs["csms"]["static_configs"] for t in c["targets"]}
    api_port = next(s.default for s in SETTINGS if s.name == "api_port")
    assert targets == {f"{r}:{api_port}" for r in _replicas(compose)}
    for job in jobs.values():
        for config in job["static_configs"]:
            for target in config["targets"]:
                host = target.rsplit(":", 1)[0]
                assert host == "localhost" or host in compose["services"], target
    mount = next(v for v in compose["services"]["prometheus"]["volumes"] if v.startswith("./prometheus:"))
    container_dir = Path(mount.split(":")[1])
    for rule_file in prom["rule_files"]:
        relative = Path(rule_file).relative_to(container_dir)
        assert (DEPLOY / "prometheus" / relative).is_file()


def test_grafana_provisions_the_datasource_and_dashboard(compose: dict[str, Any]) -> None:
    datasources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    url = datasources["datasources"][0]["url"]
    assert re.match(r"http://prometheus:\d+$", url)
    providers = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "csms.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    mounts = {dst: src for src, dst, *_ in (v.split(":") for v in compose["services"]["grafana"]["volumes"])}
    assert mounts[path] == "./grafana/dashboards"
    assert (DEPLOY / "grafana" / "dashboards" / "csms.json").is_file()
