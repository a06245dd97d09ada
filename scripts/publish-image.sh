#!/usr/bin/env bash
# Tag and push a built notebook image, then print its digest:
#   scripts/publish-image.sh --registry HOST:PORT [--variant cpu] [--version V] [--repository R]
# Default repository: the inventory's gxnb_notebook_image_repository (GXNB_INVENTORY, default inventory/local).
# Tags pushed (the scheme, as docker-stacks do it):
#   <registry>/<repository>:<version>-<variant>            e.g. 1.0.0-cpu
#   <registry>/<repository>:<version>-<variant>-<commit>   e.g. 1.0.0-cpu-3f2c1ab (immutable)
#   <registry>/<repository>:<variant>                      moving: newest of that variant
# The source is <repository>:<variant> on this host's engine (scripts/build-notebook-image.sh).
# The last line printed is "digest: <registry>/<repository>@sha256:..." (what rollouts use);
# --digest-file F also writes that reference to F.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
here="$GXNB_ROOT"
registry="" variant=cpu repository="" digest_file=""
version="$(cat "$here/container/VERSION")"
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry="$2"; shift 2 ;;
    --variant) variant="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --repository) repository="$2"; shift 2 ;;
    --digest-file) digest_file="$2"; shift 2 ;;
    *) echo "publish-image: unknown argument '$1' (allowed: --registry, --variant, --version, --repository, --digest-file)" >&2; exit 2 ;;
  esac
done
[ -n "$registry" ] || { echo "publish-image: --registry HOST:PORT is required" >&2; exit 2; }
case "$variant" in cpu|gpu) ;; *) echo "publish-image: unknown variant '$variant'; allowed: cpu, gpu" >&2; exit 2 ;; esac
if [ -z "$repository" ]; then gxnb_load_facts; repository="$GXNB_FACT_IMAGE_REPOSITORY"; fi
[[ "$version" =~ ^[0-9A-Za-z][0-9A-Za-z._-]{0,100}$ ]] || { echo "publish-image: version '$version' is not a valid tag part (letters, digits, . _ -)" >&2; exit 2; }

source_image="$repository:$variant"
docker image inspect "$source_image" >/dev/null 2>&1 \
  || { echo "publish-image: $source_image is not on this host: build it with scripts/build-notebook-image.sh $variant" >&2; exit 1; }
commit="$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$source_image" | cut -c1-7)"
[ -n "$commit" ] && [ "$commit" != "<no val" ] || commit="$(git -C "$here" rev-parse --short=7 HEAD)"

target="$registry/$repository"
tags=("$version-$variant" "$version-$variant-$commit" "$variant")
for tag in "${tags[@]}"; do
  docker tag "$source_image" "$target:$tag"
done
digest=""
for tag in "${tags[@]}"; do
  echo "publish-image: pushing $target:$tag"
  # docker push prints per-layer progress; its last line carries the digest.
  out="$(docker push "$target:$tag" | tee /dev/stderr | tail -1)"
  pushed="$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' <<<"$out")"
  [ -n "$pushed" ] || { echo "publish-image: no digest reported for $target:$tag" >&2; exit 1; }
  if [ -n "$digest" ] && [ "$digest" != "$pushed" ]; then
    echo "publish-image: $target:$tag has digest $pushed, expected $digest" >&2; exit 1
  fi
  digest="$pushed"
done
[ -z "$digest_file" ] || echo "$target@$digest" > "$digest_file"
echo "digest: $target@$digest"
