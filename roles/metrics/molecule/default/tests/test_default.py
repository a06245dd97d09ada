"""metrics: the node and GPU exporters and the service exporter answer on the host's address only,
Prometheus scrapes them with the service's rules loaded."""

import json
import re
import time

PROMETHEUS = "http://127.0.0.1:9090"
# The image has no curl: Python's urllib, failing (exit 1) on anything but an answer.
GET = ("python3 -c 'import sys, urllib.request; "
       "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' ")


def address(host) -> str:
    return host.ansible("setup", "filter=ansible_default_ipv4")["ansible_facts"]["ansible_default_ipv4"]["address"]


def metrics(host, port: int) -> str:
    return host.check_output(GET + f"http://{address(host)}:{port}/metrics")


def prometheus(host, path: str) -> dict:
    return json.loads(host.check_output(GET + f"{PROMETHEUS}/api/v1/{path}"))["data"]


def test_services_run(host):
    for name in ("prometheus-node-exporter", "gxnb-gpu-exporter", "gxnb-service-exporter", "prometheus",
                 "prometheus-alertmanager"):
        assert host.service(name).is_running, name
        assert host.service(name).is_enabled, name


def test_exporters_listen_on_the_hosts_address_only(host):
    for port in (9100, 9835, 9817):
        assert host.socket(f"tcp://{address(host)}:{port}").is_listening, port
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, port
        assert host.run(GET + f"http://127.0.0.1:{port}/metrics").rc != 0, port
    assert host.socket("tcp://127.0.0.1:9090").is_listening  # Prometheus: the loopback only
    assert not host.socket("tcp://0.0.0.0:9090").is_listening


def test_the_gpu_exporter_reports_the_device_files_and_invents_nothing(host):
    text = metrics(host, 9835)
    assert "gxnb_gpu_nvml_up 0" in text and "gxnb_gpu_count 2" in text
    assert 'gxnb_gpu_info{gpu="0"' in text and 'gxnb_gpu_info{gpu="1"' in text
    assert "gxnb_gpu_utilization_ratio" not in text and "gxnb_gpu_temperature_celsius" not in text


def test_the_gpu_exporter_says_whether_it_reads_the_kernel_log_and_invents_no_xid(host):
    # Whether root can read the kernel log here (a container may lack /dev/kmsg or the right).
    readable = host.run("dd if=/dev/kmsg of=/dev/null bs=8192 count=1 iflag=nonblock").rc == 0
    text = metrics(host, 9835)
    assert f"gxnb_gpu_xid_log_up {1 if readable else 0}" in text
    assert "gxnb_gpu_xid_errors_total{" not in text  # no NVIDIA driver: no Xid


def test_the_gpu_exporter_says_whether_it_reached_the_docker_engine(host):
    # No engine in this instance: no job's container is reported, and that it could not look
    # (the end-to-end test sees a session's container on its GPU).
    text = metrics(host, 9835)
    assert "gxnb_gpu_exporter_docker_up 0" in text and "gxnb_gpu_job{" not in text


def test_the_service_exporter_says_slurm_is_not_there_and_reports_the_backup(host):
    text = metrics(host, 9817)
    assert "gxnb_slurm_up 0" in text
    assert "gxnb_database_backups 1" in text
    newest = float(re.search(r"^gxnb_database_backup_newest_timestamp_seconds (\S+)$", text, re.M).group(1))
    assert 3000 < time.time() - newest < 4000  # the dump of an hour ago


def test_prometheus_scrapes_every_exporter_and_has_the_rules(host):
    for _ in range(60):
        targets = prometheus(host, "targets")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if all(health.get(job) == "up" for job in ("node", "gpu", "service", "prometheus")):
            break
        time.sleep(1)
    assert all(health.get(job) == "up" for job in ("node", "gpu", "service", "prometheus")), health
    rules = {rule["name"] for group in prometheus(host, "rules")["groups"] for rule in group["rules"]}
    alertmanagers = prometheus(host, "alertmanagers")["activeAlertmanagers"]
    assert [a["url"] for a in alertmanagers] == ["http://127.0.0.1:9093/api/v2/alerts"], alertmanagers
    assert host.socket("tcp://127.0.0.1:9093").is_listening and not host.socket("tcp://0.0.0.0:9093").is_listening
    assert not host.socket("tcp://0.0.0.0:9094").is_listening  # no gossip with other Alertmanagers
    assert {"GxnbJobNodeDown", "GxnbExporterDown", "GxnbGpuMemoryErrors", "GxnbGpuXidErrors", "GxnbJobsWaitForAGpu",
            "GxnbGpuHeldIdle", "GxnbDatasetDiskNearlyFull", "GxnbDatabaseBackupOld"} == rules
