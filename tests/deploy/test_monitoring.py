"""Alert rules and the Grafana dashboard use only metrics and labels that observability/metrics.py defines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.chart import REPO
from tests.deploy.metric_catalogue import STANDARD, Family, families, problems

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "csms.json"


@pytest.fixture(scope="module")
def known() -> dict[str, Family]:
    found = families()
    assert len({f.name for f in found.values()}) >= 10, "could not parse the metric definitions"
    return {**found, **STANDARD}


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        (panel["title"], target["expr"])
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append((f"${variable['name']}", query["query"]))
    return exprs


def test_metric_names_follow_prometheus_conventions() -> None:
    for family in {f.name: f for f in families().values()}.values():
        assert family.name.startswith("csms_"), family.name
        if family.kind == "Counter":
            assert family.name.endswith("_total"), f"counter {family.name} must end in _total"
        if family.kind == "Histogram" and "duration" in family.name:
            assert family.name.endswith("_seconds"), f"{family.name}: latencies in seconds"


def test_the_catalogue_catches_unknown_names_and_labels(known: dict[str, Family]) -> None:
    assert problems("rate(csms_no_such_metric_total[5m])", known) == ["unknown metric csms_no_such_metric_total"]
    assert problems('sum(rate(csms_ocpp_messages_total{colour="red"}[5m]))', known)
    assert problems("sum by (colour) (rate(csms_ocpp_messages_total[5m]))", known)
    assert problems("rate(csms_ocpp_message_duration_seconds[5m])", known), "histograms need _bucket/_sum/_count"


def test_alert_rules_cover_the_issue_and_use_real_metrics(known: dict[str, Family]) -> None:
    rules = _rules()
    text = " ".join(r["expr"] for r in rules)
    for needed in (
        'up{job="csms"}',
        "csms_cluster_lease_up",
        "csms_cluster_takeovers_total",
        "csms_fence_rejections_total",
        "csms_db_errors_total",
        "histogram_quantile(0.99",
    ):
        assert needed in text, f"no alert uses {needed}"
    for rule in rules:
        assert rule["alert"].startswith("Csms")
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert not problems(rule["expr"], known), (rule["alert"], problems(rule["expr"], known))
    assert len({r["alert"] for r in rules}) == len(rules)


def test_dashboard_shows_what_the_issue_asks_with_real_metrics(known: dict[str, Family]) -> None:
    exprs = _dashboard_exprs()
    assert len(exprs) >= 20
    for title, expr in exprs:
        assert not problems(expr, known), (title, problems(expr, known))
    text = " ".join(e for _, e in exprs)
    for needed in (
        "sum by (instance) (csms_stations_connected",
        "sum by (action) (rate(csms_ocpp_messages_total",
        "csms_ocpp_message_duration_seconds_bucket",
        "csms_cluster_takeovers_total",
        "csms_cluster_leader",
        "csms_db_errors_total",
        "csms_db_group_commit_batch_size",
        "csms_etcd_request_duration_seconds_bucket",
        # Per replica: CPU, memory (and memory per connection, the sizing limit), open files, GC, loop lag.
        "sum by (instance) (rate(process_cpu_seconds_total",
        "sum by (instance) (process_resident_memory_bytes",
        "/ clamp_min(sum by (instance) (csms_stations_connected",
        "sum by (instance) (process_open_fds",
        "sum by (instance, generation) (rate(python_gc_collections_total",
        "csms_event_loop_lag_seconds_bucket",
        "sum by (instance) (rate(csms_cluster_takeovers_total",
    ):
        assert needed in text, f"dashboard lacks {needed}"


def test_dashboard_is_portable_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "job", "instance"} <= names
    for _, expr in _dashboard_exprs():
        if "csms_build_info, namespace" not in expr:
            assert 'namespace=~"$namespace"' in expr, f"not scoped to the namespace variable: {expr}"
    for panel in _panels(dashboard["panels"]):
        if panel["type"] != "row":
            # The datasource is a variable, so the same JSON works in compose and with kube-prometheus-stack.
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
