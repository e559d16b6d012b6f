"""One version everywhere: pyproject, `csms --version`, the chart's appVersion, the default image tag, the
CHANGELOG."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import yaml

from tests.deploy.chart import CHART, REPO, template

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_csms_version_prints_the_package_version() -> None:
    out = subprocess.run([sys.executable, "-m", "csms", "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == f"csms {VERSION}"


def test_the_chart_ships_this_version_by_default(helm: str) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == VERSION, "bump helm/csms/Chart.yaml appVersion with pyproject's version"
    rendered = template(helm, [CHART / "ci" / "default-values.yaml"])
    assert rendered.container["image"] == f"csms:{VERSION}", "image.tag defaults to the chart's appVersion"
    assert rendered.deployment["metadata"]["labels"]["app.kubernetes.io/version"] == VERSION


def test_the_changelog_knows_this_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"\n## {VERSION}\n" in changelog or "\n## Unreleased\n" in changelog
    assert f"## {VERSION}" in changelog, f"CHANGELOG.md has no section for {VERSION}"
