"""Deployment-check fixtures: a helm binary (or a clear skip) and the chart rendered per values set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.chart import CI_VALUES, Rendered, find_helm, template


@pytest.fixture(scope="session")
def helm() -> str:
    path, why = find_helm()
    if path is None:
        pytest.skip(why)
    return path


_rendered: dict[Path, Rendered] = {}


@pytest.fixture(params=CI_VALUES, ids=[p.name.removesuffix("-values.yaml") for p in CI_VALUES])
def rendered(request: pytest.FixtureRequest, helm: str) -> Rendered:
    """The chart rendered with one of helm/csms/ci/*-values.yaml (rendered once per session)."""
    path: Path = request.param
    if path not in _rendered:
        _rendered[path] = template(helm, [path])
    return _rendered[path]
