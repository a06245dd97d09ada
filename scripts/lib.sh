# Shared helpers of the harness scripts: `source "$(dirname "$0")/lib.sh"`.
#   GXNB_ROOT                 the repository root
#   gxnb_load_facts           the service's facts, read from the Ansible variables (once)
#   gxnb_save_image_archive   `docker save` an image unless the archive already holds it
# Images the scripts build from Debian packages (Molecule's platforms use the systemd one).
# shellcheck shell=bash disable=SC2034 # the variables are read by the scripts that source this file
GXNB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GXNB_BASE_IMAGE="${BASE_IMAGE:-gxnb/debian-base:${DEBIAN_SUITE:-bookworm}}"
GXNB_SYSTEMD_IMAGE="${SYSTEMD_IMAGE:-gxnb/debian-systemd:${DEBIAN_SUITE:-bookworm}}"
GXNB_INVENTORY="${GXNB_INVENTORY:-$GXNB_ROOT/inventory/local}"

# Exports the facts below as GXNB_FACT_<NAME>, taken from the inventory's Ansible variables
# (ansible/group_vars/all + $GXNB_INVENTORY) for its first Galaxy server: the same values
# the playbooks use. Ansible is asked once per script tree: child scripts inherit them.
gxnb_load_facts() {
  [ "${GXNB_FACTS_INVENTORY:-}" = "$GXNB_INVENTORY" ] && return 0
  # The local inventory reads it (gxnb_local_gpus_per_node); a typo would quietly give nodes no GPU.
  if [ -n "${GXNB_LOCAL_GPUS_PER_NODE:-}" ] && ! [[ "$GXNB_LOCAL_GPUS_PER_NODE" =~ ^([0-9]|1[0-6])$ ]]; then
    echo "GXNB_LOCAL_GPUS_PER_NODE=$GXNB_LOCAL_GPUS_PER_NODE: fake GPUs per job node must be a whole number from 0 to 16" >&2
    return 2
  fi
  local python="$GXNB_ROOT/.venv/bin/python"
  [ -x "$python" ] || GXNB_EXTRAS="${GXNB_EXTRAS:-deploy}" "$GXNB_ROOT/scripts/host-setup.sh" >&2
  local assignments
  assignments="$("$python" "$GXNB_ROOT/scripts/service_facts.py" --inventory "$GXNB_INVENTORY" --shell)" \
    || { echo "could not read the service's facts from $GXNB_INVENTORY" >&2; return 1; }
  eval "$assignments"
  export GXNB_FACTS_INVENTORY="$GXNB_INVENTORY"
}

# `docker save` IMAGE to FILE, with its image ID in FILE.id, unless FILE already holds it.
gxnb_save_image_archive() {
  local image="$1" file="$2" id
  id="$(docker image inspect -f '{{.Id}}' "$image")"
  [ -s "$file" ] && [ "$(cat "$file.id" 2>/dev/null)" = "$id" ] && return 0
  echo "saving $image to $file ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f GB", $1/1e9}')) ..."
  docker save -o "$file.tmp" "$image"
  mv "$file.tmp" "$file"
  echo "$id" > "$file.id"
}
