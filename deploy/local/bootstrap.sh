#!/usr/bin/env bash
# Prepares a checkout to run or test, sourced with the purpose as its argument:
#   source deploy/local/bootstrap.sh run    # what running needs: the package alone, Postgres and etcd servers
#   source deploy/local/bootstrap.sh test   # everything: the dev and bench extras, and promtool for alert tests
# Debian packages are installed when we may (root with apt-get), else it names the ones to install.
# Idempotent and quiet when there is nothing to do.
set -euo pipefail
purpose="${1:-test}"
case "$purpose" in
  run | test) ;;
  *) echo "bootstrap: unknown purpose '$purpose' (run or test)" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

need_apt=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
if ! command -v etcd >/dev/null 2>&1; then
  need_apt+=(etcd-server)
fi
if [ "$purpose" = test ] && ! command -v promtool >/dev/null 2>&1; then
  need_apt+=(prometheus)  # only for promtool (`check rules`, `test rules`); its service never starts
fi
# Test side: the exporter tests run a real JetStream server (nats-server -js).
if [ "$purpose" = test ] && ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  need_apt+=(nats-server)
fi
# Test side: the console's browser tests drive Debian's chromium with Playwright (never `playwright install`).
if [ "$purpose" = test ] && ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${need_apt[*]} (Debian packages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # policy-rc.d keeps Debian from starting system-wide services we never use.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "bootstrap: missing ${need_apt[*]}; install them (Debian: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
hash=$(cat pyproject.toml deploy/local/bootstrap.sh | sha1sum | cut -c1-12)
# A test install is a superset of a run install, so either stamp satisfies `run`.
if [ ! -f ".venv/.installed-test-$hash" ] && { [ "$purpose" = test ] || [ ! -f ".venv/.installed-run-$hash" ]; }; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ "$purpose" = test ]; then
    .venv/bin/python -m pip install -q -e '.[dev,bench]'
  else
    .venv/bin/python -m pip install -q -e .
  fi
  rm -f .venv/.installed-* && touch ".venv/.installed-$purpose-$hash"
fi
export PATH="$root/.venv/bin:$PATH"
