"""A cluster without CSMS_INTERNAL_SECRET cannot start; the dev launcher makes an independent one."""

from __future__ import annotations

import os
import subprocess
import sys

from devcluster.launcher import replica_env


def test_serve_with_etcd_and_no_internal_secret_exits_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env |= {
        "CSMS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CSMS_ETCD_ENDPOINTS": "http://127.0.0.1:1",
    }
    done = subprocess.run([sys.executable, "-m", "csms", "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "CSMS_INTERNAL_SECRET" in lines[0] and "CSMS_ETCD_ENDPOINTS" in lines[0]


def test_dev_launcher_secret_is_random_and_independent_of_the_api_token() -> None:
    token = "dev-token-abcdefgh"
    first = replica_env(token, "postgresql://x", "http://127.0.0.1:2379")["CSMS_INTERNAL_SECRET"]
    second = replica_env(token, "postgresql://x", "http://127.0.0.1:2379")["CSMS_INTERNAL_SECRET"]
    assert first != second
    assert token not in first and len(first) >= 32
