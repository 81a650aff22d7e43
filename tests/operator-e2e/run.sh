#!/usr/bin/env bash
# End-to-end test of the operator on this machine, no cluster and no Docker: the real
# `tributary-operator` binary runs against a fake Kubernetes API server (fakekube.py); the
# StatefulSets it creates run as real `tributary` processes (kubelet.py); boto3 writes and reads
# through each stream's Service address. See docs/operator.md.
#
# Builds nothing: takes the binaries from $TRIBUTARY_BIN and $TRIBUTARY_OPERATOR_BIN, by default
# $CARGO_TARGET_DIR/debug/... when there, else target/debug/... of this repository. Idempotent: creates
# tests/operator-e2e/.venv on first use. Exits non-zero on failure; prints pytest's summary line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# $CARGO_TARGET_DIR/debug/NAME when it exists there, else this repository's target/debug/NAME.
default_bin() {
  if [[ -n "${CARGO_TARGET_DIR:-}" && -x "$CARGO_TARGET_DIR/debug/$1" ]]; then
    echo "$CARGO_TARGET_DIR/debug/$1"
  else
    echo "$repo/target/debug/$1"
  fi
}
export TRIBUTARY_BIN="${TRIBUTARY_BIN:-$(default_bin tributary)}"
export TRIBUTARY_OPERATOR_BIN="${TRIBUTARY_OPERATOR_BIN:-$(default_bin tributary-operator)}"
for bin in "$TRIBUTARY_BIN" "$TRIBUTARY_OPERATOR_BIN"; do
  if [[ ! -x "$bin" ]]; then
    echo "missing binary: $bin (cargo build -p tributary -p tributary-operator, or set TRIBUTARY_BIN / TRIBUTARY_OPERATOR_BIN)" >&2
    exit 2
  fi
done

venv="$here/.venv"
reqs="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir -r "$reqs"
  echo "$want" > "$stamp"
fi
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" test_operator_e2e.py test_workloads_e2e.py test_cluster_e2e.py
