#!/usr/bin/env python3
"""Notebooks launched at once across the cluster's job nodes: seconds from the launch call to
JupyterLab's 200 through nginx (median and p95) for 1, 4 and 8 sessions, each of another user,
and the memory an idle session holds on its node. Job nodes made on demand are started first.
Each session is shut down --hold seconds after it answers, so launches beyond what the cluster
holds at once (2 nodes x 2 GPUs locally; with GPU shards, its CPUs) wait in Slurm for a freed
place: their figure includes that wait.

    .venv/bin/python tests/benchmarks/cluster_scaling.py [--counts 1 4 8]

Needs the local deployment (make deploy-local).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.benchmarks.time_to_notebook import one_launch  # noqa: E402
from tests.support import galaxy_it, local_cluster  # noqa: E402


def idle_session_memory_mib() -> list[float]:
    """Memory of each running session container on the job nodes (docker stats), MiB."""
    sizes = []
    for node in local_cluster.job_nodes():
        if not local_cluster.container_running(node):  # a node made on demand, switched off
            continue
        out = local_cluster.run(node, "docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}",
                                *local_cluster.job_containers(node), check=False)  # fmt: skip
        for line in out.splitlines():
            used = line.split()[1]
            value, unit = float(used.rstrip("GiBMk")), used.lstrip("0123456789.")
            sizes.append(value * {"GiB": 1024, "MiB": 1, "kB": 1 / 1024, "KiB": 1 / 1024}.get(unit, 1))
    return sizes


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--hold", type=float, default=20, help="seconds a session stays open once it answers")
    args = parser.parse_args()
    endpoints = galaxy_it.load_endpoints()
    # Launch speed, not a node's start: every job node made on demand is started first.
    local_cluster.all_nodes_up()
    # A user per launch: each user may have only a few sessions at once (gxnb_session_limit_per_user).
    keys = [galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])[1]
            for _ in range(max(args.counts))]  # fmt: skip
    for count in args.counts:
        print(f"{count} at once: launching ...", flush=True)
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            futures = [pool.submit(one_launch, endpoints, key, args.hold) for key in keys[:count]]
            time.sleep(min(args.hold, 10) + 15)
            memory = idle_session_memory_mib()
            times = [f.result()[0] for f in futures]
        memory_text = (f"idle session memory median {statistics.median(memory):.0f} MiB over {len(memory)}"
                       if memory else "no session open when memory was read")  # fmt: skip
        print(f"{count} at once: launch -> JupyterLab 200 median {statistics.median(times):.1f} s, "
              f"p95 {p95(times):.1f} s, max {max(times):.1f} s; {memory_text}", flush=True)
        # Those that got a place first, and those that waited for one: each launch, fastest first.
        print(f"{count} at once, each: {' '.join(f'{t:.1f}' for t in sorted(times))} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
