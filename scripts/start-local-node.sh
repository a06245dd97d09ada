#!/usr/bin/env bash
# Create (or reuse) the local systemd "node" container that `make deploy-local`
# deploys into when the host has no systemd as PID 1. Flags follow the field
# notes: everything --privileged would give except CAP_SYS_RESOURCE (which this
# kind of host lacks), its own cgroup namespace, and /var/lib/docker as a volume
# so the node's Docker engine uses overlay2.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
gxnb_load_facts
NODE="${GXNB_NODE_NAME:-gxnb-local-node}"
IMAGE="$GXNB_SYSTEMD_IMAGE"
HTTP_PORT="$GXNB_FACT_PUBLIC_PORT"      # host port == nginx port inside the node (gxnb_public_port)
BIND_ADDR="$GXNB_FACT_BIND_ADDRESS"     # gxnb_local_bind_address
# Image archives the deploy script saves (no registry needed), read-only in the node.
HOST_CACHE="${GXNB_HOST_CACHE:-$GXNB_ROOT/.deploy-local/cache}"

state="$(docker inspect -f '{{.State.Status}}' "$NODE" 2>/dev/null || true)"
if [ -n "$state" ]; then
  # A node made from another checkout (or before the cache mount existed) reads image archives
  # from there: make it anew for this checkout. Its volumes (Galaxy, images) are kept.
  cache_source="$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/var/cache/gxnb-host"}}{{.Source}}{{end}}{{end}}' "$NODE")"
  if [ "$cache_source" != "$HOST_CACHE" ]; then
    echo "node $NODE: its image cache is '${cache_source:-none}', this checkout's is $HOST_CACHE: recreating it (volumes kept)"
    docker rm -f "$NODE" >/dev/null
    state=""
  fi
fi
case "$state" in
  running)
    echo "node $NODE: running" ;;
  "")
    echo "node $NODE: creating from $IMAGE (publishes ${BIND_ADDR}:${HTTP_PORT})"
    docker run -d --name "$NODE" --hostname "$NODE" \
      --cap-add ALL --cap-drop SYS_RESOURCE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --security-opt systempaths=unconfined \
      --device /dev/fuse --device-cgroup-rule 'a *:* rwm' --cgroupns=private \
      --tmpfs /run --tmpfs /run/lock \
      -v "${NODE}-docker:/var/lib/docker" -v "${NODE}-srv:/srv" \
      -v "${HOST_CACHE}:/var/cache/gxnb-host:ro" \
      --stop-signal SIGRTMIN+3 \
      -p "${BIND_ADDR}:${HTTP_PORT}:${HTTP_PORT}" \
      "$IMAGE" /sbin/init >/dev/null ;;
  *) echo "node $NODE: $state, starting"; docker start "$NODE" >/dev/null ;;
esac
for i in $(seq 1 30); do
  s="$(docker exec "$NODE" systemctl is-system-running 2>/dev/null || true)"
  case "$s" in running|degraded) echo "node $NODE: systemd $s after ${i}s"; exit 0 ;; esac
  sleep 1
done
echo "node $NODE: systemd did not come up (state: ${s:-unknown})" >&2
docker exec "$NODE" systemctl --failed --no-pager >&2 || true
exit 1
