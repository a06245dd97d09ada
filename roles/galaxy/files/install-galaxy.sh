#!/bin/sh
# install-galaxy.sh VENV VERSION RELAXED_PINS(comma list) EXTRA_PACKAGES(space list)
# The galaxy metapackage pins every dependency; a pin the package index lacks
# (certifi in 26.1) makes pip fail, so its pins are read from the wheel's
# metadata, the relaxed ones are unpinned, and the rest installed as pinned.
set -eu
venv="$1"; version="$2"; relaxed="$3"; extra="$4"
pip="$venv/bin/pip"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$pip" install -q --upgrade pip wheel
echo "download galaxy==$version"
"$pip" download -q --no-deps -d "$work" "galaxy==$version"
"$venv/bin/python" - "$work" "$relaxed" > "$work/pins.txt" <<'PY'
import glob, sys, zipfile
work, relaxed = sys.argv[1], {r.strip().lower() for r in sys.argv[2].split(",") if r.strip()}
wheel = glob.glob(f"{work}/galaxy-*.whl")[0]
with zipfile.ZipFile(wheel) as zf:
    meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    for line in zf.read(meta).decode().splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        name = req.split("==")[0].split(";")[0].strip()
        if name.lower() in relaxed:
            marker = (";" + req.split(";", 1)[1]) if ";" in req else ""
            req = name + marker
        print(req)
PY
echo "install $(wc -l < "$work/pins.txt") pinned dependencies (relaxed: ${relaxed:-none})"
"$pip" install -q --no-deps "$work"/galaxy-*.whl
# shellcheck disable=SC2086
"$pip" install -q -r "$work/pins.txt" $extra
"$venv/bin/python" -c 'import galaxy.version as v; print("installed galaxy", v.VERSION)'
