"""GitOps-safe secrets: renders are deterministic without a cluster, and pods roll when their inputs change."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.deploy.chart import CHART, CI_VALUES, HelmError, Rendered, template

DEFAULT_VALUES = CHART / "ci" / "default-values.yaml"


def _annotations(rendered: Rendered) -> dict[str, str]:
    annotations: dict[str, str] = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
    return annotations


def test_templates_never_ask_the_cluster_or_roll_dice() -> None:
    """`lookup` is empty under `helm template` and random values differ per render: both break GitOps diffs."""
    for path in (CHART / "templates").iterdir():
        text = path.read_text()
        for forbidden in ("lookup ", "randAlpha", "randAscii", "randNumeric", "uuidv4", "genPrivateKey"):
            assert forbidden not in text, f"{path.name} uses {forbidden.strip()}"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name.removesuffix("-values.yaml"))
def test_two_renders_are_identical(helm: str, values_file: Path) -> None:
    first = template(helm, [values_file])
    second = template(helm, [values_file])
    assert first.docs == second.docs


def test_the_internal_secret_is_required(helm: str) -> None:
    with pytest.raises(HelmError, match=r"internalSecret.existingSecret .* or internalSecret.value"):
        template(helm, sets=["database.url=postgresql://x/y"])
    given = template(helm, sets=["database.url=postgresql://x/y", "internalSecret.value=0123456789abcdef"])
    data = given.one("Secret", "csms")["data"]
    assert base64.b64decode(data["internal-secret"]) == b"0123456789abcdef"
    external = template(helm, sets=["database.url=postgresql://x/y", "internalSecret.existingSecret=mine"])
    assert "internal-secret" not in external.one("Secret", "csms")["data"]


@pytest.mark.parametrize(
    ("change", "moves", "stays"),
    [
        ("internalSecret.value=another-secret-0123456789", "checksum/secret", "checksum/config"),
        ("database.url=postgresql://other/db", "checksum/secret", "checksum/config"),
        ("config.logLevel=debug", "checksum/config", "checksum/secret"),
        ("config.idTagCacheSeconds=9", "checksum/config", "checksum/secret"),
    ],
)
def test_pods_roll_when_their_config_or_secret_changes(helm: str, change: str, moves: str, stays: str) -> None:
    before = _annotations(template(helm, [DEFAULT_VALUES]))
    after = _annotations(template(helm, [DEFAULT_VALUES], [change]))
    assert before[moves] != after[moves], f"{change} must change {moves}"
    assert before[stays] == after[stays], f"{change} must not change {stays}"
