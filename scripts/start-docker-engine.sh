#!/usr/bin/env bash
# Start Debian's dockerd when no Docker engine answers (hosts and CI without
# systemd as PID 1). Idempotent: returns at once when an engine is up.
# Its bridge (--bip) and the registry it may reach over plain HTTP are the inventory's
# gxnb_local_host_bridge and gxnb_registry (inventory/local, or GXNB_INVENTORY).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LOG="${DOCKER_ENGINE_LOG:-/var/log/dockerd-local.log}"

if docker info >/dev/null 2>&1; then
  echo "docker engine: already running"; exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd not installed (apt-get install docker.io)" >&2; exit 1; }
gxnb_load_facts
args=(--storage-driver overlay2)
[ -z "$GXNB_FACT_HOST_BRIDGE" ] || args+=(--bip "$GXNB_FACT_HOST_BRIDGE")
[ -z "$GXNB_FACT_REGISTRY" ] || args+=(--insecure-registry "$GXNB_FACT_REGISTRY")
echo "docker engine: starting dockerd (${args[*]}, log ${LOG})"
nohup setsid dockerd "${args[@]}" >"$LOG" 2>&1 < /dev/null &
for i in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "docker engine: up after ${i}s"; exit 0; fi
  sleep 1
done
echo "docker engine did not answer within 60 s; last log lines:" >&2
tail -20 "$LOG" >&2
exit 1
