"""The shipped package holds the runtime only: the dev tooling (devcluster) stays in the repository, and the
README's run command still reaches it."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from setuptools import find_namespace_packages

from tests.deploy.chart import REPO


def _wheel_packages() -> list[str]:
    """What `pip install .` ships: pyproject's [tool.setuptools.packages.find], as setuptools resolves it."""
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return find_namespace_packages(where=str(REPO), include=find["include"], exclude=find.get("exclude", ()))


def test_the_wheel_ships_the_runtime_and_no_dev_tooling() -> None:
    packages = _wheel_packages()
    assert "csms" in packages and "cluster" in packages and "csms.api" in packages
    dev = [p for p in packages if p.split(".")[0] == "devcluster" or "devtools" in p.split(".")]
    assert dev == []


def test_the_run_command_starts_the_dev_package_from_the_checkout() -> None:
    run_sh = (REPO / "deploy" / "local" / "run.sh").read_text()
    assert "exec python -m devcluster" in run_sh
    done = subprocess.run(
        [sys.executable, "-m", "devcluster", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--replicas" in done.stdout and "--registration" in done.stdout
