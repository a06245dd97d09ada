#!/usr/bin/env python3
"""Notebooks launched at once across the cluster's job nodes: seconds from the launch call to
JupyterLab's 200 through nginx (median and p95) for 1, 4 and 8 sessions, each of another user,
and the memory an idle session holds on its node. Job nodes made on demand are started first.
Each session is shut down --hold seconds after it answers, so launches beyond what the cluster
holds at once (2 nodes x 2 GPUs locally; with GPU shards, its CPUs) wait in Slurm for a freed
place: their figure includes that wait.

    .venv/bin/python tests/benchmarks/cluster_scaling.py [--counts 1 4 8] [--runs 3]

With --runs, the counts are launched again in turn and a summary compares, per run and as the
median of the runs, the fastest K launches of N at once with K at once (the machine is noisy:
ratios within one run say more than figures across runs).

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
    parser.add_argument("--runs", type=int, default=1, help="how many times to launch the counts, in turn")
    args = parser.parse_args()
    endpoints = galaxy_it.load_endpoints()
    # Launch speed, not a node's start: every job node made on demand is started first.
    local_cluster.all_nodes_up()
    # A user per launch: each user may have only a few sessions at once (gxnb_session_limit_per_user).
    keys = [galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])[1]
            for _ in range(max(args.counts))]  # fmt: skip
    runs: list[dict[int, list[float]]] = []
    for run in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"run {run} of {args.runs}", flush=True)
        runs.append({count: launch_at_once(endpoints, keys[:count], args.hold) for count in args.counts})
    if args.runs > 1:
        print_summary(runs, args.counts)
    return 0


def print_summary(runs: list[dict[int, list[float]]], counts: list[int]) -> None:
    """The fastest K of N at once against K at once, for each K < N of the counts (K > 1)."""
    for fewer in counts:
        for more in counts:
            if not 1 < fewer < more:
                continue
            ratios = []
            for number, times in enumerate(runs, 1):
                first = statistics.median(sorted(times[more])[:fewer])
                alone = statistics.median(times[fewer])
                ratios.append(first / alone)
                print(f"summary run {number}: the fastest {fewer} of {more} at once median {first:.1f} s, "
                      f"{fewer} at once median {alone:.1f} s: {first / alone:.2f}x", flush=True)
            print(f"summary: the fastest {fewer} of {more} against {fewer} at once, median of {len(runs)} runs "
                  f"{statistics.median(ratios):.2f}x (each: {' '.join(f'{r:.2f}' for r in ratios)})", flush=True)


def launch_at_once(endpoints: dict, keys: list[str], hold: float) -> list[float]:
    """Launch a session per key at once: seconds from each launch call to JupyterLab's 200."""
    count = len(keys)
    print(f"{count} at once: launching ...", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(one_launch, endpoints, key, hold) for key in keys]
        time.sleep(min(hold, 10) + 15)
        memory = idle_session_memory_mib()
        times = [f.result()[0] for f in futures]
    memory_text = (f"idle session memory median {statistics.median(memory):.0f} MiB over {len(memory)}"
                   if memory else "no session open when memory was read")  # fmt: skip
    print(f"{count} at once: launch -> JupyterLab 200 median {statistics.median(times):.1f} s, "
          f"p95 {p95(times):.1f} s, max {max(times):.1f} s; {memory_text}", flush=True)
    # Those that got a place first, and those that waited for one: each launch, fastest first.
    print(f"{count} at once, each: {' '.join(f'{t:.1f}' for t in sorted(times))} s", flush=True)
    return times


if __name__ == "__main__":
    sys.exit(main())
