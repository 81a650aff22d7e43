#!/usr/bin/env bash
# The whole test suite. Installs what the tests need (Python packages in a venv under
# tests/python/.venv, npm packages under tests/node), then runs lints, unit tests, black-box
# tests with real AWS clients, and the crash test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# Keep builds warm across runs with a target directory outside the checkout.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="${TRIBUTARY_CACHE_DIR:-$HOME/.cache/tributary}/target"
fi
mkdir -p "$CARGO_TARGET_DIR"
# Incremental artefacts only pay off for repeated edits; in CI they cost disk and time.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build"
cargo build --workspace --bins
export TRIBUTARY_BIN="$CARGO_TARGET_DIR/debug/tributary"

step "Python test environment (boto3, AWS CLI, pytest)"
VENV="$ROOT/tests/python/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# Garage is the real S3-compatible server the delivery tests write to. Building it takes about
# 30 CPU-minutes, so the binary is cached in ~/.cargo/bin and built only when missing.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v garage >/dev/null 2>&1; then
  step "Garage (S3-compatible server for the Firehose delivery tests)"
  env -u CARGO_TARGET_DIR cargo install garage --locked
fi

# PostgreSQL plays Redshift in the delivery tests (Debian's package; its binaries live in
# /usr/lib/postgresql/<version>/bin, where the tests look for them).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  && command -v apt-get >/dev/null 2>&1; then
  step "PostgreSQL (Debian postgresql) for the Redshift-destination tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

step "Node test environment (@aws-sdk/client-kinesis)"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  step "promtool (Debian prometheus) for the alert rule checks"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
    || echo "promtool could not be installed; the chart's rule check will say so"
fi

step "cargo test (unit tests, Rust AWS SDK black-box tests, crash test)"
cargo test --workspace -- --test-threads=2

step "pytest (boto3 and AWS CLI black-box tests)"
PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pytest -q tests/python

step "node --test (JavaScript v3 SDK: HTTP/2, SubscribeToShard)"
(cd tests/node && node --test --test-concurrency=1 .)

step "Helm chart checks (helm-python-sdk, kubernetes-validate, promtool)"
tests/chart/run.sh

step "Operator end to end (fake API server, real operator and data-plane processes)"
TRIBUTARY_OPERATOR_BIN="$CARGO_TARGET_DIR/debug/tributary-operator" tests/operator-e2e/run.sh

step "Benchmark smoke run (harness only, no speed assertions)"
tests/bench-smoke.sh

step "All tests passed."
