"""GPU-hours per user and group, and the monthly GPU-hour quota (gxnb_gpu_quota), on the local
cluster: Slurm's accounting (slurmdbd on MariaDB) keeps each job with its Galaxy user and groups,
`gxnb-gpu-usage` on the Galaxy server adds up their GPU time, and a user past the quota is
refused at submission, told the quota, the use and when it resets.

The local inventory gives users named quota-*@example.org 0.002 GPU-hours a month (7.2
GPU-seconds): a new such user crosses it with two short sessions on a GPU shard."""

from __future__ import annotations

import datetime
import fnmatch
import json
import re
import uuid

import pytest

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

FACTS = local_cluster.facts()
QUOTA = json.loads(str(FACTS["gpu_quota"]))


def usage(*args: str) -> dict:
    """gxnb-gpu-usage --json on the Galaxy server, as an admin runs it."""
    return json.loads(local_cluster.run(local_cluster.head(), "gxnb-gpu-usage", "--json", *args))


def user_gpu_seconds(email: str) -> float:
    return sum(u["gpu_seconds"] for u in usage("--user", email)["users"])


def slurm_gpu_seconds(slurm_job_id: str) -> float:
    """The job's GPU time as Slurm's own record gives it: elapsed seconds times its GPUs (a shard
    counting 1/shards of one)."""
    line = local_cluster.slurm("sacct", "-X", "-n", "-P", "-j", slurm_job_id, "--format=ElapsedRaw,AllocTRES").strip()
    elapsed, tres = line.split("|")
    counts = dict(item.split("=", 1) for item in tres.split(","))
    shards = int(FACTS["gpu_shards_per_gpu"])
    gpus = int(counts.get("gres/gpu", 0)) + (int(counts.get("gres/shard", 0)) / shards if shards else 0)
    assert gpus > 0, f"job {slurm_job_id} holds no GPU: {tres}"
    return int(elapsed) * gpus


def month_end() -> datetime.datetime:
    """When this month's quotas reset: the first of the next month (the server's and this
    machine's clocks agree here: the cluster's containers share its kernel)."""
    now = datetime.datetime.now()
    return (now.replace(day=1) + datetime.timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def end_session(session: galaxy_it.NotebookSession) -> str:
    session.api("POST", "api/shutdown")
    assert galaxy_it.wait_for_job(session.galaxy, session.job_id, timeout=180) == "ok"
    return local_cluster.slurm_job_id(session.job_id)


@pytest.mark.skipif(FACTS["slurm_accounting"] != "True", reason="no Slurm accounting (gxnb_slurm_accounting)")
def test_gpu_time_adds_up_per_user_and_group_and_a_user_past_the_quota_is_refused_saying_so():
    pattern, hours = next(((p, float(h)) for p, h in QUOTA["users"].items() if p.startswith("quota-")),
                          (None, 0.0))  # fmt: skip
    assert pattern and 0 < hours <= 0.01, f"the local inventory's gxnb_gpu_quota has no small quota-* user: {QUOTA}"
    endpoints = galaxy_it.load_endpoints()
    email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"], prefix="quota")
    assert fnmatch.fnmatchcase(email, pattern), (email, pattern)
    admin = galaxy_it.admin_instance()
    group = f"gpu-lab-{uuid.uuid4().hex[:8]}"
    user_id = admin.users.get_users(f_email=email)[0]["id"]
    admin.groups.create_group(group, user_ids=[user_id])
    assert user_gpu_seconds(email) == 0.0

    # Two sessions: the first ends at once, the second once the user's GPU time passed the quota.
    first = galaxy_it.start_session(endpoints, key)
    slurm_jobs = [end_session(first)]
    first_hours = user_gpu_seconds(email) / 3600
    second = galaxy_it.start_session(endpoints, key)
    try:
        # The session's GPU status item: the user's use this month (the first session's, and its
        # own so far) and their quota.
        shown = galaxy_it.wait_for_http_200(second.url + "gxnb/accelerator", session=second.http).json()["usage"]
        assert shown["quota_gpu_hours"] == hours and shown["resets"] == f"{month_end():%Y-%m-%d}", shown
        assert first_hours <= shown["used_gpu_hours"] <= first_hours + 0.01, (shown, first_hours)
        assert f"GPU-hours this month: {shown['used_gpu_hours']:.2f}" in shown["text"], shown
        galaxy_it.wait_for(lambda: user_gpu_seconds(email) > hours * 3600, f"{email}'s GPU time past the quota",
                           timeout=240)  # fmt: skip
    finally:
        slurm_jobs.append(end_session(second))

    # The report adds up Slurm's own records of the two jobs, for the user and for their group.
    expected = sum(slurm_gpu_seconds(job) for job in slurm_jobs)
    report = usage()
    (mine,) = [u for u in report["users"] if u["user"] == email]
    assert mine["jobs"] == 2 and mine["gpu_seconds"] == pytest.approx(expected, abs=0.5), (mine, expected)
    (lab,) = [g for g in report["groups"] if g["group"] == group]
    assert lab["jobs"] == 2 and lab["gpu_seconds"] == pytest.approx(expected, abs=0.5), (lab, expected)
    table = local_cluster.run(local_cluster.head(), "gxnb-gpu-usage", "--user", email)
    assert f"{email}" in table and f"{expected / 3600:.3f}" in table, table

    # Past the quota: the next session is refused at submission, and the user is told why.
    gi, _history, refused = galaxy_it.launch_notebook(endpoints["galaxy_url"], key)
    assert galaxy_it.wait_for_job(gi, refused, timeout=120) == "error"
    message = galaxy_it.what_the_history_says(gi, refused)
    resets = month_end()
    told = re.search(r"Your GPU use this month is ([0-9.]+) GPU-hours", message)
    assert told and float(told.group(1)) == pytest.approx(expected / 3600, rel=0.05), message
    assert f"your monthly quota is {hours:g} GPU-hours (gxnb_gpu_quota users['{pattern}'])" in message, message
    assert f"resets on {resets:%Y-%m-%d} 00:00" in message, message
    assert local_cluster.slurm_job_id(refused) is None  # it never reached Slurm

    # Another user (not matching the pattern) is not held back by it.
    other = galaxy_it.new_users_session()
    try:
        assert galaxy_it.wait_for_http_200(other.url + "api/status", session=other.http).status_code == 200
    finally:
        end_session(other)
