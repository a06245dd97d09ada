#!/bin/bash
# Start JupyterLab for Galaxy or `docker run`.
#  JUPYTER_PORT      port to listen on (Galaxy: the entry point's port)
#  JUPYTER_BASE_URL  path prefix (Galaxy injects the interactive tool's path)
#  start-notebook.d/*.sh  hooks, sourced in order before JupyterLab starts
# Extra arguments go to `jupyter lab`.
set -e

# Arbitrary --user UID:GID (as Galaxy starts it): make sure HOME is writable.
if [ -z "${HOME:-}" ] || [ ! -w "${HOME}" ]; then
  export HOME="/tmp/home-$(id -u)"
  mkdir -p "$HOME"
fi
# Started in the image's home but not allowed to write there (a UID outside its
# group): work in the writable HOME instead, so that notebooks can be saved.
if [ "$PWD" = "/home/${NB_USER:-jovyan}" ] && [ ! -w "$PWD" ]; then
  cd "$HOME"
fi
export JUPYTER_RUNTIME_DIR="${JUPYTER_RUNTIME_DIR:-$HOME/.local/share/jupyter/runtime}"

python3 /usr/local/bin/gpu-info.py || true

for hook in /usr/local/bin/start-notebook.d/*.sh; do
  [ -r "$hook" ] || continue
  echo "start-notebook: running hook $hook"
  # shellcheck disable=SC1090
  . "$hook"
done

base_url="${JUPYTER_BASE_URL:-/}"
echo "start-notebook: JupyterLab on port ${JUPYTER_PORT:-8888}, base URL ${base_url}"
exec jupyter lab \
  --ip=0.0.0.0 --port="${JUPYTER_PORT:-8888}" --no-browser \
  --ServerApp.base_url="${base_url}" \
  --IdentityProvider.token='' --ServerApp.password='' \
  --ServerApp.allow_origin='*' --ServerApp.allow_remote_access=True \
  --ServerApp.trust_xheaders=True --ServerApp.disable_check_xsrf=True \
  --ServerApp.quit_button=True \
  "$@"
