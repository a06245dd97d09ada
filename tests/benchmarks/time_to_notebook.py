#!/usr/bin/env python3
"""Seconds from the launch API call to JupyterLab's HTTP 200 through nginx, image already present.

    .venv/bin/python tests/benchmarks/time_to_notebook.py [-n 5]

Needs the local deployment (make deploy-local). Goal: a median of 10 s or less.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.support import galaxy_it  # noqa: E402


def one_launch(endpoints: dict, api_key: str) -> float:
    start = time.monotonic()
    gi, _history_id, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], api_key)
    ep = galaxy_it.wait_for_entry_point(gi, job_id, timeout=300, progress=None)
    url = endpoints["galaxy_url"].rstrip("/") + ep["target_path"] + "lab"
    galaxy_it.wait_for_http_200(url, timeout=300)
    elapsed = time.monotonic() - start
    requests.post(endpoints["galaxy_url"].rstrip("/") + ep["target_path"] + "api/shutdown", timeout=30)
    galaxy_it.wait_for_job(gi, job_id, timeout=120)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="launches (default 5)")
    args = parser.parse_args()
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    times = []
    for i in range(args.n):
        seconds = one_launch(endpoints, key)
        times.append(seconds)
        print(f"launch {i + 1}/{args.n}: {seconds:.1f} s", flush=True)
    print(f"time to notebook over {args.n} launches: median {statistics.median(times):.1f} s, "
          f"max {max(times):.1f} s, min {min(times):.1f} s (goal: median <= 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
