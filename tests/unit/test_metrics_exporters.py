"""The metrics role's exporters (roles/metrics/files): what they report from what NVML, the device
files, the Docker engine and Slurm tell them, and that a value they cannot read is left out
(never invented). tests/e2e/test_metrics.py scrapes the real ones on the local cluster."""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util
import json
import os
import re
import time
from types import SimpleNamespace

from tests.conftest import REPO


def exporter(name: str):
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(REPO / "roles/metrics/files" / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


gpu_exporter = exporter("gxnb-gpu-exporter")
service_exporter = exporter("gxnb-service-exporter")


def samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}  # fmt: skip


def test_nvml_values_are_reported_and_what_nvml_cannot_read_is_left_out(tmp_path):
    def nvml():
        return [{"index": 0, "uuid": "GPU-abc", "name": "NVIDIA H100", "utilization": 0.42, "memory_utilization": 0.1,
                 "memory_used": 2 * 1024**3, "memory_total": 80 * 1024**3, "temperature": 51, "power": 312.5,
                 "ecc_corrected": 3, "ecc_uncorrected": 0},
                {"index": 1, "uuid": "GPU-def", "name": "NVIDIA H100", "utilization": None, "temperature": None,
                 "power": None, "ecc_corrected": None, "ecc_uncorrected": None}]  # fmt: skip

    found = samples(gpu_exporter.collect("org.gxnb.slurm-job-id", str(tmp_path / "no.sock"), nvml=nvml))

    assert found["gxnb_gpu_nvml_up"] == 1 and found["gxnb_gpu_count"] == 2
    assert found['gxnb_gpu_info{gpu="0",uuid="GPU-abc",name="NVIDIA H100"}'] == 1
    assert found['gxnb_gpu_utilization_ratio{gpu="0"}'] == 0.42
    assert found['gxnb_gpu_memory_total_bytes{gpu="0"}'] == 80 * 1024**3
    assert found['gxnb_gpu_power_watts{gpu="0"}'] == 312.5
    assert found['gxnb_gpu_ecc_errors_total{gpu="0",type="uncorrected"}'] == 0
    assert not [name for name in found if 'gpu="1"' in name and not name.startswith("gxnb_gpu_info")]
    assert found["gxnb_gpu_exporter_docker_up"] == 0  # no engine at that socket: said, not hidden


def test_without_nvml_the_device_files_are_the_gpus_and_nothing_is_measured(tmp_path):
    for name in ("nvidia0", "nvidia3", "nvidiactl", "nvidia-uvm", "nvidia-modeset"):
        (tmp_path / name).touch()

    found = samples(gpu_exporter.collect("label", str(tmp_path / "no.sock"), dev=str(tmp_path), nvml=lambda: None))

    assert found["gxnb_gpu_nvml_up"] == 0 and found["gxnb_gpu_count"] == 2
    assert {name for name in found if name.startswith("gxnb_gpu_info")} == {
        'gxnb_gpu_info{gpu="0",uuid="",name=""}', 'gxnb_gpu_info{gpu="3",uuid="",name=""}'}
    assert not [name for name in found if "utilization" in name or "temperature" in name or "memory" in name]


def test_a_cpu_node_reports_no_gpu_rather_than_failing(tmp_path):
    found = samples(gpu_exporter.collect("label", str(tmp_path / "no.sock"), dev=str(tmp_path / "none"),
                                         nvml=lambda: None))  # fmt: skip
    assert found["gxnb_gpu_count"] == 0


def test_a_containers_gpus_come_from_its_device_request_or_its_environment():
    toolkit = {"HostConfig": {"DeviceRequests": [{"Driver": "nvidia", "DeviceIDs": ["2", "0"]}]},
               "Config": {"Env": ["CUDA_VISIBLE_DEVICES=0,1"]}}  # fmt: skip
    fake_gpus = {"HostConfig": {"DeviceRequests": None}, "Config": {"Env": ["PATH=/bin", "CUDA_VISIBLE_DEVICES=1"]}}
    cpu_only = {"HostConfig": {}, "Config": {"Env": ["CUDA_VISIBLE_DEVICES="]}}
    assert gpu_exporter.container_gpus(toolkit) == [0, 2]
    assert gpu_exporter.container_gpus(fake_gpus) == [1]
    assert gpu_exporter.container_gpus(cpu_only) == []


SCONTROL_NODES = (
    "NodeName=gpu01 Arch=x86_64 Gres=gpu:2,shard:8 NodeAddr=10.0.0.11 OS=Linux 6.1.0-18 #1 SMP Debian State=MIXED "
    "GresUsed=gpu:0,shard:(null):3(IDX:0-1) Reason=(null)\n"
    "NodeName=gpu02 Gres=gpu:4 State=DOWN+NOT_RESPONDING GresUsed=gpu:0(IDX:N/A) "
    "Reason=Not responding [slurm@2026-12-07T06:00:00]\n"
    "NodeName=gpu03 Gres=gpu:4 State=IDLE+CLOUD+POWERED_DOWN+NOT_RESPONDING GresUsed=gpu:0\n"
)


def test_slurms_nodes_their_gpus_and_which_are_down():
    metrics = service_exporter.Metrics()
    service_exporter.node_metrics(metrics, service_exporter.scontrol_records(SCONTROL_NODES))
    found = samples(metrics.text())

    assert found['gxnb_slurm_node_state{node="gpu01",state="mixed"}'] == 1
    assert found['gxnb_slurm_node_gpus{node="gpu01"}'] == 2 and found['gxnb_slurm_node_shards{node="gpu01"}'] == 8
    assert found['gxnb_slurm_node_shards_allocated{node="gpu01"}'] == 3
    assert found['gxnb_slurm_node_down{node="gpu01",reason=""}'] == 0
    assert found['gxnb_slurm_node_down{node="gpu02",reason="Not responding [slurm@2026-12-07T06:00:00]"}'] == 1
    # Switched off by Slurm's power saving: not answering on purpose, not down.
    assert found['gxnb_slurm_node_down{node="gpu03",reason=""}'] == 0
    assert found['gxnb_slurm_node_flag{node="gpu03",flag="powered_down"}'] == 1


def test_jobs_by_state_resource_and_kind_and_the_longest_wait():
    now = datetime.datetime(2026, 12, 7, 12, 0, 0)
    squeue = "\n".join([
        "11|RUNNING|gres/shard:1|g5_interactive_tool_jupyter_notebook_ada@example.org|2026-12-07T11:00:00",
        "12|PENDING|gres/shard:1|g6_interactive_tool_jupyter_notebook_bob@example.org|2026-12-07T11:50:00",
        "13|PENDING|gres/gpu:1|g7_run_jupyter_job_ada@example.org|2026-12-07T11:15:00",
        "14|RUNNING|N/A|g8_cat1_ada@example.org|2026-12-07T11:59:00",
    ])
    metrics = service_exporter.Metrics()
    service_exporter.job_metrics(metrics, squeue, now, re.compile("^interactive_tool_"), re.compile("^run_jupyter_job"))
    found = samples(metrics.text())

    assert found['gxnb_slurm_jobs{state="running",resource="shard",kind="session"}'] == 1
    assert found['gxnb_slurm_jobs{state="pending",resource="shard",kind="session"}'] == 1
    assert found['gxnb_slurm_jobs{state="pending",resource="gpu",kind="training"}'] == 1
    assert found['gxnb_slurm_jobs{state="running",resource="cpu",kind="other"}'] == 1
    assert found['gxnb_slurm_jobs{state="running",resource="gpu",kind="training"}'] == 0  # none, said as 0
    assert found['gxnb_slurm_job_wait_longest_seconds{resource="gpu"}'] == 45 * 60
    assert found['gxnb_slurm_job_wait_longest_seconds{resource="shard"}'] == 10 * 60
    assert found['gxnb_slurm_job_wait_longest_seconds{resource="cpu"}'] == 0


def test_without_slurm_the_service_exporter_says_so_and_still_reports_the_backups(tmp_path, monkeypatch):
    (tmp_path / "galaxy-1.dump").touch()
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))  # no scontrol, no squeue
    args = SimpleNamespace(backup_dir=str(tmp_path), session_tools="^interactive_tool_", training_tools="x")
    found = samples(service_exporter.collect(args))
    assert found["gxnb_slurm_up"] == 0
    assert found["gxnb_database_backups"] == 1
    assert "gxnb_database_backup_newest_timestamp_seconds" in found


def test_gpu_hours_per_user_and_group_come_from_gxnb_gpu_usage_and_a_silent_one_is_said(tmp_path, monkeypatch):
    (tmp_path / "usage.json").write_text(json.dumps({
        "month": "2026-12", "users": [{"user_id": 3, "user": "ada@example.org", "gpu_seconds": 5400.0, "jobs": 2}],
        "groups": [{"group": "ml lab", "gpu_seconds": 5400.0, "jobs": 2}]}))  # fmt: skip
    usage = tmp_path / "gxnb-gpu-usage"
    usage.write_text(f"#!/bin/sh\n[ \"$1\" = --json ] && exec /bin/cat {tmp_path}/usage.json\n")
    usage.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    monkeypatch.setattr(service_exporter, "_json_cache", {})
    args = SimpleNamespace(backup_dir="", session_tools="x", training_tools="x", gpu_usage_command=str(usage))
    found = samples(service_exporter.collect(args))
    assert found["gxnb_gpu_usage_up"] == 1
    assert found['gxnb_user_gpu_hours_this_month{user="ada@example.org"}'] == 1.5
    assert found['gxnb_group_gpu_hours_this_month{group="ml lab"}'] == 1.5
    usage.write_text("#!/bin/sh\necho 'sacct failed' >&2; exit 1\n")
    monkeypatch.setattr(service_exporter, "_json_cache", {})
    found = samples(service_exporter.collect(args))
    assert found["gxnb_gpu_usage_up"] == 0 and not any("gpu_hours" in name for name in found), found


def test_galaxys_jobs_sessions_and_launch_times_come_from_gxnb_galaxy_metrics(tmp_path, monkeypatch):
    (tmp_path / "galaxy.json").write_text(json.dumps({
        "jobs": [{"destination": "gpu_docker_session", "state": "queued", "count": 3},
                 {"destination": "unmapped", "state": "new", "count": 1}],
        "sessions_routed": 4, "session_launch_window_minutes": 60,
        "session_launch_seconds": {"count": 5, "p50": 3.5, "p95": 9.0}}))  # fmt: skip
    command = tmp_path / "gxnb-galaxy-metrics"
    command.write_text(f"#!/bin/sh\nexec /bin/cat {tmp_path}/galaxy.json\n")
    command.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    args = SimpleNamespace(backup_dir="", session_tools="x", training_tools="x", galaxy_metrics_command=str(command))
    found = samples(service_exporter.collect(args))
    assert found["gxnb_galaxy_up"] == 1 and found["gxnb_galaxy_sessions_routed"] == 4
    assert found['gxnb_galaxy_jobs{destination="gpu_docker_session",state="queued"}'] == 3
    assert found['gxnb_galaxy_jobs{destination="unmapped",state="new"}'] == 1
    assert found["gxnb_galaxy_session_launches"] == 5
    assert found['gxnb_galaxy_session_launch_seconds{quantile="0.95"}'] == 9.0
    command.write_text("#!/bin/sh\nexit 1\n")
    found = samples(service_exporter.collect(args))
    assert found["gxnb_galaxy_up"] == 0 and "gxnb_galaxy_sessions_routed" not in found, found


def test_nginxs_responses_are_counted_by_part_and_status_class_as_the_log_grows_and_rotates(tmp_path):
    log = tmp_path / "gxnb-metrics.log"
    log.write_text("galaxy 200\ngalaxy 302\nsessions 101\nsessions 502\ngarbage\nsessions 20")  # the last: half written
    args = SimpleNamespace(backup_dir="", session_tools="x", training_tools="x", nginx_log=str(log))
    found = samples(service_exporter.collect(args))
    assert found["gxnb_http_log_up"] == 1
    assert found['gxnb_http_responses_total{part="galaxy",code="2xx"}'] == 1
    assert found['gxnb_http_responses_total{part="sessions",code="5xx"}'] == 1
    assert found['gxnb_http_responses_total{part="sessions",code="1xx"}'] == 1
    assert found['gxnb_http_responses_total{part="galaxy",code="5xx"}'] == 0  # there, as 0
    with log.open("a") as more:
        more.write("0\nsessions 404\n")  # the half-written line ends: 200
    found = samples(service_exporter.collect(args))
    assert found['gxnb_http_responses_total{part="sessions",code="2xx"}'] == 1
    assert found['gxnb_http_responses_total{part="sessions",code="4xx"}'] == 1
    log.rename(tmp_path / "gxnb-metrics.log.1")  # logrotate: a new file
    log.write_text("galaxy 500\n")
    found = samples(service_exporter.collect(args))
    assert found['gxnb_http_responses_total{part="galaxy",code="5xx"}'] == 1
    assert found['gxnb_http_responses_total{part="galaxy",code="2xx"}'] == 1  # counters keep growing
    (tmp_path / "gxnb-metrics.log").unlink()
    assert samples(service_exporter.collect(args))["gxnb_http_log_up"] == 0


KERNEL_LOG = (
    b"6,1201,5518000,-;nvidia-nvlink: Nvlink Core is being initialized\n"
    b"4,1202,7132411,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=2214, name=python, GPU has fallen off the bus.\n"
    b"4,1203,7132500,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=2214, name=python, GPU has fallen off the bus.\n"
    b"4,1204,8000001,-;NVRM: Xid (PCI:0000:86:00): 13, pid=3310, name=python, Graphics Exception\n"
    b"4,1205,8000002,-;NVRM: Xid (PCI:0001:af:00): 48, pid='<unknown>', An uncorrectable double bit error\n"
)


def test_xid_errors_in_the_kernel_log_are_counted_by_gpu_and_number(tmp_path):
    log = tmp_path / "kmsg"
    log.write_bytes(KERNEL_LOG)
    xid_log = gpu_exporter.XidLog(str(log))
    xid_log.read(follow=False)

    def nvml():  # NVML spells the address 00000000:3B:00.0
        return [{"index": 0, "pci": gpu_exporter.pci_address("00000000", "3B", "00")},
                {"index": 1, "pci": gpu_exporter.pci_address("00000000", "86", "00")}]

    found = samples(gpu_exporter.collect("label", str(tmp_path / "no.sock"), nvml=nvml, xid_log=xid_log))

    assert found["gxnb_gpu_xid_log_up"] == 1
    xids = {name: value for name, value in found.items() if name.startswith("gxnb_gpu_xid_errors_total")}
    assert xids == {'gxnb_gpu_xid_errors_total{gpu="0",pci="0000:3b:00",xid="79"}': 2,
                    'gxnb_gpu_xid_errors_total{gpu="1",pci="0000:86:00",xid="13"}': 1,
                    # a GPU NVML does not list (or no NVML): its address still tells which
                    'gxnb_gpu_xid_errors_total{gpu="",pci="0001:af:00",xid="48"}': 1}  # fmt: skip


def test_a_kernel_log_that_cannot_be_read_is_said_and_no_xid_is_invented(tmp_path):
    xid_log = gpu_exporter.XidLog(str(tmp_path / "missing"))
    xid_log.read(follow=False)

    found = samples(gpu_exporter.collect("label", str(tmp_path / "no.sock"), nvml=lambda: None, xid_log=xid_log))

    assert found["gxnb_gpu_xid_log_up"] == 0
    assert not [name for name in found if name.startswith("gxnb_gpu_xid_errors_total")]


def test_new_xid_records_are_counted_as_they_come(tmp_path):
    fifo = tmp_path / "kmsg"
    os.mkfifo(fifo)
    xid_log = gpu_exporter.XidLog(str(fifo)).start()  # follows, as /dev/kmsg
    with open(fifo, "wb", buffering=0) as writer:
        writer.write(KERNEL_LOG[:200])
        writer.write(KERNEL_LOG[200:])
        deadline = time.monotonic() + 5
        while sum(xid_log.snapshot().values()) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert xid_log.snapshot() == {("0000:3b:00", "79"): 2, ("0000:86:00", "13"): 1, ("0001:af:00", "48"): 1}
