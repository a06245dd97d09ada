#!/bin/bash
# Start JupyterLab for Galaxy or `docker run`.
#  JUPYTER_PORT      port to listen on (Galaxy: the entry point's port)
#  JUPYTER_BASE_URL  path prefix (token mode; a Galaxy session takes its route's path)
#  GXNB_SESSION_IDLE_TIMEOUT  seconds without use (no kernel busy, no browser asking) after
#                     which idle kernels and terminals end and JupyterLab stops; 0: never
#  GXNB_SESSION_WALLTIME      seconds after which JupyterLab stops however busy; 0: never
#                     (either way it stops as File > Shut Down does: outputs/ return to Galaxy)
#  GXNB_NODE_NOTICE   the node's maintenance notice (default /run/gxnb-node/notice.json, which
#                     Galaxy's job containers get from their node): JupyterLab stops as above at
#                     the time it gives (gxnb.node_notice)
#  GXNB_SESSION_AUTH  route: a Galaxy session, answering only through its route (see below);
#                     token (the default): Jupyter's token login, for a plain `docker run`
#  GXNB_AI_ASSISTANT  on: Jupyter AI and the magic wand (they need a language model the session
#                     can reach); off (the default): neither loads, in the server or in JupyterLab
#  start-notebook.d/*.sh  hooks, sourced in order before JupyterLab starts
# Extra arguments go to `jupyter lab`.
set -e

# An arbitrary --user UID:GID (as Galaxy starts it) has a writable HOME and a user name by now:
# the image's entry point (gxnb-entrypoint.sh) gives them to every command.
# Started in the image's home but not allowed to write there (a UID outside its
# group): work in the writable HOME instead, so that notebooks can be saved.
if [ "$PWD" = "/home/${NB_USER:-jovyan}" ] && [ ! -w "$PWD" ]; then
  cd "$HOME"
fi
export JUPYTER_RUNTIME_DIR="${JUPYTER_RUNTIME_DIR:-$HOME/.local/share/jupyter/runtime}"

python3 -m gxnb.accelerator || true  # "GPU: ..." or why it runs on the CPU

for hook in /usr/local/bin/start-notebook.d/*.sh; do
  [ -r "$hook" ] || continue
  echo "start-notebook: running hook $hook"
  # shellcheck disable=SC1090
  . "$hook"
done

idle_timeout="${GXNB_SESSION_IDLE_TIMEOUT:-0}"
walltime="${GXNB_SESSION_WALLTIME:-0}"
for setting in GXNB_SESSION_IDLE_TIMEOUT GXNB_SESSION_WALLTIME; do
  if [[ ! "${!setting:-0}" =~ ^[0-9]+$ ]]; then
    echo "start-notebook: ${setting}='${!setting}' is not a number of seconds (0: never)" >&2
    exit 2
  fi
done

# Off, the assistant's extensions are disabled by a config folder ahead of the image's own.
case "${GXNB_AI_ASSISTANT:-off}" in
  on) ;;
  off) export JUPYTER_CONFIG_PATH="/opt/gxnb/jupyter-config/ai-off${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}" ;;
  *) echo "start-notebook: GXNB_AI_ASSISTANT='${GXNB_AI_ASSISTANT}' is neither on nor off" >&2; exit 2 ;;
esac

# Who may use the session (XSRF checks stay on either way):
#  route  a Galaxy session: only requests through its own route, as Galaxy's job runner wrote it
#         into the secrets folder (gxnb.session_auth, loaded by the image's jupyter_server_config.py:
#         the identity provider, the route's path as the base URL and its origin as the only
#         one allowed; no secret of the route in any process's arguments)
#  token  a plain `docker run`: Jupyter's token login (JUPYTER_TOKEN, else one it makes and
#         logs), at JUPYTER_BASE_URL
base_url_args=()
case "${GXNB_SESSION_AUTH:=token}" in
  route) base_url="the session's route" ;;
  token) base_url="${JUPYTER_BASE_URL:-/}"; base_url_args=(--ServerApp.base_url="${base_url}") ;;
  *) echo "start-notebook: GXNB_SESSION_AUTH='${GXNB_SESSION_AUTH}' is neither route nor token" >&2; exit 2 ;;
esac
export GXNB_SESSION_AUTH
# The session opens on the home notebook (the bundled notebooks' front page) when it is there.
home_notebook="${GXNB_NOTEBOOKS_DIR:-$PWD/notebooks}/home.ipynb"
default_url_args=()
if [ -f "$home_notebook" ] && [[ "$home_notebook" == "$PWD"/* ]]; then
  default_url_args=(--LabApp.default_url="/lab/tree/${home_notebook#"$PWD"/}")
fi
server_args=(
  --ip=0.0.0.0 --port="${JUPYTER_PORT:-8888}" --no-browser
  "${base_url_args[@]}"
  --ServerApp.allow_remote_access=True --ServerApp.trust_xheaders=True
  --ServerApp.quit_button=True
  "${default_url_args[@]}"
)
if [ "$idle_timeout" -gt 0 ]; then
  # Jupyter's own culling: idle (not busy) kernels and terminals end, then the server stops once
  # nothing has used it for the timeout (it looks once a minute). An open JupyterLab tab counts as use.
  cull_interval=$(( idle_timeout < 120 ? (idle_timeout + 1) / 2 : 60 ))
  server_args+=(
    --ServerApp.shutdown_no_activity_timeout="$idle_timeout"
    --MappingKernelManager.cull_idle_timeout="$idle_timeout"
    --MappingKernelManager.cull_connected=True
    --MappingKernelManager.cull_interval="$cull_interval"
    --TerminalManager.cull_inactive_timeout="$idle_timeout"
    --TerminalManager.cull_interval="$cull_interval"
  )
  echo "start-notebook: the session ends after ${idle_timeout} s without use"
fi
echo "start-notebook: JupyterLab on port ${JUPYTER_PORT:-8888}, base URL ${base_url}"
# The node's maintenance notice (gxnb.node_notice), in the folder Galaxy's job containers get
# from their node; a plain `docker run` has neither it nor a maximum time.
notice_file="${GXNB_NODE_NOTICE:-/run/gxnb-node/notice.json}"
if [ "$walltime" -eq 0 ] && [ ! -d "$(dirname "$notice_file")" ]; then
  exec jupyter lab "${server_args[@]}" "$@"
fi

# JupyterLab is stopped the way File > Shut Down stops it, so that the job ends well and the
# files in outputs/ still return to the history: at the maximum session time, or at the time
# the node's notice says it goes down.
if [ "$walltime" -gt 0 ]; then
  echo "start-notebook: the session ends at the latest after ${walltime} s"
fi
jupyter lab "${server_args[@]}" "$@" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT HUP
deadline=$(( walltime > 0 ? SECONDS + walltime : -1 ))
notice_seen="" node_ends_at="" why=""
while kill -0 "$server" 2>/dev/null; do
  if [ "$deadline" -ge 0 ] && [ "$SECONDS" -ge "$deadline" ]; then
    why="the session reached its maximum time (${walltime} s)"
    break
  fi
  # Read again only when the notice changes: one Python start per change, not per second.
  stamp=$(stat -c '%i.%Y.%s' "$notice_file" 2>/dev/null || true)
  if [ "$stamp" != "$notice_seen" ]; then
    notice_seen="$stamp"
    node_ends_at=$(python3 -m gxnb.node_notice --ends-at 2>/dev/null || true)
    if [ -n "$node_ends_at" ]; then
      echo "start-notebook: $(python3 -m gxnb.node_notice)"
    fi
  fi
  if [ -n "$node_ends_at" ] && [ "$(printf '%(%s)T' -1)" -ge "$node_ends_at" ]; then
    why="the node goes down for maintenance"
    break
  fi
  sleep 1 & wait $! || true  # a trapped signal ends the wait at once
done
if [ -n "$why" ] && kill -0 "$server" 2>/dev/null; then
  echo "start-notebook: ${why}: shutting JupyterLab down; outputs/ return to the history"
  kill -TERM "$server"
  wait "$server" || true
  exit 0
fi
wait "$server"
