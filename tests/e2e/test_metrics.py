"""Operators see the service without logging in to each host: Prometheus on the Galaxy server
scrapes every host's node exporter, the job nodes' GPU exporters and the service exporter
(Slurm), its alert rules are loaded, and an alert fires when a job node's slurmd stops. On the
local cluster's fake GPUs the GPU exporter reports the GPUs its device files show and nothing it
cannot measure (no utilization: unavailable, never invented)."""

from __future__ import annotations

import json

import pytest

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

PROMETHEUS = "http://" + local_cluster.facts()["prometheus_listen"]


def prometheus(path: str, **params: str) -> dict:
    """Prometheus' HTTP API on the head (it listens there only)."""
    arguments = [arg for name, value in params.items() for arg in ("--data-urlencode", f"{name}={value}")]
    out = local_cluster.run(local_cluster.head(), "curl", "-sf", "-G", *arguments, f"{PROMETHEUS}/api/v1/{path}")
    answer = json.loads(out)
    assert answer["status"] == "success", answer
    return answer["data"]


def query(expression: str) -> dict[tuple, float]:
    """An instant query's series: their labels (sorted pairs, __name__ left out) -> value."""
    return {tuple(sorted((k, v) for k, v in series["metric"].items() if k != "__name__")): float(series["value"][1])
            for series in prometheus("query", query=expression)["result"]}  # fmt: skip


def wait_for(what: str, look, timeout: float = 120):
    return galaxy_it.wait_for(look, what, timeout=timeout)


def values_by_node(expression: str) -> dict[str, float]:
    return {dict(labels)["node"]: value for labels, value in query(expression).items()}


def test_prometheus_scrapes_every_host_and_each_exporter():
    nodes, head = local_cluster.job_nodes(), local_cluster.head()
    expected = {("node", host) for host in [head, *nodes]} | {("gpu", node) for node in nodes} | {("service", head)}

    def targets_up():
        targets = prometheus("targets")["activeTargets"]
        health = {(t["labels"]["job"], t["labels"].get("node")): t["health"] for t in targets}
        return all(health.get(target) == "up" for target in expected) and health

    health = wait_for("every exporter scraped and up", targets_up)
    assert expected <= set(health), health
    # One node exporter metric per host: the hosts' own, not one host's three times.
    assert set(values_by_node("node_memory_MemTotal_bytes")) == {head, *nodes}


def test_fake_gpus_are_reported_as_their_device_files_and_nothing_is_invented():
    gpus = {node: local_cluster.containers()[node]["gpus"] for node in local_cluster.job_nodes()}
    assert values_by_node("gxnb_gpu_count") == gpus
    assert values_by_node("gxnb_gpu_nvml_up") == {node: 0 for node in gpus}  # no NVIDIA driver here
    assert query("gxnb_gpu_utilization_ratio") == {} and query("gxnb_gpu_temperature_celsius") == {}
    assert values_by_node("gxnb_slurm_node_gpus") == gpus
    shards = int(local_cluster.facts()["gpu_shards_per_gpu"])
    if shards:
        assert values_by_node("gxnb_slurm_node_shards") == {node: n * shards for node, n in gpus.items()}


def test_a_running_session_shows_on_its_gpu_and_in_slurms_counts():
    session = galaxy_it.new_users_session()
    admin = galaxy_it.admin_instance()
    try:
        slurm_job = admin.jobs.show_job(session.job_id, full_details=True)["external_id"]
        node, gpu = local_cluster.allocated_gpu(slurm_job)

        def its_gpu():
            return {dict(labels)["gpu"] for labels in query(f'gxnb_gpu_job{{slurm_job="{slurm_job}"}}')}

        assert wait_for("the session's container on its GPU", its_gpu, timeout=60) == {gpu}
        assert dict(next(iter(query(f'gxnb_gpu_job{{slurm_job="{slurm_job}"}}'))))["node"] == node
        # The service exporter is scraped every 15 s: its view may lag the GPU exporter's.
        resource = "shard" if int(local_cluster.facts()["gpu_shards_per_gpu"]) else "gpu"
        wait_for("a running session in Slurm's counts", lambda: sum(query(
            f'gxnb_slurm_jobs{{state="running",kind="session",resource="{resource}"}}').values()) >= 1, timeout=60)
        wait_for(f"a {resource} allocated on {node}",
                 lambda: values_by_node(f"gxnb_slurm_node_{resource}s_allocated")[node] >= 1, timeout=60)
    finally:
        session.galaxy.jobs.cancel_job(session.job_id)


def test_an_alert_fires_when_a_job_nodes_slurmd_stops():
    node = local_cluster.job_nodes()[0]
    rules = {rule["name"] for group in prometheus("rules")["groups"] for rule in group["rules"]}
    assert {"GxnbJobNodeDown", "GxnbGpuHeldIdle", "GxnbJobsWaitForAGpu", "GxnbDatabaseBackupOld"} <= rules

    def firing():
        return [alert for alert in prometheus("alerts")["alerts"]
                if alert["labels"]["alertname"] == "GxnbJobNodeDown" and alert["labels"].get("node") == node
                and alert["state"] == "firing"]  # fmt: skip

    assert firing() == []
    local_cluster.run(node, "systemctl", "stop", "slurmd")
    try:
        # Slurm notices after SlurmdTimeout (30 s here), the alert fires a minute later (the local inventory's
        # gxnb_alert_node_down_minutes).
        [alert] = wait_for(f"GxnbJobNodeDown for {node}", firing, timeout=300)
        assert alert["labels"]["severity"] == "critical"
        assert node in alert["annotations"]["summary"], alert
    finally:
        local_cluster.run(node, "systemctl", "start", "slurmd")
        local_cluster.wait_for_node_state(node, {"idle", "mixed", "allocated"}, timeout=180)
    wait_for("the alert resolved", lambda: not firing(), timeout=120)
