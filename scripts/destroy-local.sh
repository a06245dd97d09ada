#!/usr/bin/env bash
# Remove the local deployment, so that the next `make deploy-local` starts from nothing: the
# cluster's containers and their volumes (Galaxy's folder, the job nodes' Docker engines), its
# network, the node helper and the local registry with its blobs, and what the deploy wrote
# into .deploy-local (endpoints, the local CA, test results).
#   make destroy-local                         keeps .deploy-local/secrets.yml and the image cache
#   GXNB_DESTROY_ALL=1 make destroy-local      removes those too (new secrets, images saved anew)
# The images built on this machine (gxnb/*) stay in its Docker engine: they are a build cache.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
gxnb_load_facts
state="$GXNB_ROOT/.deploy-local"
network="${GXNB_LOCAL_NETWORK_NAME:-gxnb-local}"

if [ -d "$state/node-helper" ]; then
  python3 "$GXNB_ROOT/scripts/local-nodes-helper.py" stop --socket-dir "$state/node-helper"
fi

if docker info >/dev/null 2>&1; then
  while read -r name _address _gpus kind; do
    [ -n "$name" ] || continue
    if docker inspect "$name" >/dev/null 2>&1; then
      docker rm -f -v "$name" >/dev/null
      echo "removed container $name"
    fi
    volumes=()
    [ "$kind" = node ] && volumes+=("$name-docker")
    for volume in "${volumes[@]}"; do
      docker volume rm "$volume" >/dev/null 2>&1 && echo "removed volume $volume"
    done
  done <<< "$GXNB_FACT_LOCAL_CONTAINERS"
  docker volume rm gxnb-local-galaxy >/dev/null 2>&1 && echo "removed volume gxnb-local-galaxy"
  docker network rm "$network" >/dev/null 2>&1 && echo "removed network $network"
else
  echo "no Docker engine answers: no containers, volumes or network to remove"
fi

# The registry rollouts push to (scripts/start-local-registry.sh), and its blobs.
if [ -f "$state/registry/registry.pid" ]; then
  pid="$(cat "$state/registry/registry.pid")"
  if kill -0 "$pid" 2>/dev/null && grep -q docker-registry "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" && echo "stopped the registry (pid $pid)"
  fi
fi

keep=(secrets.yml cache)
[ "${GXNB_DESTROY_ALL:-0}" = 1 ] && keep=()
if [ -d "$state" ]; then
  for entry in "$state"/* "$state"/.[!.]*; do
    [ -e "$entry" ] || continue
    name="$(basename "$entry")"
    [[ " ${keep[*]} " == *" $name "* ]] && continue
    rm -rf "$entry"
  done
fi
echo "local deployment removed$([ ${#keep[@]} -gt 0 ] && echo "; kept .deploy-local/{$(IFS=,; echo "${keep[*]}")}")"
