"""Job nodes made on demand: what power saving bills against what is used, and what it costs in
waiting, on a simulated day of sessions and trainings (issue 28's benchmark); and, with --live,
launch -> JupyterLab on the local cluster when the on-demand node must be started vs when it is up.

    .venv/bin/python -m tests.benchmarks.elastic_nodes [--days 5] [--boot-s 180] [--seed 1]
    .venv/bin/python -m tests.benchmarks.elastic_nodes --live [--rounds 3]   # after make deploy-local

The trace is synthetic: the paper (shared/seed/paper.txt) and Galaxy Europe publish no arrival
times or session lengths for this tool, so the day is written from stated assumptions that an
operator can change on the command line:

- notebook sessions arrive as a Poisson process, 6 an hour from 9 to 17 h, 2 an hour in the
  shoulders (7-9 h, 17-20 h), 0.3 an hour at night; each lasts a lognormal time, median 90 min,
  capped at the 12 h session limit (gxnb_session_walltime), and takes one GPU shard (of 4);
- trainings (run_jupyter_job) arrive 0.5 an hour from 9 to 17 h, median 3 h, and take a GPU whole;
- the cluster has --nodes job nodes of 2 GPUs each (the local cluster's shape); a node made on
  demand takes --boot-s to join (3 min: a cloud instance booting an image; the local driver's
  container joined in about 4 s, tests/e2e/test_nodes_on_demand.py, and Slurm 22.05 adds up to
  30 s before the job starts).

Policies replayed on the same trace: every node always on (static), and power saving with 0 and
1 node always on, each at the idle times given (--idle-minutes). Printed per policy: node-hours
billed (a node is billed from its start until it is off), node-hours used (a node with a job),
their ratio, and the waits (arrival to start) at the median, p95 and max. The goal in issue 28:
billed <= 1.3 x used, p95 wait <= 5 min.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import statistics
import time
from dataclasses import dataclass, field

TICK_S = 10
SHARDS_PER_GPU = 4
GPUS_PER_NODE = 2
SESSION_LIMIT_S = 12 * 3600


@dataclass
class Job:
    arrival_s: float
    length_s: float
    shards: int  # 1: a session's share; SHARDS_PER_GPU: a training's whole GPU
    start_s: float | None = None


@dataclass
class Node:
    on: bool
    always_on: bool
    ready_at_s: float = 0.0  # when a node being started joins
    idle_since_s: float = 0.0
    gpus: list[list[Job]] = field(default_factory=lambda: [[] for _ in range(GPUS_PER_NODE)])

    def ready(self, now: float) -> bool:
        return self.on and now >= self.ready_at_s

    def busy(self) -> bool:
        return any(self.gpus)

    def place(self, job: Job) -> bool:
        """A GPU with room for the job: shards of one GPU; a whole GPU only where no shard is used."""
        for gpu in self.gpus:
            if sum(j.shards for j in gpu) + job.shards <= SHARDS_PER_GPU:
                gpu.append(job)
                return True
        return False


def rate_per_hour(hour: float, day: float, shoulder: float, night: float) -> float:
    if 9 <= hour < 17:
        return day
    if 7 <= hour < 9 or 17 <= hour < 20:
        return shoulder
    return night


def trace(days: int, seed: int) -> list[Job]:
    """Arrivals by thinning a Poisson process of the largest rate (Lewis and Shedler)."""
    rng = random.Random(seed)
    jobs: list[Job] = []
    for _kind, rates, median_s, sigma, shards in (
        ("session", (6.0, 2.0, 0.3), 90 * 60, 0.9, 1),
        ("training", (0.5, 0.0, 0.0), 3 * 3600, 0.7, SHARDS_PER_GPU),
    ):
        peak = max(rates)
        now = 0.0
        while True:
            now += rng.expovariate(peak / 3600)
            if now >= days * 86400:
                break
            if rng.random() < rate_per_hour((now % 86400) / 3600, *rates) / peak:
                length = min(rng.lognormvariate(math.log(median_s), sigma), SESSION_LIMIT_S)
                jobs.append(Job(now, length, shards))
    return sorted(jobs, key=lambda job: job.arrival_s)


def replay(jobs: list[Job], nodes: int, always_on: int, idle_s: float, boot_s: float, days: int) -> dict:
    jobs = [Job(job.arrival_s, job.length_s, job.shards) for job in jobs]
    cluster = [Node(on=i < always_on, always_on=i < always_on) for i in range(nodes)]
    waiting: list[Job] = []
    pending = list(jobs)
    billed_s = used_s = 0.0
    now = 0.0
    while now < days * 86400 or waiting or any(node.busy() for node in cluster):
        while pending and pending[0].arrival_s <= now:
            waiting.append(pending.pop(0))
        for node in cluster:  # ended jobs leave their GPUs
            for gpu in node.gpus:
                for job in [j for j in gpu if j.start_s + j.length_s <= now]:
                    gpu.remove(job)
                    if not node.busy():
                        node.idle_since_s = now
        for job in list(waiting):  # first come, first placed, on nodes that are up
            if any(node.ready(now) and node.place(job) for node in cluster):
                job.start_s = now
                waiting.remove(job)
        # Slurm's power saving: start an off node for jobs that fit nowhere (one per GPU's worth
        # of waiting shards, as Slurm resumes the nodes it allocated), and switch off nodes idle
        # for the idle time.
        starting = sum(1 for node in cluster if node.on and not node.ready(now))
        wanted = math.ceil(sum(job.shards for job in waiting) / (SHARDS_PER_GPU * GPUS_PER_NODE))
        for node in cluster:
            if not node.on and starting < wanted:
                node.on, node.ready_at_s, node.idle_since_s = True, now + boot_s, now + boot_s
                starting += 1
            elif (node.on and not node.always_on and not node.busy() and node.ready(now)
                  and now - node.idle_since_s >= idle_s and not waiting):  # fmt: skip
                node.on = False
        billed_s += TICK_S * sum(node.on for node in cluster)
        used_s += TICK_S * sum(node.busy() for node in cluster)
        now += TICK_S
    waits = sorted(job.start_s - job.arrival_s for job in jobs)
    return {
        "billed_h": billed_s / 3600, "used_h": used_s / 3600, "ratio": billed_s / max(used_s, 1),
        "wait_p50_s": waits[len(waits) // 2], "wait_p95_s": waits[int(len(waits) * 0.95)], "wait_max_s": waits[-1],
    }  # fmt: skip


def launch_seconds(endpoints: dict, key: str) -> float:
    """Launch -> JupyterLab's API answering through Galaxy's route, seconds; the session is stopped."""
    from tests.support import galaxy_it

    begun = time.monotonic()
    gi, history_id, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], key)
    try:
        entry_point = galaxy_it.wait_for_entry_point(gi, job_id, timeout=300, progress=None)
        session = galaxy_it.NotebookSession(gi, endpoints["galaxy_url"], history_id, job_id, entry_point)
        galaxy_it.wait_for_http_200(session.url + "api/status", timeout=120, session=session.http)
        return time.monotonic() - begun
    finally:
        gi.jobs.cancel_job(job_id)


def live(rounds: int) -> None:
    """Interleaved rounds on the local cluster, the always-on node drained meanwhile so that every
    launch lands on the on-demand node: switched off (Slurm starts it) vs up."""
    from tests.support import galaxy_it, local_cluster

    galaxy_it.trust_the_local_ca()
    endpoints = galaxy_it.load_endpoints()
    key = galaxy_it.new_user().key
    on_demand = local_cluster.nodes_on_demand()[0]
    figures: dict[str, list[float]] = {"node off (started for the launch)": [], "node up (warm)": []}
    with contextlib.ExitStack() as stack:
        for other in set(local_cluster.job_nodes()) - {on_demand}:
            stack.enter_context(local_cluster.drained(other))
        for round_number in range(1, rounds + 1):
            for label in figures:
                local_cluster.wait_until_no_job_on(on_demand, timeout=300)
                if label.startswith("node off"):
                    local_cluster.power_down(on_demand, timeout=180)
                else:
                    local_cluster.power_up(on_demand)
                figures[label].append(launch_seconds(endpoints, key))
                print(f"round {round_number}, {label}: {figures[label][-1]:.1f} s", flush=True)
    local_cluster.power_up(on_demand)
    for label, values in figures.items():
        print(f"{label}: median {statistics.median(values):.1f} s, min {min(values):.1f}, max {max(values):.1f} "
              f"(n={len(values)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", action="store_true", help="measure launches on the local cluster instead")
    parser.add_argument("--rounds", type=int, default=3, help="--live: launches of each kind (default 3)")
    parser.add_argument("--days", type=int, default=5, help="weekdays simulated (default 5)")
    parser.add_argument("--nodes", type=int, default=4, help="job nodes (the most there can be), default 4")
    parser.add_argument("--boot-s", type=float, default=180, help="seconds a node made on demand takes to join")
    parser.add_argument("--idle-minutes", type=float, nargs="+", default=[10, 30], help="idle times to compare")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.live:
        live(args.rounds)
        return
    jobs = trace(args.days, args.seed)
    sessions = sum(job.shards == 1 for job in jobs)
    print(f"trace: {args.days} day(s), {sessions} sessions, {len(jobs) - sessions} trainings (seed {args.seed}); "
          f"{args.nodes} nodes x {GPUS_PER_NODE} GPUs x {SHARDS_PER_GPU} shards; a node joins {args.boot_s:.0f} s "
          "after its start")  # fmt: skip
    print(f"{'policy':32} {'billed h':>9} {'used h':>8} {'billed/used':>11} {'wait p50':>9} {'p95':>7} {'max':>7}")
    policies = [("static (all on)", args.nodes, 0.0)]
    policies += [(f"elastic, {warm} warm, idle {idle:g} min", warm, idle * 60)
                 for idle in args.idle_minutes for warm in (0, 1)]  # fmt: skip
    for name, warm, idle_s in policies:
        r = replay(jobs, args.nodes, warm, idle_s, args.boot_s, args.days)
        print(f"{name:32} {r['billed_h']:9.1f} {r['used_h']:8.1f} {r['ratio']:11.2f} {r['wait_p50_s']:8.0f}s "
              f"{r['wait_p95_s']:6.0f}s {r['wait_max_s']:6.0f}s")  # fmt: skip


if __name__ == "__main__":
    main()
