#!/usr/bin/env python3
"""Seconds from `docker run` of the notebook image to JupyterLab's page (HTTP 200 on /lab) on this
machine's engine: the image as shipped, and side by side in the same run the same image with its
heavy server extensions off (Jupyter AI, Elyra, Voilà, nbdime, git, magic wand), as the floor
that startup work can reach. With --profile, the imports that cost the most at start.

    .venv/bin/python tests/benchmarks/notebook_start.py [-n 5] [--image gxnb/jupyterlab-ai:cpu] [--profile]

Needs the Docker engine (scripts/start-docker-engine.sh) and the image. Goal: a median of 3 s or
less as shipped, every feature kept.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

import requests

HEAVY_SERVER_EXTENSIONS = ["jupyter_ai", "elyra", "voila", "nbdime", "jupyterlab_git", "jupyterlab_magic_wand"]
KINDS = {
    "as shipped": [],
    "heavy server extensions off": [f"--ServerApp.jpserver_extensions={n}=False" for n in HEAVY_SERVER_EXTENSIONS],
}


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, timeout=120).stdout


def one_start(image: str, server_args: list[str], timeout: float = 120) -> float:
    """Seconds from `docker run` to the first 200 of JupyterLab's page."""
    start = time.monotonic()
    container = docker("run", "-d", "-p", "127.0.0.1::8888", image, "start-notebook.sh", *server_args).strip()
    try:
        port = docker("port", container, "8888/tcp").splitlines()[0].rsplit(":", 1)[-1]
        while time.monotonic() - start < timeout:
            try:
                if requests.get(f"http://127.0.0.1:{port}/lab", timeout=5).status_code == 200:
                    return time.monotonic() - start
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{docker('logs', container, check=False)}")
    finally:
        docker("rm", "-f", container, check=False)


def profile(image: str, top: int = 15) -> None:
    """Start the image as shipped with Python's import profiler on (PYTHONPROFILEIMPORTTIME) until
    JupyterLab's page answers; print the costliest imports of its processes."""
    container = docker("run", "-d", "-p", "127.0.0.1::8888", "-e", "PYTHONPROFILEIMPORTTIME=1", image).strip()
    try:
        port = docker("port", container, "8888/tcp").splitlines()[0].rsplit(":", 1)[-1]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/lab", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        log = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=60).stderr
    finally:
        docker("rm", "-f", container, check=False)
    rows = []
    for line in log.splitlines():
        if match := re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line):
            rows.append((int(match.group(2)) / 1e6, len(match.group(3)) // 2, match.group(4)))
    print(f"imports at start as shipped, costliest first (cumulative s, depth, module), {len(rows)} modules:")
    for seconds, depth, module in sorted(rows, reverse=True)[:top]:
        print(f"  {seconds:6.2f} s  {depth:2d}  {module}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="starts of each kind (default 5)")
    parser.add_argument("--image", default="gxnb/jupyterlab-ai:cpu")
    parser.add_argument("--profile", action="store_true", help="also list the costliest imports at start")
    args = parser.parse_args()
    one_start(args.image, [])  # warm the page cache: the first start reads the image from disk
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for i in range(args.n):
        for kind, server_args in KINDS.items():  # alternated, so that both see the same machine
            seconds[kind].append(one_start(args.image, server_args))
        print(f"start {i + 1}/{args.n}: " + ", ".join(f"{kind} {s[-1]:.2f} s" for kind, s in seconds.items()),
              flush=True)  # fmt: skip
    shipped, floor = (statistics.median(seconds[kind]) for kind in KINDS)
    print(f"docker run -> JupyterLab's page over {args.n} starts: as shipped median {shipped:.2f} s "
          f"({min(seconds['as shipped']):.2f}-{max(seconds['as shipped']):.2f} s; goal <= 3 s), "
          f"heavy server extensions off {floor:.2f} s; ratio {shipped / floor:.2f}x")  # fmt: skip
    if args.profile:
        profile(args.image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
