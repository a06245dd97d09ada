# A user name for an arbitrary UID. Galaxy starts the session as --user UID:GID, a UID that the
# image's /etc/passwd does not know: `whoami`, getpass.getuser(), git and ssh then fail ("uid not
# found"). nss_wrapper, preloaded into JupyterLab and so into its kernels and terminals, answers
# from passwd and group files of the session's own; /etc/passwd stays read-only.
if ! getent passwd "$(id -u)" >/dev/null && [ -z "${NSS_WRAPPER_PASSWD:-}" ]; then
  nss_dir="$(mktemp -d /tmp/gxnb-nss-XXXXXX)"
  grep -v "^${NB_USER:-jovyan}:" /etc/passwd > "$nss_dir/passwd"
  echo "${NB_USER:-jovyan}:x:$(id -u):$(id -g):Notebook user:${HOME}:/bin/bash" >> "$nss_dir/passwd"
  cp /etc/group "$nss_dir/group"
  getent group "$(id -g)" >/dev/null || echo "${NB_USER:-jovyan}:x:$(id -g):" >> "$nss_dir/group"
  export NSS_WRAPPER_PASSWD="$nss_dir/passwd" NSS_WRAPPER_GROUP="$nss_dir/group"
  export LD_PRELOAD="libnss_wrapper.so${LD_PRELOAD:+ $LD_PRELOAD}"
  echo "start-notebook: UID $(id -u) is named ${NB_USER:-jovyan} in this session (nss_wrapper)"
fi
