#!/usr/bin/env python3
"""Print each notebook image variant's size and its largest layers.

Usage: python tests/benchmarks/image_size.py [--repository gxnb/jupyterlab-ai] [--top 5] [VARIANT ...]
Goals (issue): cpu <= 3 GB, gpu <= 8 GB with the full package set. Variants not
built on this host are reported as such (build: scripts/build-notebook-image.sh VARIANT).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

GOALS_GB = {"cpu": 3.0, "gpu": 8.0}


def docker_json(*args: str):
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def layers(image: str) -> list[tuple[int, str]]:
    out = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{json .}}", image],
                         capture_output=True, text=True, check=True)  # fmt: skip
    rows = []
    for line in out.stdout.splitlines():
        row = json.loads(line)
        size = docker_size_to_bytes(row["Size"])
        rows.append((size, " ".join(row["CreatedBy"].split())[:110]))
    return sorted(rows, reverse=True)


def docker_size_to_bytes(text: str) -> int:
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * units[unit])
    return int(text or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", default=["cpu", "gpu"])
    parser.add_argument("--repository", default="gxnb/jupyterlab-ai")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    over_goal = 0
    for variant in args.variants:
        image = f"{args.repository}:{variant}"
        info = docker_json("image", "inspect", image)
        if not info:
            print(f"{image}: not built on this host")
            continue
        size_gb = info[0]["Size"] / 1e9
        goal = GOALS_GB.get(variant)
        verdict = "" if goal is None else f" (goal <= {goal:.0f} GB: {'met' if size_gb <= goal else 'MISSED'})"
        over_goal += goal is not None and size_gb > goal
        print(f"{image}: {size_gb:.2f} GB{verdict}")
        for size, created_by in layers(image)[: args.top]:
            print(f"  {size / 1e6:9.1f} MB  {created_by}")
    return 1 if over_goal else 0


if __name__ == "__main__":
    sys.exit(main())
