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

extra=()
if [ "${GXNB_TARGET:-node}" = host ]; then
  extra+=(-e ansible_connection=local)
else
  scripts/build-base-images.sh
  # The node's own Docker engine builds the notebook image from this base.
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
