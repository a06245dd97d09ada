#!/usr/bin/env python3
"""Where a notebook launch spends its time, step by step, from the parts' own logs: the launch
call, Galaxy's job record, the handler taking it, sbatch returning, Slurm allocating, the
container created and started on the node, JupyterLab listening, the runner routing the
session (the interactive-tool map), the first HTTP 200 through nginx and gx-it-proxy.

    .venv/bin/python tests/benchmarks/launch_trace.py [--at-once 4] [--runs 1]

Needs the local deployment (make deploy-local). Every part runs on this machine's clock (the
cluster's containers share its kernel), so their timestamps compare. Prints one table per
launch (seconds since the launch call, and since the step before) and, for several launches,
the median and largest time of each step.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import pathlib
import re
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.support import galaxy_it, local_cluster  # noqa: E402

STEPS = [
    ("launch call", "the client posts the tool run"),
    ("job created", "Galaxy's job record (API create_time)"),
    ("handler took it", "handler log: Job dispatched"),
    ("sbatch returned", "handler log: queued with identifier"),
    ("slurm allocated", "slurmctld log: sched: Allocate"),
    ("container created", "node's docker events: create"),
    ("container started", "node's docker events: start"),
    ("jupyterlab listening", "container log: Jupyter Server ... is running"),
    ("session routed", "handler log: interactive tool routed (gxnb_slurm_runner)"),
    ("entry point active", "the client sees it in Galaxy's API"),
    ("first 200", "JupyterLab through nginx and gx-it-proxy"),
    # The end: how soon the node (its GPU) is free for the next job after the user shuts down.
    ("shutdown call", "the client asks JupyterLab to shut down"),
    ("container ended", "node's docker events: die"),
    ("slurm job ended", "slurmctld log: _job_complete ... done"),
]


def _utc(text: str) -> float:
    """An ISO time (journal's short-iso-precise, slurmctld's [..], Galaxy's API) as epoch seconds."""
    text = text.strip().replace("Z", "+00:00")
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:  # slurmctld and Galaxy's API write UTC without a zone
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def galaxy_handler_times(journal: str, job_number: int) -> dict[str, float]:
    """The handler's steps for Galaxy job number N, from `journalctl -o short-iso-precise`."""
    patterns = {
        "handler took it": rf"\({job_number}\) Job dispatched",
        "sbatch returned": rf"\({job_number}\) queued with identifier",
        "session routed": rf"\({job_number}/\d+\) interactive tool routed",
    }
    found: dict[str, float] = {}
    for line in journal.splitlines():
        for step, pattern in patterns.items():
            if step not in found and re.search(pattern, line):
                found[step] = _utc(line.split(" ", 1)[0])
    return found


def slurm_allocated_time(slurmctld_log: str, slurm_id: str) -> float | None:
    match = re.search(rf"^\[([0-9T:.-]+)\] sched(?:/backfill)?: Allocate JobId={slurm_id} ", slurmctld_log, re.M)
    return _utc(match.group(1)) if match else None


def slurm_ended_time(slurmctld_log: str, slurm_id: str) -> float | None:
    match = re.search(rf"^\[([0-9T:.-]+)\] _job_complete: JobId={slurm_id} done", slurmctld_log, re.M)
    return _utc(match.group(1)) if match else None


def docker_event_times(events: str) -> dict[str, float]:
    """`docker events --format '{{.TimeNano}} {{.Action}}'` lines: the first create, start and die."""
    found: dict[str, float] = {}
    for line in events.splitlines():
        nanos, _, action = line.strip().partition(" ")
        step = {"create": "container created", "start": "container started", "die": "container ended"}.get(action)
        if step and step not in found:
            found[step] = int(nanos) / 1e9
    return found


def jupyter_listening_time(tool_log: str) -> float | None:
    """When Jupyter Server said it is running, by its own log line's time (`docker logs` of the
    session's container, which runs on UTC)."""
    running = re.compile(r"\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ServerApp\] Jupyter Server \S+ is running at")
    for line in tool_log.splitlines():
        stamp = running.search(line)
        if stamp:
            return _utc(stamp.group(1).replace(" ", "T"))
    return None


def table(times: dict[str, float]) -> str:
    """The steps in the order they happened (the route is taken while JupyterLab still starts),
    each with its time since the launch call and since the step before; missing ones last."""
    start = times["launch call"]
    rows, before = [], start
    for step, source in sorted((s for s in STEPS if s[0] in times), key=lambda s: times[s[0]]):
        rows.append(f"  {step:<22} {times[step] - start:8.2f} {times[step] - before:+8.2f}   {source}")
        before = times[step]
    rows += [f"  {step:<22} {'-':>8} {'-':>8}   {source} (not found)" for step, source in STEPS if step not in times]
    return "\n".join([f"  {'step':<22} {'at s':>8} {'step s':>8}"] + rows)


def trace_one(endpoints: dict, api_key: str) -> dict[str, float]:
    """Launch one notebook, follow it to its first 200, read the parts' logs, shut it down."""
    times = {"launch call": time.time()}
    gi, history_id, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], api_key)
    ep = galaxy_it.wait_for_entry_point(gi, job_id, timeout=900, progress=None)
    times["entry point active"] = time.time()
    session = galaxy_it.NotebookSession(gi, endpoints["galaxy_url"], history_id, job_id, ep)
    galaxy_it.wait_for_http_200(session.url + "lab", timeout=300, session=session.http)
    times["first 200"] = time.time()

    admin = galaxy_it.admin_instance()
    job = admin.jobs.show_job(job_id, full_details=True)
    times["job created"] = _utc(job["create_time"])
    number = admin.make_get_request(f"{admin.base_url}/api/configuration/decode/{job_id}").json()["decoded_id"]
    slurm_id = job["external_id"]
    head = local_cluster.head()
    journal = local_cluster.run(head, "journalctl", "--no-pager", "-o", "short-iso-precise", "--since",
                                f"@{int(times['launch call']) - 1}", timeout=60)  # fmt: skip
    times.update(galaxy_handler_times(journal, number))
    node, container = local_cluster.node_and_container(admin, job_id)
    listening = jupyter_listening_time(local_cluster.run(node, "sh", "-c", f"docker logs {container} 2>&1", timeout=60))
    if listening:
        times["jupyterlab listening"] = listening
    times["shutdown call"] = time.time()
    session.api("POST", "api/shutdown")
    galaxy_it.wait_for_job(gi, job_id, timeout=120)
    # Only this job's lines: the controller's log grows with every job the cluster ran.
    slurmctld_log = local_cluster.run(head, "grep", "-F", f"JobId={slurm_id} ", "/var/log/slurm/slurmctld.log",
                                      timeout=60, check=False)  # fmt: skip
    for step, moment in (("slurm allocated", slurm_allocated_time(slurmctld_log, slurm_id)),
                         ("slurm job ended", slurm_ended_time(slurmctld_log, slurm_id))):  # fmt: skip
        if moment:
            times[step] = moment
    label = local_cluster.facts()["job_container_label"]
    events = local_cluster.run(node, "docker", "events", "--since", str(int(times["launch call"]) - 1),
                               "--until", str(int(time.time()) + 1), "--filter", f"label={label}={slurm_id}",
                               "--filter", "type=container", "--format", "{{.TimeNano}} {{.Action}}", timeout=60)
    times.update(docker_event_times(events))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at-once", type=int, default=1, help="launches started together (default 1)")
    parser.add_argument("--runs", type=int, default=1, help="rounds of launches (default 1)")
    args = parser.parse_args()
    endpoints = galaxy_it.load_endpoints()
    keys = [galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])[1] for _ in range(args.at_once)]
    traces = []
    for run in range(args.runs):
        with concurrent.futures.ThreadPoolExecutor(args.at_once) as pool:
            for number, trace in enumerate(pool.map(lambda key: trace_one(endpoints, key), keys), 1):
                traces.append(trace)
                total = trace["first 200"] - trace["launch call"]
                print(f"run {run + 1}, launch {number}/{args.at_once}: {total:.2f} s to the first 200", flush=True)
                print(table(trace), flush=True)
    if len(traces) > 1:
        print(f"over {len(traces)} launches ({args.at_once} at once): seconds since the launch call, median / max")
        for step, _source in STEPS[1:]:
            since = [t[step] - t["launch call"] for t in traces if step in t]
            if since:
                print(f"  {step:<22} {statistics.median(since):8.2f} {max(since):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
