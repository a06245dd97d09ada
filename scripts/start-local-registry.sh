#!/usr/bin/env bash
# Start a local container registry (Debian's docker-registry, Distribution 2.x)
# when none answers at GXNB_REGISTRY_ADDR:  scripts/start-local-registry.sh
#   GXNB_REGISTRY_ADDR     host:port to listen on (default 127.0.0.1:5000; Docker
#                     trusts plain HTTP only on loopback unless told otherwise)
#   GXNB_REGISTRY_STORAGE  where blobs live (default .deploy-local/registry)
# Prints the address; the PID is in $GXNB_REGISTRY_STORAGE/registry.pid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
here="$GXNB_ROOT"
addr="${GXNB_REGISTRY_ADDR:-127.0.0.1:5000}"
storage="${GXNB_REGISTRY_STORAGE:-$here/.deploy-local/registry}"
[[ "$addr" =~ ^[0-9A-Za-z.-]+:[0-9]+$ ]] || { echo "GXNB_REGISTRY_ADDR: '$addr' is not host:port" >&2; exit 2; }
command -v docker-registry >/dev/null || { echo "docker-registry is not installed (apt-get install docker-registry)" >&2; exit 1; }

if curl -fsS -o /dev/null "http://$addr/v2/" 2>/dev/null; then
  echo "registry: $addr (already running)"
  exit 0
fi
mkdir -p "$storage/data"
cat > "$storage/config.yml" <<EOC
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $storage/data
  delete:
    enabled: true
http:
  addr: $addr
EOC
# The registry reads REGISTRY_* variables as configuration: start it without any.
# shellcheck disable=SC2046 # one "-u NAME" pair per variable, split on purpose
nohup env $(env | sed -n "s/^\(REGISTRY_[A-Za-z0-9_]*\)=.*/-u \1/p") docker-registry serve "$storage/config.yml" > "$storage/registry.log" 2>&1 &
echo $! > "$storage/registry.pid"
for _ in $(seq 1 50); do
  if curl -fsS -o /dev/null "http://$addr/v2/" 2>/dev/null; then
    echo "registry: $addr (started, storage $storage)"
    exit 0
  fi
  sleep 0.2
done
echo "registry: did not answer at $addr; log:" >&2
cat "$storage/registry.log" >&2
exit 1
