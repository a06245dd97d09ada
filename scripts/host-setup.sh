#!/usr/bin/env bash
# Install what the deploy and the tests need on a fresh Debian 12 host that has
# only Python: Debian packages (Docker engine, debootstrap) and a virtualenv.
# Idempotent and quick when everything is there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${GXNB_VENV:-$here/.venv}"
EXTRAS="${GXNB_EXTRAS:-deploy}"

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v iptables >/dev/null || need_apt+=(iptables)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)  # image publishing and rollouts
if [[ ",$EXTRAS," == *",test,"* ]]; then  # the browser journey (browsers cannot be downloaded here)
  command -v chromium >/dev/null || need_apt+=(chromium)
  command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
  command -v shellcheck >/dev/null || need_apt+=(shellcheck)  # the shell scripts' linter
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "host-setup: apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# promtool (the alert rules' tests) comes with Debian's prometheus, without its recommends (its
# node exporter).
if [[ ",$EXTRAS," == *",test,"* ]] && ! command -v promtool >/dev/null; then
  echo "host-setup: apt-get install prometheus (promtool)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Where systemd runs, the package starts its server: this host is not the service's.
  if [ -d /run/systemd/system ]; then $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
fi

stamp="$VENV/.gxnb-$(sha256sum "$here/pyproject.toml" | cut -c1-12)-${EXTRAS//,/-}"
if [ ! -e "$stamp" ]; then
  echo "host-setup: virtualenv $VENV [$EXTRAS]"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e "${here}[$EXTRAS]"
  rm -f "$VENV"/.gxnb-*
  touch "$stamp"
fi

# checkov (Terraform policy checks) has its own pins: a virtualenv of its own.
if [[ ",$EXTRAS," == *",test,"* ]] && [ ! -x "$here/.venv-checkov/bin/checkov" ]; then
  echo "host-setup: virtualenv .venv-checkov"
  # A link left by an older checkout (or a half-made folder) is replaced, not followed.
  if [ -L "$here/.venv-checkov" ]; then rm -f "$here/.venv-checkov"; fi
  python3 -m venv "$here/.venv-checkov"
  "$here/.venv-checkov/bin/pip" install -q "${here}[checkov]"
fi
