#!/bin/sh
# Docker mounts the cgroup tree read-only in containers that are not
# --privileged; a Docker engine inside this node needs it writable. The node
# has its own cgroup namespace, so this changes only the node's view.
for d in /sys/fs/cgroup /sys/fs/cgroup/*; do
  [ -L "$d" ] && continue
  mountpoint -q "$d" || continue
  mount -o remount,bind,rw "$d" || echo "cgroup-rw: could not make $d writable" >&2
done
