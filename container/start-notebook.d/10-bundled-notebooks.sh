# shellcheck shell=bash
# Copy the bundled notebooks (home page, examples, use cases) into the folder
# JupyterLab opens, once: a user's edits are never overwritten.
#  GXNB_BUNDLED_NOTEBOOKS  where the image keeps them (empty: skip)
#  GXNB_NOTEBOOKS_DIR      where they go (default: ./notebooks of the start folder)
bundled="${GXNB_BUNDLED_NOTEBOOKS-/opt/gxnb/notebooks}"
target="${GXNB_NOTEBOOKS_DIR:-$PWD/notebooks}"
if [ -n "$bundled" ] && [ -d "$bundled" ] && [ ! -e "$target" ]; then
  if cp -r "$bundled" "$target" 2>/dev/null; then
    echo "start-notebook: bundled notebooks copied to $target"
  else
    echo "start-notebook: could not copy bundled notebooks to $target (not writable), skipping"
  fi
fi
