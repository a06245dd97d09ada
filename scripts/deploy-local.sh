#!/usr/bin/env bash
# Deploy the whole service on this machine: ansible/site.yml with inventory/local,
# into a local systemd "node" container when this host has no systemd as PID 1
# (GXNB_TARGET=host deploys onto this host with a local connection instead).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
state="$here/.deploy-local"
mkdir -p "$state/cache"
chmod 700 "$state"

GXNB_EXTRAS="${GXNB_EXTRAS:-deploy}" scripts/host-setup.sh
scripts/start-docker-engine.sh

# The notebook image (the inventory's variant, default cpu) is built here once and
# handed to the node as a `docker save` archive with its image ID beside it.
variant="${GXNB_NOTEBOOK_VARIANT:-cpu}"
scripts/build-base-images.sh
scripts/build-notebook-image.sh "$variant"
image_archive="$state/cache/notebook-image.tar"
image_id="$(docker image inspect -f '{{.Id}}' "gxnb/jupyterlab-ai:$variant")"
if [ ! -s "$image_archive" ] || [ "$(cat "$image_archive.id" 2>/dev/null)" != "$image_id" ]; then
  echo "notebook image: saving gxnb/jupyterlab-ai:$variant for the node ($(docker image inspect -f '{{.Size}}' "gxnb/jupyterlab-ai:$variant" | awk '{printf "%.1f GB", $1/1e9}')) ..."
  docker save -o "$image_archive.tmp" "gxnb/jupyterlab-ai:$variant"
  mv "$image_archive.tmp" "$image_archive"
  echo "$image_id" > "$image_archive.id"
fi

extra=(-e "gxnb_notebook_image_variant=$variant")
if [ "${GXNB_TARGET:-node}" = host ]; then
  extra+=(-e ansible_connection=local -e "notebook_image_archive=$image_archive")
else
  # The base image, for nodes that build the notebook image (notebook_image_source: build).
  base_archive="$state/cache/debian-base.tar"
  base_id="$(docker image inspect -f '{{.Id}}' "${BASE_IMAGE:-gxnb/debian-base:bookworm}")"
  if [ ! -s "$base_archive" ] || [ "$(cat "$base_archive.id" 2>/dev/null)" != "$base_id" ]; then
    docker save -o "$base_archive" "${BASE_IMAGE:-gxnb/debian-base:bookworm}"
    echo "$base_id" > "$base_archive.id"
  fi
  scripts/start-local-node.sh
fi

# Secrets are generated once, kept out of the repository (git-ignored, 0600).
secrets="$state/secrets.yml"
if [ ! -s "$secrets" ]; then
  umask 077
  cat > "$secrets" <<EOS
galaxy_admin_password: "$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
galaxy_bootstrap_admin_api_key: "$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
EOS
fi

export ANSIBLE_CONFIG="$here/ansible/ansible.cfg"
"$here/.venv/bin/ansible-playbook" -i inventory/local ansible/site.yml -e "@$secrets" "${extra[@]}" "$@"
