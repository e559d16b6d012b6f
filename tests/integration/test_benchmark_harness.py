"""The benchmark harness cleans up after itself: a benchmark's Postgres data is removed after use."""

from __future__ import annotations

import pytest

from benchmarks import harness

pytestmark = pytest.mark.integration


def test_the_benchmark_postgres_leaves_no_data_behind() -> None:
    with harness.postgres() as pg:
        pg.create_database("bench_leftover")
        data_dir = pg.data_dir
        assert data_dir.exists()
    assert not data_dir.exists()
