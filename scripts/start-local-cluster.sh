#!/usr/bin/env bash
# Create (or reuse) the local cluster that `make deploy-local` deploys into: one systemd
# container per host of the inventory (gxnb_local_containers), on one Docker network at the
# inventory's addresses. The head publishes nginx's port on this machine; every job node
# gets its own Docker engine (/var/lib/docker as a volume, so it uses overlay2), the image
# cache read-only and its fake GPU device files. Galaxy's folder (/srv/galaxy: jobs,
# datasets, Galaxy's virtualenv for the container monitor) is one volume shared by all of
# them, the local stand-in for the NFS share of a production cluster.
# Flags follow the field notes: everything --privileged would give except CAP_SYS_RESOURCE
# (which this kind of host lacks), and a private cgroup namespace.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
gxnb_load_facts
NETWORK="${GXNB_LOCAL_NETWORK_NAME:-gxnb-local}"
SUBNET="$GXNB_FACT_LOCAL_NETWORK"
IMAGE="$GXNB_SYSTEMD_IMAGE"
# Host ports == nginx's ports inside the head: gxnb_public_port (HTTPS) and, with TLS, the
# plain-HTTP port that redirects to it.
PUBLIC_PORTS="$GXNB_FACT_PUBLIC_PORT $GXNB_FACT_PUBLIC_HTTP_PORT"
BIND_ADDR="$GXNB_FACT_BIND_ADDRESS"     # gxnb_local_bind_address
SHARED_VOLUME="gxnb-local-galaxy"
# Image archives the deploy script saves (no registry needed), read-only in the job nodes.
HOST_CACHE="${GXNB_HOST_CACHE:-$GXNB_ROOT/.deploy-local/cache}"
# Fake GPUs: character devices of the NVIDIA major number, made here once and handed to the
# nodes with --device (so they survive a node's restart); no driver answers behind them.
FAKE_GPUS="$GXNB_ROOT/.deploy-local/fake-gpus"
# The node helper's socket (scripts/local-nodes-helper.py), in the head for gxnb-nodes' local
# driver: the head starts and stops job nodes through it, never through the Docker socket.
NODE_HELPER_DIR="$GXNB_ROOT/.deploy-local/node-helper"
if [ -z "$SUBNET" ] || [ -z "$GXNB_FACT_LOCAL_CONTAINERS" ]; then
  echo "the inventory $GXNB_INVENTORY sets no gxnb_local_network / gxnb_local_containers" >&2
  exit 1
fi

# The single-container form of earlier versions holds the port and ~10 GB of volumes.
if docker inspect gxnb-local-node >/dev/null 2>&1; then
  echo "removing the single-container deployment of an earlier version (gxnb-local-node and its volumes)"
  docker rm -f gxnb-local-node >/dev/null
  docker volume rm gxnb-local-node-docker gxnb-local-node-srv >/dev/null 2>&1 || true
fi

if [ "$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' "$NETWORK" 2>/dev/null)" != "$SUBNET" ]; then
  if docker network inspect "$NETWORK" >/dev/null 2>&1; then
    echo "network $NETWORK: not on $SUBNET, making it anew"
    docker network inspect -f '{{range .Containers}}{{.Name}} {{end}}' "$NETWORK" | xargs -r docker rm -f >/dev/null
    docker network rm "$NETWORK" >/dev/null
  fi
  docker network create --subnet "$SUBNET" "$NETWORK" >/dev/null
  echo "network $NETWORK: $SUBNET"
fi

# The settings a container is made with; one that differs (another checkout's cache, an
# address changed in the inventory) makes the container anew. Its volumes are kept.
wanted_settings() {  # ADDRESS KIND GPUS
  echo "address=$1 cache=$([ "$2" = node ] && echo "$HOST_CACHE")$([ "$2" = head ] && echo " helper=$NODE_HELPER_DIR") ports=$([ "$2" = head ] && echo "${PUBLIC_PORTS% }") image=$IMAGE$([ "$3" -gt 0 ] && echo " gpus=$3")"
}

# Whether a running node sees this checkout's cache folder: a checkout deleted and cloned again
# at the same path leaves the node's bind mount on the old, deleted folder.
sees_the_host_cache() {  # NAME
  local marker=".seen-by-the-nodes-$$" seen=1
  mkdir -p "$HOST_CACHE"
  touch "$HOST_CACHE/$marker"
  if docker exec "$1" test -e "/var/cache/gxnb-host/$marker"; then seen=0; fi
  rm -f "$HOST_CACHE/$marker"
  return "$seen"
}

start_container() {  # NAME ADDRESS GPUS KIND
  local name="$1" address="$2" gpus="$3" kind="$4" state settings
  local args=(--network "$NETWORK" --ip "$address" -v "$SHARED_VOLUME:/srv/galaxy")
  settings="$(wanted_settings "$address" "$kind" "$gpus")"
  if [ "$kind" = head ]; then
    for port in $PUBLIC_PORTS; do args+=(-p "${BIND_ADDR}:${port}:${port}"); done
    mkdir -p "$NODE_HELPER_DIR"
    args+=(-v "$NODE_HELPER_DIR:/run/gxnb-local-nodes")
  else
    args+=(-v "${name}-docker:/var/lib/docker" -v "${HOST_CACHE}:/var/cache/gxnb-host:ro")
    mkdir -p "$FAKE_GPUS"
    for ((i = 0; i < gpus; i++)); do
      [ -c "$FAKE_GPUS/nvidia$i" ] || mknod -m 0666 "$FAKE_GPUS/nvidia$i" c 195 "$i"
      args+=(--device "$FAKE_GPUS/nvidia$i:/dev/nvidia$i")
    done
  fi
  state="$(docker inspect -f '{{.State.Status}}' "$name" 2>/dev/null || true)"
  local stale=""
  if [ -n "$state" ] && [ "$(docker inspect -f '{{index .Config.Labels "gxnb.local.settings"}}' "$name")" != "$settings" ]; then
    stale="made with other settings"
  elif [ "$state" = running ] && [ "$kind" != head ] && ! sees_the_host_cache "$name"; then
    stale="its cache folder was made anew since it started (a new checkout)"
  fi
  if [ -n "$stale" ]; then
    echo "$name: $stale, making it anew (volumes kept)"
    docker rm -f "$name" >/dev/null
    state=""
  fi
  case "$state" in
    running) echo "$name: running" ;;
    "")
      echo "$name: creating ($kind, $address$([ "$gpus" -gt 0 ] && echo ", $gpus fake GPUs"))"
      docker run -d --name "$name" --hostname "$name" --label "gxnb.local.settings=$settings" \
        --cap-add ALL --cap-drop SYS_RESOURCE \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --security-opt systempaths=unconfined \
        --device /dev/fuse --device-cgroup-rule 'a *:* rwm' --cgroupns=private \
        --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 \
        "${args[@]}" "$IMAGE" /sbin/init >/dev/null ;;
    *) echo "$name: $state, starting"; docker start "$name" >/dev/null ;;
  esac
}

wait_for_systemd() {  # NAME
  local s=""
  for i in $(seq 1 60); do
    s="$(docker exec "$1" systemctl is-system-running 2>/dev/null || true)"
    case "$s" in running|degraded) echo "$1: systemd $s after ${i}s"; return 0 ;; esac
    sleep 1
  done
  echo "$1: systemd did not come up (state: ${s:-unknown})" >&2
  docker exec "$1" systemctl --failed --no-pager >&2 || true
  return 1
}

# One line per container: name address gpus head|node (scripts/service_facts.py).
names=()
mapfile -t entries <<< "$GXNB_FACT_LOCAL_CONTAINERS"
for entry in "${entries[@]}"; do
  read -r name address gpus kind <<< "$entry"
  start_container "$name" "$address" "$gpus" "$kind"
  names+=("$name")
done
for name in "${names[@]}"; do wait_for_systemd "$name"; done
