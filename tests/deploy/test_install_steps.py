"""deploy/README.md's install steps, walked as written: the Secrets they create, the values files they write and
the `helm install` commands they run. Every Secret and key the rendered manifests reference must exist."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, REPO, Rendered, helm_run

README = REPO / "deploy" / "README.md"
TLS_KEYS = {"tls.crt", "tls.key"}


def _code_blocks(text: str) -> Iterator[tuple[str, str]]:
    for match in re.finditer(r"^ *```(\w+)\n(.*?)^ *```", text, re.MULTILINE | re.DOTALL):
        lines = match.group(2).splitlines()
        indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
        yield match.group(1), "\n".join(line[indent:] for line in lines) + "\n"


def _shell_lines() -> list[list[str]]:
    return [
        shlex.split(line)
        for lang, code in _code_blocks(README.read_text())
        if lang == "sh"
        for line in code.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def created_secrets() -> dict[tuple[str, str], set[str]]:
    """(namespace, name) -> keys, from every `kubectl -n NS create secret ...` line."""
    secrets: dict[tuple[str, str], set[str]] = {}
    for argv in _shell_lines():
        if argv[:1] != ["kubectl"] or "secret" not in argv or "create" not in argv:
            continue
        namespace = argv[argv.index("-n") + 1]
        kind, name = argv[argv.index("secret") + 1 : argv.index("secret") + 3]
        if kind == "tls":
            keys = set(TLS_KEYS)
        else:
            keys = {a.split("=", 2)[1] for a in argv if a.startswith(("--from-literal=", "--from-file="))}
        secrets[(namespace, name)] = keys
    return secrets


def values_files(tmp: Path) -> dict[str, Path]:
    """Every yaml block that starts with `# values-*.yaml`, written where `helm install -f` finds it."""
    found: dict[str, Path] = {}
    for lang, code in _code_blocks(README.read_text()):
        first = code.splitlines()[0]
        if lang == "yaml" and re.fullmatch(r"# values-[\w-]+\.yaml", first):
            path = tmp / first[2:]
            path.write_text(code)
            found[first[2:]] = path
    return found


def installs() -> list[list[str]]:
    return [argv for argv in _shell_lines() if argv[:2] == ["helm", "install"]]


def _render(helm: str, argv: list[str], files: dict[str, Path]) -> tuple[str, Rendered]:
    release, chart = argv[2], argv[3]
    assert (REPO / chart).resolve() == CHART
    namespace = argv[argv.index("-n") + 1]
    args = ["template", release, str(CHART), "-n", namespace]
    for i, arg in enumerate(argv):
        if arg == "-f":
            assert argv[i + 1] in files, f"{argv[i + 1]} is used but never written in deploy/README.md"
            args += ["-f", str(files[argv[i + 1]])]
    docs = [d for d in yaml.safe_load_all(helm_run(helm, args)) if d]
    return namespace, Rendered(docs)


def references(rendered: Rendered) -> Iterator[tuple[str, str, str | None, bool]]:
    """(where, secret name, key or None for the whole Secret, optional) for every Secret a pod uses."""
    for doc in rendered.docs:
        template = doc.get("spec", {}).get("template", {}).get("spec")
        if doc["kind"] == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        if not template:
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        for container in template.get("initContainers", []) + template["containers"]:
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    yield f"{where} env {var['name']}", ref["name"], ref["key"], bool(ref.get("optional"))
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    yield f"{where} envFrom", source["secretRef"]["name"], None, bool(source.get("optional"))
        for volume in template.get("volumes", []):
            secret = volume.get("secret")
            if not secret:
                continue
            keys = [item["key"] for item in secret.get("items", [])] or [None]
            for key in keys:
                yield f"{where} volume {volume['name']}", secret["secretName"], key, bool(secret.get("optional"))


def _file_settings(rendered: Rendered) -> dict[str, str]:
    data: dict[str, str] = {}
    for cm in rendered.all("ConfigMap"):
        data.update({k: v for k, v in cm.get("data", {}).items() if k.startswith("CSMS_") and k.endswith("_FILE")})
    return data


def _mounted_files(rendered: Rendered) -> dict[str, tuple[str, str]]:
    """A file path the replicas read -> (Secret, key) it comes from."""
    pod = rendered.deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v.get("secret") for v in pod["volumes"]}
    files: dict[str, tuple[str, str]] = {}
    for mount in pod["containers"][0].get("volumeMounts", []):
        secret = volumes.get(mount["name"])
        if secret:
            for path in _file_settings(rendered).values():
                if path.startswith(mount["mountPath"] + "/"):
                    files[path] = (secret["secretName"], path.removeprefix(mount["mountPath"] + "/"))
    return files


def _check(helm: str, argv: list[str], files: dict[str, Path]) -> list[str]:
    namespace, rendered = _render(helm, argv, files)
    available = {name: keys for (ns, name), keys in created_secrets().items() if ns == namespace}
    for secret in rendered.all("Secret"):
        available[secret["metadata"]["name"]] = set(secret.get("data", {})) | set(secret.get("stringData", {}))
    missing = []
    for where, name, key, optional in references(rendered):
        if optional:
            continue
        if name not in available:
            missing.append(f"{where}: Secret {name} is never created")
        elif key is not None and key not in available[name]:
            missing.append(f"{where}: Secret {name} has no key {key} (has {sorted(available[name])})")
    for path, (name, key) in _mounted_files(rendered).items():
        if key not in available.get(name, set()):
            missing.append(f"the replicas read {path}, but Secret {name} has no key {key}")
    return missing


def test_the_readme_has_install_steps_to_walk(tmp_path: Path) -> None:
    assert len(installs()) >= 2, "one install with the chart's etcd, one with an external etcd"
    assert {"values-prod.yaml", "values-external-etcd.yaml"} <= set(values_files(tmp_path))
    assert len(created_secrets()) >= 4


@pytest.mark.parametrize("index", range(2))
def test_every_referenced_secret_and_key_is_created(helm: str, tmp_path: Path, index: int) -> None:
    argv = installs()[index]
    assert not _check(helm, argv, values_files(tmp_path)), "\n".join(_check(helm, argv, values_files(tmp_path)))


def test_the_walk_catches_a_secret_the_steps_forget(helm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the check: drop the etcd CA Secret from the steps and the external-etcd install must fail it."""
    real = created_secrets()
    monkeypatch.setitem(globals(), "created_secrets", lambda: {k: v for k, v in real.items() if k[1] != "etcd-ca"})
    external = next(argv for argv in installs() if "values-external-etcd.yaml" in argv)
    assert any("etcd-ca" in problem for problem in _check(helm, external, values_files(tmp_path)))


def _minimum(constraint: str) -> tuple[int, int]:
    match = re.search(r">=\s*(\d+)\.(\d+)", constraint)
    assert match, constraint
    return int(match.group(1)), int(match.group(2))


def test_kube_version_agrees_with_the_templates_and_the_docs(helm: str, tmp_path: Path) -> None:
    chart: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    minimum = _minimum(chart["kubeVersion"])
    _, rendered = _render(helm, installs()[0], values_files(tmp_path))
    if "matchLabelKeys" in yaml.safe_dump_all(rendered.docs):
        assert minimum >= (1, 27), "topologySpreadConstraints.matchLabelKeys needs Kubernetes 1.27"
    documented = re.search(r"Kubernetes ≥ (\d+)\.(\d+)", README.read_text())
    assert documented and (int(documented.group(1)), int(documented.group(2))) == minimum
    from tests.deploy.test_helm_chart import K8S_VERSIONS

    assert K8S_VERSIONS[0] == f"{minimum[0]}.{minimum[1]}", "validate against the oldest version the chart allows"
