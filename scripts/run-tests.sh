#!/usr/bin/env bash
# Every test, sharing one local deployment:
#   1 lint (ansible-lint, yamllint, ruff, terraform fmt, tool XSD, TPV lint/dry-run), unit and Terraform tests
#   2 the notebook image (cpu variant) built on the host engine, tests inside it, publish to a local registry
#   3 make deploy-local, then a second run that must change nothing
#   4 end-to-end tests against the deployment
# Each role's Molecule scenario needs only the Docker engine and the systemd base image: they
# run one after another in the background from the start, beside stages 1-4 (their instances
# are containers of their own), and their result is printed and counted at the end.
# GXNB_SKIP_IMAGE=1 skips stage 2; GXNB_SKIP_DEPLOY=1 skips stages 3 and 4 and Molecule.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
export GXNB_EXTRAS=deploy,test
scripts/host-setup.sh
py="$here/.venv/bin/python"
results="$here/.deploy-local/test-results"
mkdir -p "$results"

stage() { printf '\n===== %s (%s) =====\n' "$1" "$(date +%H:%M:%S)"; }

molecule_pid=
if [ "${GXNB_SKIP_DEPLOY:-0}" != 1 ]; then
  scripts/start-docker-engine.sh >/dev/null
  scripts/build-base-images.sh
  stage "Molecule scenarios: started in the background (log: $results/molecule.log)"
  "$py" -m pytest -q -p no:cacheprovider tests/molecule > "$results/molecule.log" 2>&1 &
  molecule_pid=$!
  # A stage that fails ends the script: stop the scenarios with it.
  trap '[ -n "$molecule_pid" ] && kill "$molecule_pid" 2>/dev/null || true' EXIT
fi

stage "lint and unit tests"
# Three workers (pytest-xdist): most of these tests wait on a subprocess (ansible-playbook,
# terraform, tpv); the Terraform tests share one worker (they init the same module folders).
"$py" -m pytest -q -n 3 --dist loadgroup tests/lint tests/unit tests/terraform

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

stage "end-to-end tests"
e2e_status=0
"$py" -m pytest -q --durations=15 tests/e2e || e2e_status=$?  # the slowest tests: where CI time goes

stage "Molecule scenarios (running since the start)"
molecule_status=0
wait "$molecule_pid" || molecule_status=$?
molecule_pid=
cat "$results/molecule.log"
[ "$e2e_status" = 0 ] && [ "$molecule_status" = 0 ]
