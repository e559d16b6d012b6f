"""Run helm against the chart and load what it renders; shared by the chart tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "csms"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "rel"
NAMESPACE = "csms"


def find_helm() -> tuple[str | None, str]:
    """The helm binary to use and, when there is none, why (shown as the skip reason)."""
    candidates = [
        ("$HELM", os.environ.get("HELM", "")),
        ("deploy/tools/get-helm.sh cache", str(REPO / ".cache" / "helm" / "bin" / "helm")),
        ("PATH", shutil.which("helm") or ""),
    ]
    tried = []
    for origin, path in candidates:
        if not path:
            continue
        try:
            out = subprocess.run([path, "version", "--short"], capture_output=True, text=True, timeout=20)
        except OSError as exc:
            tried.append(f"{origin} {path}: {exc}")
            continue
        if out.returncode == 0 and out.stdout.startswith(("v3.", "v4.")):
            return path, ""
        tried.append(f"{origin} {path}: {out.stdout.strip() or out.stderr.strip()}")
    detail = "; ".join(tried) or "none found"
    return None, f"no working helm binary ({detail}); run `bash deploy/tools/get-helm.sh` first"


@dataclass
class Rendered:
    """One `helm template` result, indexed by kind."""

    docs: list[dict[str, Any]]
    values_file: Path | None = None
    by_kind: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for doc in self.docs:
            self.by_kind.setdefault(doc["kind"], []).append(doc)

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        matches = [d for d in self.by_kind.get(kind, []) if d["metadata"]["name"].endswith(name_suffix)]
        assert len(matches) == 1, f"expected one {kind} *{name_suffix}, got {[m['metadata']['name'] for m in matches]}"
        return matches[0]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return self.by_kind.get(kind, [])

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod_spec["containers"]
        assert len(containers) == 1
        container: dict[str, Any] = containers[0]
        return container


class HelmError(Exception):
    pass


def helm_run(helm: str, args: Sequence[str]) -> str:
    out = subprocess.run([helm, *args], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise HelmError(out.stderr.strip() or out.stdout.strip())
    return out.stdout


def values_args(values_files: Iterable[Path] = (), sets: Iterable[str] = ()) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def template(helm: str, values_files: Iterable[Path] = (), sets: Iterable[str] = ()) -> Rendered:
    files = list(values_files)
    stdout = helm_run(helm, ["template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(files, sets)])
    docs = [doc for doc in yaml.safe_load_all(stdout) if doc]
    return Rendered(docs, files[0] if files else None)


def notes(helm: str, values_files: Iterable[Path] = ()) -> str:
    """NOTES.txt as an install would print it (`--dry-run=client` needs no cluster)."""
    stdout = helm_run(
        helm,
        ["install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client", *values_args(values_files)],
    )
    assert "NOTES:" in stdout, stdout[-2000:]
    return stdout.split("NOTES:", 1)[1]
