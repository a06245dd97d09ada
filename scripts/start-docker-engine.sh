#!/usr/bin/env bash
# Start Debian's dockerd when no Docker engine answers (hosts and CI without
# systemd as PID 1). Idempotent: returns at once when an engine is up.
set -euo pipefail
BRIDGE_IP="${DOCKER_BRIDGE_IP:-172.31.0.1/24}"   # own --bip: a nested engine keeps 172.17/16
LOG="${DOCKER_ENGINE_LOG:-/var/log/dockerd-local.log}"
# The local registry (scripts/start-local-registry.sh) listens on this bridge's gateway so
# that the local node's engine reaches it too; plain HTTP there must be allowed.
REGISTRY="${GXNB_REGISTRY_ADDR:-${BRIDGE_IP%/*}:5000}"

if docker info >/dev/null 2>&1; then
  echo "docker engine: already running"; exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd not installed (apt-get install docker.io)" >&2; exit 1; }
echo "docker engine: starting dockerd (bip ${BRIDGE_IP}, insecure registry ${REGISTRY}, log ${LOG})"
nohup setsid dockerd --storage-driver overlay2 --bip "$BRIDGE_IP" --insecure-registry "$REGISTRY" >"$LOG" 2>&1 < /dev/null &
for i in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "docker engine: up after ${i}s"; exit 0; fi
  sleep 1
done
echo "docker engine did not answer within 60 s; last log lines:" >&2
tail -20 "$LOG" >&2
exit 1
