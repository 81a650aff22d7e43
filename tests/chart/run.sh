#!/usr/bin/env bash
# Renders and lints charts/tributary with the real Helm engine (PyPI helm-python-sdk, Helm v4
# Go SDK) over a matrix of values and validates every rendered manifest against the Kubernetes
# OpenAPI schemas (kubernetes-validate --strict). Idempotent: creates tests/chart/.venv on first
# use. Exits non-zero on failure; prints pytest's summary line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
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
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" test_chart.py test_argocd_health.py
