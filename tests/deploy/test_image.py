"""deploy/Dockerfile: no container engine here, so check its instructions against the package it ships."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from csms import cli
from csms.config import SETTINGS
from tests.deploy.chart import REPO

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for word, rest in instructions():
        if word == "FROM":
            result.append([])
        if result:
            result[-1].append((word, rest))
    return result


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def last(stage: list[tuple[str, str]], word: str) -> str:
    matches = [rest for w, rest in stage if w == word]
    assert matches, f"no {word} in the final stage"
    return matches[-1]


def test_multi_stage_and_slim_python_311() -> None:
    args = dict(rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest)
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert len(froms) >= 2
    for line in froms:
        image = line.split()[0]
        image = args.get(image.strip("${}"), image)
        assert re.match(r"python:3\.11[.\d]*-slim", image), line
    final = stages()[-1]
    copies_from_build = [rest for w, rest in final if w == "COPY" and rest.startswith("--from=")]
    assert copies_from_build, "the runtime stage must copy the built virtualenv from the build stage"


def test_no_build_tools_at_run_time() -> None:
    final = " ".join(rest for w, rest in stages()[-1] if w == "RUN")
    for tool in ("gcc", "build-essential", "make ", "pip install", "apt-get install"):
        assert tool not in final, f"runtime stage installs {tool.strip()}"


def test_runs_as_a_numeric_non_root_user() -> None:
    user = last(stages()[-1], "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric uid so Kubernetes runAsNonRoot can verify it"
    chart_uid = re.search(r"runAsUser:\s*(\d+)", (REPO / "helm" / "csms" / "values.yaml").read_text())
    assert chart_uid and chart_uid.group(1) == uid


def test_entrypoint_is_the_real_console_script_and_serve_is_a_real_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    final = stages()[-1]
    entrypoint = exec_form(last(final, "ENTRYPOINT"))
    command = exec_form(last(final, "CMD"))
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(entrypoint[0]).name in scripts
    module, _, func = scripts[Path(entrypoint[0]).name].partition(":")
    assert (module, func) == ("csms.cli", "main")
    assert command == ["serve"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*entrypoint[1:], *command, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for setting in SETTINGS:
        assert setting.flag in help_text


def test_exposes_the_default_ports_and_has_oci_labels() -> None:
    final = stages()[-1]
    exposed = {p for w, rest in final if w == "EXPOSE" for p in rest.split()}
    defaults = {s.name: s.default for s in SETTINGS}
    assert {defaults["ocpp_port"], defaults["api_port"]} <= exposed
    labels = " ".join(rest for w, rest in final if w == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_copy_sources_exist_in_the_build_context() -> None:
    for word, rest in instructions():
        if word != "COPY" or rest.startswith("--from="):
            continue
        *sources, _dest = shlex.split(rest)
        for source in sources:
            if "*" in source:
                continue
            assert (REPO / source).exists(), f"COPY {source}: not in the repository root (the build context)"
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text()
    assert "!csms/**" in ignore and "!cluster/**" in ignore and "!pyproject.toml" in ignore


def test_every_shipped_package_is_copied_into_the_image() -> None:
    """A new top-level package (pyproject's package list) missing from the image fails at import, in production."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {shlex.split(rest)[0] for word, rest in instructions() if word == "COPY" and not rest.startswith("--")}
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text()
    for package in packages:
        assert package in copied, f"deploy/Dockerfile does not COPY {package}"
        assert f"!{package}/**" in ignore, f"deploy/Dockerfile.dockerignore leaves {package} out of the context"


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _server(status: int) -> Iterator[int]:
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_tells_healthy_from_unhealthy(status: int, healthy: bool) -> None:
    healthcheck = last(stages()[-1], "HEALTHCHECK")
    command = exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[0] == "python" and "/healthz" in command[-1] and "urllib" in command[-1]
    with _server(status) as port:
        env = {**os.environ, "CSMS_API_PORT": str(port)}
        result = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=20)
    assert (result.returncode == 0) is healthy, result.stderr.decode()[-500:]
