#!/usr/bin/env bash
# The whole check: lint, format, types, module boundaries, then every test (real Postgres, etcd, replicas).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/bootstrap.sh" test
if [ -f deploy/tools/get-helm.sh ]; then
  HELM="$(bash deploy/tools/get-helm.sh 2>/dev/null || true)"
  export HELM
fi
ruff check .
ruff format --check .
mypy
lint-imports
vulture  # dead code ([tool.vulture] in pyproject.toml)
exec pytest "$@"
