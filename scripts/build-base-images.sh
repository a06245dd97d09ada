#!/usr/bin/env bash
# Build the Debian base images from Debian packages (no registry needed):
#   ${BASE_IMAGE}     plain Debian 12 (debootstrap minbase) + extra CA certificates
#   ${SYSTEMD_IMAGE}  the same with systemd as init: the local "node" and Molecule platforms
# Extra CA certificates (intercepting proxies, corporate CAs): EXTRA_CA_CERTS is a
# space-separated list of PEM files; default: the host's /usr/local/share/ca-certificates/*.crt.
# Idempotent: an image that exists is kept unless REBUILD=1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
here="$GXNB_ROOT"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_IMAGE="$GXNB_BASE_IMAGE"
SYSTEMD_IMAGE="$GXNB_SYSTEMD_IMAGE"
CACHE="${GXNB_CACHE:-$here/.deploy-local/cache}"
if [ -z "${EXTRA_CA_CERTS+x}" ]; then
  EXTRA_CA_CERTS="$(find /usr/local/share/ca-certificates -maxdepth 1 -name '*.crt' 2>/dev/null | sort | tr '\n' ' ' || true)"
fi

have_image() { [ "${REBUILD:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

ca_context() {  # $1: build context dir; copies the extra CAs into it
  mkdir -p "$1/extra-ca"
  rm -f "$1"/extra-ca/*.crt
  for f in $EXTRA_CA_CERTS; do
    [ -r "$f" ] || { echo "EXTRA_CA_CERTS: cannot read '$f' (expected a PEM file)" >&2; exit 2; }
    grep -q "BEGIN CERTIFICATE" "$f" || { echo "EXTRA_CA_CERTS: '$f' is not a PEM certificate" >&2; exit 2; }
    cp "$f" "$1/extra-ca/$(basename "${f%.*}").crt"
  done
  echo "extra CA certificates: $(find "$1/extra-ca" -mindepth 1 -maxdepth 1 | wc -l)"
}

if have_image "$BASE_IMAGE"; then
  echo "base image $BASE_IMAGE: present"
else
  mkdir -p "$CACHE"
  tarball="$CACHE/rootfs-${SUITE}.tar"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "debootstrap not installed" >&2; exit 1; }
    root="$(mktemp -d /tmp/gxnb-rootfs.XXXX)"
    echo "debootstrap $SUITE (minbase) from $MIRROR ... (2-4 min)"
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$MIRROR" \
      | grep -E "^I: (Retrieving|Validating|Extracting|Installing|Configuring|Base system)" \
      | awk 'NR%25==1{print; fflush()} /Base system/{print}'
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball" .
    rm -rf "$root"
  fi
  docker import "$tarball" "${BASE_IMAGE}-rootfs" >/dev/null
  ctx="$(mktemp -d)"
  ca_context "$ctx"
  cp "$here/container/base/Dockerfile.base" "$ctx/Dockerfile"
  docker build -q --build-arg "ROOTFS=${BASE_IMAGE}-rootfs" -t "$BASE_IMAGE" "$ctx"
  rm -rf "$ctx"
  echo "base image $BASE_IMAGE: built"
fi

if have_image "$SYSTEMD_IMAGE"; then
  echo "systemd image $SYSTEMD_IMAGE: present"
else
  docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$SYSTEMD_IMAGE" \
    -f "$here/container/base/Dockerfile.systemd" "$here/container/base"
  echo "systemd image $SYSTEMD_IMAGE: built"
fi
