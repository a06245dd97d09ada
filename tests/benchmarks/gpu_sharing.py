#!/usr/bin/env python3
"""GPU sharing on the local cluster (gxnb_gpu_shards_per_gpu): how many notebook sessions run at once
per GPU with shards and with whole GPUs, and the kernels' round trips with 4 sessions on one GPU's
shards against 1 session alone.

    .venv/bin/python tests/benchmarks/gpu_sharing.py [--seconds 30]

Needs the local deployment with shards (make deploy-local: 4 per GPU) and no other jobs running.
The local GPUs are fake device files: sessions on one GPU compete for their node's CPU cores only,
not for a GPU's compute or memory. The figures say how Slurm packs sessions and what sharing a
node costs a kernel, nothing about a real card.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import pathlib
import statistics
import sys
import time

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.benchmarks import concurrent_sessions  # noqa: E402
from tests.support import local_cluster  # noqa: E402

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "galaxy_config" / "tpv" / "tools.yml"


def session_size() -> tuple[int, int]:
    """The notebook tool's cores and memory (GB), as TPV gives them (tools.yml)."""
    tool = yaml.safe_load(TOOLS.read_text())["tools"]["gxnb_service_tool"]
    return int(tool["cores"]), int(tool["mem"])


def gpus_of_running_jobs() -> list[tuple[str, str]]:
    """(node, GPU index) of every running job holding a GPU or shards."""
    jobs = local_cluster.slurm("squeue", "-h", "-t", "RUNNING", "-o", "%i").split()
    return [gpu for gpu in map(local_cluster.allocated_gpu, jobs) if gpu is not None]


def packed(gres: str, cores: int, mem_gb: int, count: int) -> tuple[int, int]:
    """Submit COUNT sleeping jobs of this shape: how many run at once, and the most on one GPU."""
    jobs = [local_cluster.slurm("sbatch", "--parsable", f"--gres={gres}", f"--cpus-per-task={cores}",
                                f"--mem={mem_gb * 1024}", "-o", "/dev/null", "--wrap", "sleep 600").strip()
            for _ in range(count)]  # fmt: skip
    try:
        time.sleep(15)  # a few scheduling passes
        per_gpu = collections.Counter(gpus_of_running_jobs())
        return sum(per_gpu.values()), max(per_gpu.values(), default=0)
    finally:
        local_cluster.slurm("scancel", *jobs)
        time.sleep(5)


def round_trips(sessions: int, seconds: int) -> tuple[list[float], int, list[tuple[str, str]]]:
    """SESSIONS sessions (one user each) running a cell a second; their round trips, errors, GPUs."""
    start_together = time.monotonic() + 240
    with concurrent.futures.ThreadPoolExecutor(max_workers=sessions) as pool:
        futures = [pool.submit(concurrent_sessions.one_user, seconds, start_together) for _ in range(sessions)]
        while time.monotonic() < start_together + 5 and not all(f.done() for f in futures):
            time.sleep(5)
        gpus = gpus_of_running_jobs()
        results = [f.result() for f in futures]
    return sorted(t for r in results for t in r["times"]), sum(len(r["errors"]) for r in results), gpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="cells per session, one a second")
    args = parser.parse_args()
    shards = int(local_cluster.facts()["gpu_shards_per_gpu"])
    gpus = sum(c["gpus"] for c in local_cluster.containers().values() if c["kind"] == "node")
    if not shards or not gpus:
        print("this deployment does not share GPUs (gxnb_gpu_shards_per_gpu: 0) or has none", file=sys.stderr)
        return 2
    cores, mem_gb = session_size()
    print(f"{gpus} fake GPUs, {shards} shards each; a session takes {cores} cores and {mem_gb} GB", flush=True)
    for label, job_cores in (("sessions as the tool asks", cores), ("1-core sessions (GPUs the only bound)", 1)):
        shared = packed("shard:1", job_cores, 1 if job_cores == 1 else mem_gb, gpus * shards)
        whole = packed("gpu:1", job_cores, 1 if job_cores == 1 else mem_gb, gpus * shards)
        print(f"{label}: at once with shards {shared[0]} (at most {shared[1]} on one GPU), "
              f"with whole GPUs {whole[0]} (at most {whole[1]} on one GPU)", flush=True)
    for count in (1, shards):
        times, errors, on = round_trips(count, args.seconds)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))] if times else float("nan")
        median = statistics.median(times) if times else float("nan")
        print(f"{count} session(s) on {sorted(set(on))}: {len(times)} cells, round trip p50 {median * 1000:.1f} ms, "
              f"p95 {p95 * 1000:.1f} ms; errors {errors}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
