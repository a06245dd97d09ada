#!/usr/bin/env bash
# Every test, sharing one local deployment:
#   1 lint (ansible-lint, yamllint, ruff, terraform fmt, tool XSD, TPV lint/dry-run), unit and Terraform tests
#   2 the notebook image (cpu variant) built on the host engine
#   3 make deploy-local, then a second run that must change nothing; meanwhile the image tests run
#     inside the built image (and publish to a local registry) in the background
#   4 end-to-end tests against the deployment, once the image tests have ended
# Each role's Molecule scenario needs only the Docker engine and the systemd base image: they
# run one after another in the background from the start, beside stages 1-4 (their instances
# are containers of their own), and their result is printed and counted at the end.
# Background work goes where the foreground leaves the CPUs idle: the deploy waits on downloads
# and on Galaxy for minutes (docs/benchmarks.md, "CI time").
# GXNB_SKIP_IMAGE=1 skips the image tests; GXNB_SKIP_DEPLOY=1 skips stages 3 and 4 and Molecule
# (the image tests then run in the foreground).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
export GXNB_EXTRAS=deploy,test
scripts/host-setup.sh
py="$here/.venv/bin/python"
results="$here/.deploy-local/test-results"
mkdir -p "$results"

stage() { printf '\n===== %s (%s) =====\n' "$1" "$(date +%H:%M:%S)"; }

molecule_pid=''
molecule_events_pid=''
if [ "${GXNB_SKIP_DEPLOY:-0}" != 1 ]; then
  scripts/start-docker-engine.sh >/dev/null
  scripts/build-base-images.sh
  stage "Molecule scenarios: started in the background (log: $results/molecule.log)"
  # Molecule yields the CPUs to the foreground stages, which are the run's critical path: it has
  # only to end before the end-to-end tests do. Its host side (Ansible, testinfra) runs at nice
  # 10, its instances with a quarter of the CPU weight of other containers (the local cluster).
  docker events --filter type=container --filter event=start --filter label=owner=molecule \
    --format '{{.ID}}' > >(while read -r id; do docker update --cpu-shares 256 "$id" >/dev/null || true; done) &
  molecule_events_pid=$!
  nice -n 10 "$py" -m pytest -q -p no:cacheprovider tests/molecule > "$results/molecule.log" 2>&1 &
  molecule_pid=$!
  # A stage that fails ends the script: stop the scenarios with it.
  stop_background() {
    for pid in $molecule_pid ${image_pid:-} $molecule_events_pid; do kill "$pid" 2>/dev/null || true; done
  }
  trap stop_background EXIT
fi

stage "lint and unit tests"
# Three workers (pytest-xdist): most of these tests wait on a subprocess (ansible-playbook,
# terraform, tpv); the Terraform tests take a lock per module folder (they init the same folders).
"$py" -m pytest -q -n 3 --dist loadgroup tests/lint tests/unit tests/terraform

image_tests=("$py" -m pytest -q -p no:cacheprovider --durations=5 tests/image)
image_pid=
if [ "${GXNB_SKIP_IMAGE:-0}" != 1 ] || [ "${GXNB_SKIP_DEPLOY:-0}" != 1 ]; then
  stage "notebook image: build (cpu)"
  scripts/build-notebook-image.sh cpu
  "$py" tests/benchmarks/image_size.py cpu || true
fi
if [ "${GXNB_SKIP_IMAGE:-0}" != 1 ] && [ "${GXNB_SKIP_DEPLOY:-0}" = 1 ]; then
  stage "notebook image: tests inside it, publish"
  "${image_tests[@]}"
elif [ "${GXNB_SKIP_IMAGE:-0}" != 1 ]; then
  stage "notebook image: tests inside it, publish: started in the background (log: $results/image-tests.log)"
  "${image_tests[@]}" > "$results/image-tests.log" 2>&1 &
  image_pid=$!
fi

if [ "${GXNB_SKIP_DEPLOY:-0}" = 1 ]; then exit 0; fi

stage "deploy (first run)"
scripts/deploy-local.sh | tee "$results/deploy-1.log" | grep -E '^(TASK|PLAY|ok|changed|fatal|failed)|: ok=' | grep -vE '^ok:' || true
# Every host's recap must say failed=0 and unreachable=0.
if ! grep -qE ': ok=[0-9]+ +changed=' "$results/deploy-1.log" \
  || grep -qE '(failed|unreachable)=[1-9]' "$results/deploy-1.log"; then
  tail -60 "$results/deploy-1.log"
  exit 1
fi

stage "deploy (second run must change nothing)"
scripts/deploy-local.sh > "$results/deploy-2.log" 2>&1 || { tail -60 "$results/deploy-2.log"; exit 1; }
"$py" tests/support/check_idempotent.py "$results/deploy-2.log"

if [ -n "$image_pid" ]; then
  stage "notebook image: tests inside it, publish (running since the build)"
  image_status=0
  wait "$image_pid" || image_status=$?
  image_pid=
  cat "$results/image-tests.log"
  [ "$image_status" = 0 ] || exit "$image_status"
fi

stage "end-to-end tests"
e2e_status=0
"$py" -m pytest -q --durations=15 tests/e2e || e2e_status=$?  # the slowest tests: where CI time goes

stage "Molecule scenarios (running since the start)"
molecule_status=0
wait "$molecule_pid" || molecule_status=$?
molecule_pid=
kill "$molecule_events_pid" 2>/dev/null || true
cat "$results/molecule.log"
[ "$e2e_status" = 0 ] && [ "$molecule_status" = 0 ]
