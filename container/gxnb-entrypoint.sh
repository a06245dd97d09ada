#!/bin/bash
# The image's entry point, under tini. Galaxy starts every container of this image (a JupyterLab
# session, a batch training, a notebook run by nbconvert) as --user UID:GID, a UID that the
# image's /etc/passwd does not know. Whatever runs here first gets a writable HOME and a user
# name for that UID; without one, `whoami`, getpass.getuser() (torch.compile's cache, for
# instance), git and ssh fail ("uid not found").
set -e

# A HOME that cannot be written (an arbitrary UID outside the image's group): one under /tmp.
if [ -z "${HOME:-}" ] || [ "${HOME}" = / ] || [ ! -w "${HOME}" ]; then
  HOME="/tmp/home-$(id -u)"
  export HOME
  mkdir -p "$HOME"
fi

# Galaxy names its job's temporary folder, which is not mounted into the container: /tmp then.
for variable in TMPDIR TMP TEMP; do
  if [ -n "${!variable:-}" ] && [ ! -w "${!variable}" ]; then
    unset "$variable"
  fi
done

# nss_wrapper, preloaded into the command and so into everything it starts (kernels, terminals,
# the training script), answers from passwd and group files of this container's own;
# /etc/passwd stays read-only.
if ! getent passwd "$(id -u)" >/dev/null && [ -z "${NSS_WRAPPER_PASSWD:-}" ]; then
  nss_dir="$(mktemp -d /tmp/gxnb-nss-XXXXXX)"
  grep -v "^${NB_USER:-jovyan}:" /etc/passwd > "$nss_dir/passwd"
  echo "${NB_USER:-jovyan}:x:$(id -u):$(id -g):Notebook user:${HOME}:/bin/bash" >> "$nss_dir/passwd"
  cp /etc/group "$nss_dir/group"
  getent group "$(id -g)" >/dev/null || echo "${NB_USER:-jovyan}:x:$(id -g):" >> "$nss_dir/group"
  export NSS_WRAPPER_PASSWD="$nss_dir/passwd" NSS_WRAPPER_GROUP="$nss_dir/group"
  export LD_PRELOAD="libnss_wrapper.so${LD_PRELOAD:+ $LD_PRELOAD}"
  echo "gxnb: UID $(id -u) is named ${NB_USER:-jovyan} in this container (nss_wrapper)" >&2
fi

# A Galaxy session's secrets come as files in a read-only folder that Galaxy's job runner writes
# for the job, never as `docker run -e` (the node's `ps` and `docker inspect` would show them):
# the user's Galaxy API key, for bioblend, put/get and run_script_job.
secrets_dir="${GXNB_SECRETS_DIR:-/run/gxnb/secrets}"
if [ -z "${API_KEY:-}" ] && [ -r "$secrets_dir/api_key" ]; then
  API_KEY="$(cat "$secrets_dir/api_key")"
  export API_KEY
fi

exec "$@"
