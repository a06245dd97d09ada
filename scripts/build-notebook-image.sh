#!/usr/bin/env bash
# Build the notebook image on this host's Docker engine (with progress):
#   scripts/build-notebook-image.sh [VARIANT]      VARIANT: cpu | gpu (default: the inventory's)
# Tags <repository>:<VARIANT>, the repository being the inventory's gxnb_notebook_image_repository
# (IMAGE_REPOSITORY overrides it).
#   GXNB_INVENTORY=...      inventory whose facts are read (default inventory/local)
#   BASE_IMAGE=...          base image (default: the locally built Debian base)
#   WITH_COLABFOLD=true     adds ColabFold
#   REBUILD=1               rebuild even if the image is up to date
# The image carries a hash of its build context (label gxnb.context-hash): an
# image built from the same container/ files (and arguments) is kept as it is.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
here="$GXNB_ROOT"
variant="${1:-}"
case "$variant" in
  cpu|gpu|"") ;;
  *) echo "build-notebook-image: unknown variant '$variant'; allowed: cpu, gpu" >&2; exit 2 ;;
esac
gxnb_load_facts
variant="${variant:-$GXNB_FACT_IMAGE_VARIANT}"
repository="${IMAGE_REPOSITORY:-$GXNB_FACT_IMAGE_REPOSITORY}"
base="$GXNB_BASE_IMAGE"
image="$repository:$variant"

"$here/scripts/start-docker-engine.sh" >/dev/null
# What container/.dockerignore leaves out of the context is left out of the hash too.
context_hash="$( (cd "$here/container" && find . -type f -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' \
  -not -path '*.egg-info/*' -not -path './build/*' -print0 | sort -z \
  | xargs -0 sha256sum; echo "$base $variant ${WITH_COLABFOLD:-false}") | sha256sum | cut -c1-16)"
current="$(docker image inspect -f '{{index .Config.Labels "gxnb.context-hash"}}' "$image" 2>/dev/null || true)"
if [ "${REBUILD:-0}" != 1 ] && [ "$current" = "$context_hash" ]; then
  echo "notebook image $image: up to date ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.2f GB", $1/1e9}'))"
  exit 0
fi
docker image inspect "$base" >/dev/null 2>&1 || "$here/scripts/build-base-images.sh"
echo "notebook image $image: building from $base (the cpu/gpu package sets take minutes) ..."
start=$(date +%s)
log="${GXNB_BUILD_LOG:-$here/.deploy-local/build-$variant.log}"
mkdir -p "$(dirname "$log")"
docker build --build-arg "BASE_IMAGE=$base" --build-arg "VARIANT=$variant" \
  --build-arg "WITH_COLABFOLD=${WITH_COLABFOLD:-false}" \
  --label "gxnb.context-hash=$context_hash" \
  --label "org.opencontainers.image.revision=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$image" "$here/container" 2>&1 | tee "$log" | sed -u 's/^/  build: /' \
  | grep --line-buffered -E '^  build: (Step|Successfully (built|tagged)|installing)|Downloading .*\([0-9.]+ MB\)' || true
# A failed build leaves the tag on the image before it: the label says which one is there.
built="$(docker image inspect -f '{{index .Config.Labels "gxnb.context-hash"}}' "$image" 2>/dev/null || true)"
if [ "$built" != "$context_hash" ]; then
  tail -40 "$log" >&2
  echo "notebook image $image: build failed (full log: $log)" >&2
  exit 1
fi
echo "notebook image $image: built in $(( $(date +%s) - start )) s, $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.2f GB", $1/1e9}')"
