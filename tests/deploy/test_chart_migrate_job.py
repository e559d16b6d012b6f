"""The optional pre-upgrade Job runs `csms migrate` with the replicas' image and database credentials."""

from __future__ import annotations

from tests.deploy.chart import CHART, template

EXISTING = CHART / "ci" / "existing-secrets-values.yaml"


def test_no_job_unless_asked(helm: str) -> None:
    assert not template(helm, [CHART / "ci" / "default-values.yaml"]).all("Job")


def test_the_job_migrates_before_an_upgrade_with_the_replicas_image_and_database(helm: str) -> None:
    rendered = template(helm, [EXISTING])
    job = rendered.one("Job", "-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["migrate"] and pod["restartPolicy"] == "Never"
    assert container["image"] == rendered.container["image"]
    env = {v["name"]: v for v in container["env"]}
    replica_env = {v["name"]: v for v in rendered.container["env"]}
    assert env["CSMS_DATABASE_URL"] == replica_env["CSMS_DATABASE_URL"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["spec"]["activeDeadlineSeconds"] > 0, "a stuck migration must not hang the upgrade forever"
    # Its pods are not the replicas': no Service, PDB or spread constraint may select them.
    assert pod["automountServiceAccountToken"] is False
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "migrate"
