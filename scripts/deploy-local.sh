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

# `docker save` IMAGE to FILE, with its image ID in FILE.id, unless FILE already holds it.
save_image_archive() {
  local image="$1" file="$2" id
  id="$(docker image inspect -f '{{.Id}}' "$image")"
  [ -s "$file" ] && [ "$(cat "$file.id" 2>/dev/null)" = "$id" ] && return 0
  echo "saving $image to $file ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f GB", $1/1e9}')) ..."
  docker save -o "$file.tmp" "$image"
  mv "$file.tmp" "$file"
  echo "$id" > "$file.id"
}

# The notebook image (the inventory's variant, default cpu) is built here once and
# handed to the node as a `docker save` archive with its image ID beside it.
variant="${GXNB_NOTEBOOK_VARIANT:-cpu}"
scripts/build-base-images.sh
scripts/build-notebook-image.sh "$variant"
image_archive="$state/cache/notebook-image.tar"
save_image_archive "gxnb/jupyterlab-ai:$variant" "$image_archive"

extra=(-e "gxnb_notebook_image_variant=$variant")
if [ "${GXNB_TARGET:-node}" = host ]; then
  extra+=(-e ansible_connection=local -e "notebook_image_archive=$image_archive")
else
  # The base image, for nodes that build the notebook image (notebook_image_source: build).
  save_image_archive "${BASE_IMAGE:-gxnb/debian-base:bookworm}" "$state/cache/debian-base.tar"
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
