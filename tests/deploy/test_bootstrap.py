"""deploy/local/bootstrap.sh: the run command installs only what running needs; the test command everything.

The script runs for real in a scratch copy, with stand-ins for python, apt and the server binaries on PATH that
record what they were asked to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.chart import REPO

TOOLS = ("sh", "cat", "sha1sum", "cut", "rm", "touch", "dirname", "mkdir", "chmod", "ls")
FAKE_PYTHON = """#!/bin/sh
# Stands in for python3: `-m venv DIR` makes DIR/bin/python, itself a recorder of every call.
if [ "$1" = -m ] && [ "$2" = venv ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\\necho "$*" >>"%s"\\n' "$PIP_LOG" >"$3/bin/python"
  chmod +x "$3/bin/python"
fi
"""


def _bootstrap(tmp_path: Path, purpose: str, present: tuple[str, ...]) -> tuple[subprocess.CompletedProcess[str], str]:
    checkout = tmp_path / "checkout"
    (checkout / "deploy" / "local").mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "local" / "bootstrap.sh", checkout / "deploy" / "local")
    shutil.copy(REPO / "pyproject.toml", checkout)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in present:
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
    for tool in TOOLS:  # only these: whatever else the machine has installed stays invisible
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")  # not root: never apt-get for real
    (bin_dir / "python3").write_text(FAKE_PYTHON)
    for path in bin_dir.iterdir():
        if not path.is_symlink():
            path.chmod(0o755)
    log = tmp_path / "pip.log"
    log.touch()
    env = {
        "PATH": str(bin_dir),
        "PIP_LOG": str(log),
        "PYTHON": str(bin_dir / "python3"),
        "HOME": str(tmp_path),
    }
    script = f'source deploy/local/bootstrap.sh {purpose} && echo "PATH=$PATH"'
    out = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out, log.read_text()


def test_run_installs_the_package_without_extras_and_needs_no_promtool(tmp_path: Path) -> None:
    out, pip = _bootstrap(tmp_path, "run", present=("initdb", "etcd"))
    assert out.returncode == 0, out.stderr
    assert "install -q -e ." in pip and "[dev" not in pip and "bench" not in pip


def test_test_installs_every_extra(tmp_path: Path) -> None:
    out, pip = _bootstrap(tmp_path, "test", present=("initdb", "etcd", "promtool", "nats-server", "chromium"))
    assert out.returncode == 0, out.stderr
    assert "install -q -e .[dev,bench]" in pip


def test_test_needs_promtool_and_names_the_package(tmp_path: Path) -> None:
    out, _ = _bootstrap(tmp_path, "test", present=("initdb", "etcd"))
    assert out.returncode != 0
    assert "missing prometheus" in out.stderr


@pytest.mark.parametrize(("script", "purpose"), [("deploy/local/run.sh", "run"), ("tests/run.sh", "test")])
def test_the_commands_say_their_purpose(script: str, purpose: str) -> None:
    text = (REPO / script).read_text()
    assert f'bootstrap.sh" {purpose}\n' in text, f"{script} must source bootstrap.sh with `{purpose}`"


def test_bootstrap_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(REPO / "deploy" / "local" / "bootstrap.sh")], check=True, timeout=10)
    assert os.access(REPO / "deploy" / "local" / "run.sh", os.R_OK)
