#!/usr/bin/env python3
"""Seconds from the launch API call to JupyterLab's HTTP 200 through nginx (Galaxy, Slurm, the job
node's engine, gx-it-proxy), image already present; and, on the same job node in the same run, a
bare `docker run` of the same image to JupyterLab's 200, with the ratio of the medians.

    .venv/bin/python tests/benchmarks/time_to_notebook.py [-n 5]

Needs the local deployment (make deploy-local). Goals: a median of 8 s or less through the cluster,
at most 1.5 times the bare start.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.support import galaxy_it, local_cluster  # noqa: E402


def open_session(endpoints: dict, api_key: str) -> tuple[float, object, str, galaxy_it.NotebookSession]:
    """A notebook launched through Galaxy: seconds from the launch call to JupyterLab's 200
    through nginx, the user's Galaxy, the job's id and the open session."""
    start = time.monotonic()
    gi, history_id, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], api_key)
    ep = galaxy_it.wait_for_entry_point(gi, job_id, timeout=900, progress=None)
    session = galaxy_it.NotebookSession(gi, endpoints["galaxy_url"], history_id, job_id, ep)
    galaxy_it.wait_for_http_200(session.url + "lab", timeout=300, session=session.http)
    return time.monotonic() - start, gi, job_id, session


def one_launch(endpoints: dict, api_key: str, hold: float = 0) -> tuple[float, str]:
    """Seconds to JupyterLab's 200 through Galaxy, and the job node the session ran on; the session
    stays open `hold` seconds more before it is shut down."""
    elapsed, gi, job_id, session = open_session(endpoints, api_key)
    node = local_cluster.node_of(galaxy_it.admin_instance(), job_id)
    time.sleep(hold)
    session.api("POST", "api/shutdown")
    galaxy_it.wait_for_job(gi, job_id, timeout=120)
    return elapsed, node


def one_bare_start(node: str, image: str) -> float:
    """Seconds from `docker run` on the node to JupyterLab's 200 on its published port."""
    start = time.monotonic()
    container = local_cluster.run(node, "docker", "run", "-d", "--rm", "-p", "8888", image,
                                  "start-notebook.sh").strip()  # fmt: skip
    try:
        # Published on the node's own IPv4 address only (the docker_engine role's daemon "ip").
        address = local_cluster.run(node, "docker", "port", container, "8888/tcp").splitlines()[0]
        # Asked from the node itself: the job nodes' firewall lets only the proxy host in from outside.
        poll = f"until curl -sf -o /dev/null http://{address}/lab; do sleep 0.25; done"
        local_cluster.run(node, "sh", "-c", poll, timeout=120)
        return time.monotonic() - start
    finally:
        local_cluster.run(node, "docker", "rm", "-f", container, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="launches of each kind (default 5)")
    args = parser.parse_args()
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    through_galaxy, bare = [], []
    for i in range(args.n):
        seconds, node = one_launch(endpoints, key)
        through_galaxy.append(seconds)
        bare.append(one_bare_start(node, endpoints["notebook_image"]))
        print(f"launch {i + 1}/{args.n} on {node}: {seconds:.1f} s through Galaxy and Slurm, "
              f"{bare[-1]:.1f} s bare docker run", flush=True)
    median, bare_median = statistics.median(through_galaxy), statistics.median(bare)
    print(f"time to notebook over {args.n} launches: median {median:.1f} s, max {max(through_galaxy):.1f} s, "
          f"min {min(through_galaxy):.1f} s (goal: median <= 8 s)")
    print(f"bare docker run on the same nodes: median {bare_median:.1f} s; "
          f"ratio {median / bare_median:.2f}x (goal <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
