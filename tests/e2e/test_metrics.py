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


def test_the_services_page_shows_each_nodes_gpus_and_the_sessions():
    """Prometheus' console /consoles/gxnb.html: the one page an operator looks at."""
    page = local_cluster.run(local_cluster.head(), "curl", "-sf", f"{PROMETHEUS}/consoles/gxnb.html")
    nodes = page.split('<table id="nodes">')[1].split("</table>")[0]
    for node in local_cluster.job_nodes():
        row = nodes.split(f"<td>{node}</td>")[1].split("</tr>")[0]
        cells = [cell.split("</td>")[0].strip() for cell in row.split("<td>")[1:]]
        assert cells[1] == str(local_cluster.containers()[node]["gpus"]), cells  # GPUs
        assert "not measured" in cells[4], cells  # fake GPUs: no utilization, and the page says so
    assert 'id="sessions-running">' in page and 'id="alerts">' in page
    # Launch times, Galaxy's jobs by destination, nginx's requests and errors, GPU-hours this month.
    for part in ('id="launch-p50">', 'id="launch-p95">', '<table id="destinations">', '<table id="requests">',
                 '<table id="gpu-hours-users">', '<table id="gpu-hours-groups">'):  # fmt: skip
        assert part in page, part
    hosts = page.split('<table id="hosts">')[1].split("</table>")[0]
    assert hosts.count("<td>yes</td>") == len(local_cluster.containers()) + len(local_cluster.job_nodes()) + 1


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
        # Galaxy's view (its database): the session's destination, its route, its launch time.
        # (TPV's destinations for sessions: gpu_docker_session here, cpu_docker_session without GPUs.)
        wait_for("the session running at a session destination in Galaxy's counts", lambda: sum(query(
            'gxnb_galaxy_jobs{destination=~".+_docker_session",state="running"}').values()) >= 1, timeout=60)
        assert sum(query("gxnb_galaxy_sessions_routed").values()) >= 1
        assert sum(query("gxnb_galaxy_session_launches").values()) >= 1
        p95 = query('gxnb_galaxy_session_launch_seconds{quantile="0.95"}')
        assert p95 and 0 < max(p95.values()) < 600, p95
        # nginx answered the session's pages through gx-it-proxy, and Galaxy's API: counted by part.
        for part in ("sessions", "galaxy"):
            wait_for(f"nginx's {part} responses counted", lambda part=part: sum(query(
                f'gxnb_http_responses_total{{part="{part}",code="2xx"}}').values()) >= 1, timeout=60)
        # GPU-hours this month (Slurm's accounting, read by the exporter at most once a minute):
        # the session's user, while it runs.
        email = session.galaxy.users.get_current_user()["email"]
        hours = wait_for(f"{email}'s GPU-hours", lambda: query(f'gxnb_user_gpu_hours_this_month{{user="{email}"}}'),
                         timeout=150)  # fmt: skip
        assert 0 < max(hours.values()) < 1, hours
    finally:
        session.galaxy.jobs.cancel_job(session.job_id)


# Alertmanager's webhook receiver on the head (the local inventory's gxnb_alert_receiver): each
# notification's body, one JSON a line, into a file.
WEBHOOK_LISTENER = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[2], "ab") as out:
            out.write(body.replace(b"\\n", b" ") + b"\\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@pytest.fixture
def webhook():
    """The notifications Alertmanager sends while the test runs: a function returning them."""
    url = local_cluster.facts()["alert_webhook"]
    assert url.startswith("http://127.0.0.1:"), f"the local inventory's alert receiver is a webhook on the head: {url}"
    port = int(url.split(":")[2].split("/")[0])
    head, received = local_cluster.head(), "/tmp/gxnb-test-alerts.jsonl"
    local_cluster.run(head, "rm", "-f", received)
    local_cluster.run(head, "sh", "-c", f"nohup python3 -c '{WEBHOOK_LISTENER}' {port} {received} "
                                        ">/dev/null 2>&1 & echo $! > /tmp/gxnb-test-webhook.pid")  # fmt: skip

    def notifications() -> list[dict]:
        text = local_cluster.run(head, "sh", "-c", f"cat {received} 2>/dev/null || true")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    yield notifications
    local_cluster.run(head, "sh", "-c", "kill $(cat /tmp/gxnb-test-webhook.pid)", check=False)


def test_an_alert_fires_when_a_job_nodes_slurmd_stops_and_reaches_the_receiver(webhook):
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

        def sent(status):
            return [a for n in webhook() for a in n["alerts"] if a["labels"]["alertname"] == "GxnbJobNodeDown"
                    and a["labels"].get("node") == node and a["status"] == status]  # fmt: skip

        [notified] = wait_for("the alert sent to the receiver", lambda: sent("firing"), timeout=120)[:1]
        assert f"Job node {node} is down" == notified["annotations"]["summary"], notified
    finally:
        local_cluster.run(node, "systemctl", "start", "slurmd")
        local_cluster.wait_for_node_state(node, {"idle", "mixed", "allocated"}, timeout=180)
    wait_for("the alert resolved", lambda: not firing(), timeout=120)
    wait_for("the receiver told it is resolved", lambda: sent("resolved"), timeout=360)
