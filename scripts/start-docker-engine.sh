#!/usr/bin/env bash
# Start Debian's dockerd when no Docker engine answers (hosts and CI without
# systemd as PID 1). Idempotent: returns at once when an engine is up.
set -euo pipefail
BRIDGE_IP="${DOCKER_BRIDGE_IP:-172.31.0.1/24}"   # own --bip: a nested engine keeps 172.17/16
LOG="${DOCKER_ENGINE_LOG:-/var/log/dockerd-local.log}"

if docker info >/dev/null 2>&1; then
  echo "docker engine: already running"; exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd not installed (apt-get install docker.io)" >&2; exit 1; }
echo "docker engine: starting dockerd (bip ${BRIDGE_IP}, log ${LOG})"
nohup setsid dockerd --storage-driver overlay2 --bip "$BRIDGE_IP" >"$LOG" 2>&1 < /dev/null &
for i in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "docker engine: up after ${i}s"; exit 0; fi
  sleep 1
done
echo "docker engine did not answer within 60 s; last log lines:" >&2
tail -20 "$LOG" >&2
exit 1
