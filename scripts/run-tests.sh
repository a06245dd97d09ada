#!/usr/bin/env bash
# Every test, sharing one local deployment:
#   1 lint (ansible-lint, yamllint, ruff, terraform fmt, tool XSD, TPV lint/dry-run), unit and Terraform tests
#   2 the notebook image (cpu variant) built on the host engine, tests inside it, publish to a local registry
#   3 make deploy-local, then a second run that must change nothing
#   4 end-to-end tests against the deployment, Molecule scenarios
# GXNB_SKIP_IMAGE=1 skips stage 2; GXNB_SKIP_DEPLOY=1 skips stages 3 and 4.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
export GXNB_EXTRAS=deploy,test
scripts/host-setup.sh
py="$here/.venv/bin/python"
results="$here/.deploy-local/test-results"
mkdir -p "$results"

stage() { printf '\n===== %s (%s) =====\n' "$1" "$(date +%H:%M:%S)"; }

stage "lint and unit tests"
"$py" -m pytest -q tests/lint tests/unit tests/terraform

if [ "${GXNB_SKIP_IMAGE:-0}" != 1 ]; then
  stage "notebook image: build (cpu), tests inside it, publish"
  scripts/build-notebook-image.sh cpu
  "$py" tests/benchmarks/image_size.py cpu || true
  "$py" -m pytest -q tests/image
fi

if [ "${GXNB_SKIP_DEPLOY:-0}" = 1 ]; then exit 0; fi

stage "deploy (first run)"
scripts/deploy-local.sh | tee "$results/deploy-1.log" | grep -E '^(TASK|PLAY|ok|changed|fatal|failed)|: ok=' | grep -vE '^ok:' || true
grep -qE 'failed=0' "$results/deploy-1.log" || { tail -60 "$results/deploy-1.log"; exit 1; }

stage "deploy (second run must change nothing)"
scripts/deploy-local.sh > "$results/deploy-2.log" 2>&1 || { tail -60 "$results/deploy-2.log"; exit 1; }
"$py" tests/support/check_idempotent.py "$results/deploy-2.log"

stage "end-to-end and Molecule tests"
"$py" -m pytest -q tests/e2e tests/molecule
