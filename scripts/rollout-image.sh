#!/usr/bin/env bash
# Roll a notebook image out to the local deployment (ansible/rollout_image.yml), or back:
#   scripts/rollout-image.sh TAG [SOURCE_IMAGE] [ansible-playbook options]
#       TAG           registry tag to roll out (e.g. 1.0.1-cpu)
#       SOURCE_IMAGE  a built image on this host to test and push as TAG first (e.g. gxnb/jupyterlab-ai:cpu)
#   scripts/rollout-image.sh --rollback [ansible-playbook options]
# Starts the local registry (Debian's docker-registry on the host engine's bridge gateway,
# the inventory's gxnb_registry) when it is not running. The summary is also written to
# .deploy-local/rollout-summary.json.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
here="$GXNB_ROOT"
cd "$here"
state="$here/.deploy-local"
[ -s "$state/secrets.yml" ] || { echo "rollout: no local deployment here (run make deploy-local first)" >&2; exit 1; }

gxnb_load_facts
GXNB_REGISTRY_ADDR="$GXNB_FACT_REGISTRY" GXNB_REGISTRY_STORAGE="$state/registry" scripts/start-local-registry.sh

export ANSIBLE_CONFIG="$here/ansible/ansible.cfg"
playbook=(.venv/bin/ansible-playbook -i "$GXNB_INVENTORY" -e "@$state/secrets.yml")
if [ "${1:-}" = --rollback ]; then
  shift
  exec "${playbook[@]}" ansible/rollback_image.yml "$@"
fi
tag="${1:-}"
[ -n "$tag" ] || { echo "usage: scripts/rollout-image.sh TAG [SOURCE_IMAGE] | --rollback" >&2; exit 2; }
shift
source_image=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then source_image="$1"; shift; fi
rm -f "$state/rollout-summary.json"
exec "${playbook[@]}" ansible/rollout_image.yml -e "rollout_tag=$tag" -e "rollout_source_image=$source_image" \
  -e "rollout_summary_file=$state/rollout-summary.json" "$@"
