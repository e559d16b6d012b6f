"""Alert rules: promtool checks and unit tests, release-scoped selectors in the chart, a runbook per alert."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, REPO, template

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
UNIT_TESTS = Path(__file__).parent / "prometheus" / "alerts_test.yaml"
MONITORING = CHART / "ci" / "monitoring-values.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.skip("promtool not found: Debian's `prometheus` package (tests/run.sh's bootstrap installs it)")
    return path


def _promtool(promtool: str, *args: str) -> str:
    out = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _rules(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in spec["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules(promtool: str) -> None:
    assert "SUCCESS" in _promtool(promtool, "check", "rules", str(ALERTS))


def test_promtool_unit_tests_pass(promtool: str) -> None:
    assert "SUCCESS" in _promtool(promtool, "test", "rules", str(UNIT_TESTS))


def test_every_alert_has_a_unit_test() -> None:
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS.read_text()))
    wanted = {"CsmsReplicaDown", "CsmsNoReplicas", "CsmsNoLeader", "CsmsNoLeaderSeries", "CsmsSeveralLeaders"}
    wanted |= {"CsmsEtcdLatencyHigh", "CsmsLeaseRenewalSlow", "CsmsLeaseRenewalFailing", "CsmsStationsDisconnectSurge"}
    assert wanted <= tested, f"no promtool test for {sorted(wanted - tested)}"
    assert wanted <= {r["alert"] for r in _rules(yaml.safe_load(ALERTS.read_text()))}


def test_absent_alerts_cover_no_replicas_and_no_leader_series() -> None:
    exprs = {r["alert"]: r["expr"] for r in _rules(yaml.safe_load(ALERTS.read_text()))}
    assert exprs["CsmsNoReplicas"].startswith("absent(up{")
    assert exprs["CsmsNoLeaderSeries"].startswith("absent(csms_cluster_leader{")
    assert "> 1" in exprs["CsmsSeveralLeaders"]


@pytest.mark.parametrize(("release", "namespace"), [("rel", "csms"), ("blue", "fleet-b")])
def test_chart_rules_select_only_their_release(
    helm: str, promtool: str, tmp_path: Path, release: str, namespace: str
) -> None:
    rendered = template(helm, [MONITORING], [f"fullnameOverride={release}-csms"])
    rule = rendered.one("PrometheusRule")
    assert rule["metadata"]["namespace"] == "csms"  # the tests render with -n csms; the selector follows it
    job = f'job="{release}-csms-api"'
    service = rendered.one("Service", "-api")
    assert service["metadata"]["name"] == f"{release}-csms-api", "the ServiceMonitor's job is the API Service name"
    assert "jobLabel" not in rendered.one("ServiceMonitor")["spec"]
    for r in _rules(rule["spec"]):
        assert 'job="csms"' not in r["expr"], r["alert"]
        for selector in re.findall(r"(?:csms_\w+|up)\{([^}]*)\}", r["expr"]):
            assert job in selector and 'namespace="csms"' in selector, (r["alert"], selector)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    _promtool(promtool, "check", "rules", str(path))


def test_runbook_base_url_prefixes_every_runbook(helm: str) -> None:
    base = "https://git.example/csms/blob/v0.2.0/"
    rendered = template(helm, [MONITORING], [f"metrics.prometheusRule.runbookBaseUrl={base}"])
    for r in _rules(rendered.one("PrometheusRule")["spec"]):
        assert r["annotations"]["runbook_url"].startswith(base + "docs/runbooks/"), r["alert"]


def _anchors(markdown: str) -> set[str]:
    return {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", markdown, re.M)
    }


def test_every_alert_links_a_runbook_in_the_repo() -> None:
    for r in _rules(yaml.safe_load(ALERTS.read_text())):
        url = r["annotations"].get("runbook_url", "")
        path, _, anchor = url.partition("#")
        assert path.startswith("docs/runbooks/"), f"{r['alert']}: runbook_url {url!r}"
        runbook = REPO / path
        assert runbook.is_file(), f"{r['alert']}: {path} does not exist"
        assert anchor == r["alert"].lower() and anchor in _anchors(runbook.read_text()), (
            f"{r['alert']}: {path} needs a heading `## {r['alert']}`"
        )
