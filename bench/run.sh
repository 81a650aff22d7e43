#!/usr/bin/env bash
# The full benchmark of issue 7: installs the npm peers (kinesalite, kinesis-local) under
# bench/node_modules, builds release binaries, runs every scenario against Tributary,
# kinesalite, kinesis-mock and the ceiling, and writes the markdown report to
# bench/results/latest.md (also printed). Extra arguments go to tributary-bench, e.g.
#   bench/run.sh --duration 5 --scenarios put-records,get-records
# Takes about 15 minutes on a 2-core machine; the machine should be otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="${TRIBUTARY_CACHE_DIR:-$HOME/.cache/tributary}/target"
fi
export CARGO_TERM_COLOR=never

echo "==> npm peers (bench/package.json, bench/package-lock.json)"
if ! command -v node >/dev/null; then
  echo "node is required for the npm peers (kinesalite, kinesis-mock)" >&2
  exit 1
fi
(cd bench && npm ci --no-audit --no-fund --loglevel=error)

echo "==> cargo build --release"
cargo build --release -p tributary -p tributary-bench

mkdir -p bench/results
echo "==> tributary-bench (node $(node --version), rev $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
"$CARGO_TARGET_DIR/release/tributary-bench" \
  --tributary-bin "$CARGO_TARGET_DIR/release/tributary" \
  --node-modules "$ROOT/bench/node_modules" \
  --out "$ROOT/bench/results/latest.md" \
  "$@"
echo "==> report written to bench/results/latest.md"
