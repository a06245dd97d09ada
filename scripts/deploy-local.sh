#!/usr/bin/env bash
# Deploy the whole service on this machine: ansible/site.yml with inventory/local, into
# the local cluster's systemd containers (a head and two job nodes, scripts/start-local-cluster.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$GXNB_ROOT"
state="$GXNB_ROOT/.deploy-local"
mkdir -p "$state/cache"
chmod 700 "$state"

# With the benchmarks' few packages: they run right after a deploy (docs/benchmarks.md).
GXNB_EXTRAS="${GXNB_EXTRAS:-deploy,bench}" scripts/host-setup.sh
gxnb_load_facts
scripts/start-docker-engine.sh

# The notebook image (the inventory's variant; GXNB_NOTEBOOK_VARIANT overrides it) is built
# here once and handed to the job nodes as a `docker save` archive with its image ID beside it.
variant="${GXNB_NOTEBOOK_VARIANT:-$GXNB_FACT_IMAGE_VARIANT}"
scripts/build-base-images.sh
scripts/build-notebook-image.sh "$variant"
image_archive="$state/cache/notebook-image.tar"
gxnb_save_image_archive "$GXNB_FACT_IMAGE_REPOSITORY:$variant" "$image_archive"

extra=(-e "gxnb_notebook_image_variant=$variant")
scripts/start-local-cluster.sh
# Job nodes made on demand: the helper that starts and stops their containers for Slurm (those
# nodes only: the head may ask it for nothing else).
if [ "$GXNB_FACT_NODE_DRIVER" = local ] && [ -n "$GXNB_FACT_NODES_ON_DEMAND" ]; then
  head="$(awk '$4 == "head" {print $1; exit}' <<< "$GXNB_FACT_LOCAL_CONTAINERS")"
  read -ra on_demand <<< "$GXNB_FACT_NODES_ON_DEMAND"
  python3 scripts/local-nodes-helper.py start --socket-dir "$state/node-helper" --head "$head" \
    "${on_demand[@]/#/--node=}"
fi

# Secrets are generated once each, kept out of the repository (git-ignored, 0600); one
# added by a newer version of this script is appended to an existing file.
secrets="$state/secrets.yml"
(umask 077; touch "$secrets")
add_secret() {  # NAME PYTHON-EXPRESSION
  grep -q "^$1:" "$secrets" || echo "$1: \"$(python3 -c "import secrets; print($2)")\"" >> "$secrets"
}
add_secret galaxy_admin_password 'secrets.token_urlsafe(18)'
add_secret galaxy_bootstrap_admin_api_key 'secrets.token_hex(24)'
add_secret galaxy_id_secret 'secrets.token_hex(24)'  # encodes ids in Galaxy's URLs and API (Blowfish: 56 characters at most)
add_secret gxnb_slurm_munge_key 'secrets.token_urlsafe(48)'  # munge's key, shared by the cluster's hosts
add_secret gxnb_database_password 'secrets.token_hex(24)'  # Galaxy's PostgreSQL account
add_secret gxnb_broker_password 'secrets.token_hex(24)'  # Celery's broker (Redis)

export ANSIBLE_CONFIG="$GXNB_ROOT/ansible/ansible.cfg"
"$GXNB_ROOT/.venv/bin/ansible-playbook" -i "$GXNB_INVENTORY" ansible/site.yml -e "@$secrets" "${extra[@]}" "$@"
