#!/usr/bin/env bash
# Smoke run of the benchmark harness (issue 7) against Tributary and the ceiling only: every
# scenario for half a second with little data, no npm. It fails when the harness or a server
# fails (start-up, a refused write, a read-back checksum mismatch), never on speed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="${TRIBUTARY_CACHE_DIR:-$HOME/.cache/tributary}/target"
fi
export CARGO_TERM_COLOR=never
PROFILE=${BENCH_SMOKE_PROFILE:-debug}
if [ "$PROFILE" = release ]; then
  cargo build --release -p tributary -p tributary-bench
else
  cargo build -p tributary -p tributary-bench
fi
BIN="$CARGO_TARGET_DIR/$PROFILE"
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
timeout 120 "$BIN/tributary-bench" --smoke --targets tributary,ceiling \
  --tributary-bin "$BIN/tributary" --scratch "$SCRATCH" --out "$SCRATCH/report.md" >/dev/null
grep -q "checksum of all 2000 records matches" "$SCRATCH/report.md"
echo "bench smoke: ok"
