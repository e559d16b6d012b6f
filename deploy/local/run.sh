#!/usr/bin/env bash
# Runs a local cluster on embedded defaults: Postgres, etcd, three `csms serve` replicas and a dev balancer.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" run
exec python -m devcluster "$@"  # dev tooling lives outside the shipped package
