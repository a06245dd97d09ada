"""The service's alert rules (roles/metrics/templates/gxnb-alerts.yml.j2), rendered with the role's
defaults and run through promtool's rule tests: each alert fires when it should, after its wait,
and stays quiet when it should (a node switched off by Slurm's power saving, a GPU nobody holds)."""

from __future__ import annotations

import re
import shutil
import subprocess

import jinja2
import pytest
import yaml

from tests.conftest import REPO

ROLE = REPO / "roles" / "metrics"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def render_rules(tmp_path, **overrides) -> str:
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
        (ROLE / "templates" / "gxnb-alerts.yml.j2").read_text()
    )
    path = tmp_path / "gxnb-alerts.yml"
    path.write_text(template.render(ansible_managed="test", **{**DEFAULTS, **overrides}))
    return path.name


def promtool_test(tmp_path, tests: list[dict], **overrides) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/host-setup.sh installs Debian's prometheus for the tests"
    rules = render_rules(tmp_path, **overrides)
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": [rules], "evaluation_interval": "1m",
                                                        "tests": tests}))  # fmt: skip
    return subprocess.run([promtool, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True)


def rule(name: str, **overrides) -> dict:
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
        (ROLE / "templates" / "gxnb-alerts.yml.j2").read_text()
    )
    groups = yaml.safe_load(template.render(ansible_managed="test", **{**DEFAULTS, **overrides}))["groups"]
    return next(rule for group in groups for rule in group["rules"] if rule.get("alert") == name)


def alert(name: str, at: str, *fired: dict, value: str = "", **overrides) -> dict:
    """At eval time AT, alert NAME is firing with exactly these labels (none: not firing), and its
    summary and description say what the operator reads: the rule's, with the alert's labels (and
    VALUE as the rule shows its value) filled in."""
    annotations = rule(name, **overrides)["annotations"]

    def filled(text: str, labels: dict) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda match: labels[match.group(1)], text)
        return re.sub(r"\{\{ \$value[^}]*\}\}", value, text)

    return {"eval_time": at, "alertname": name, "exp_alerts": [
        {"exp_labels": labels, "exp_annotations": {key: filled(text, labels) for key, text in annotations.items()}}
        for labels in fired]}  # fmt: skip


def check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules(tmp_path):
    rules = render_rules(tmp_path)
    result = subprocess.run(["promtool", "check", "rules", rules], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and "SUCCESS: 8 rules found" in result.stdout, result.stdout + result.stderr


def test_a_job_node_down_fires_after_its_wait(tmp_path):
    down = {"node": "gpu01", "reason": "Not responding", "job": "service", "instance": "head:9817"}
    series = [{"series": 'gxnb_slurm_node_down{node="gpu01",reason="Not responding",job="service",'
                         'instance="head:9817"}', "values": "0 0 1x20"}]  # fmt: skip
    result = promtool_test(tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("GxnbJobNodeDown", "5m"),  # down for 3 minutes of 5
        alert("GxnbJobNodeDown", "8m", {**down, "severity": "critical"}),
    ]}])  # fmt: skip
    check(result)


def test_an_exporter_down_fires_but_not_for_a_node_switched_off_on_purpose(tmp_path):
    series = [
        {"series": 'up{job="node",node="gpu01",instance="10.0.0.11:9100"}', "values": "0x20"},
        {"series": 'up{job="node",node="gpu02",instance="10.0.0.12:9100"}', "values": "0x20"},
        {"series": 'gxnb_slurm_node_flag{node="gpu02",flag="powered_down",job="service",instance="head:9817"}',
         "values": "1x20"},
    ]
    result = promtool_test(tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("GxnbExporterDown", "15m",
              {"job": "node", "node": "gpu01", "instance": "10.0.0.11:9100", "severity": "warning"}),
    ]}])  # fmt: skip
    check(result)


def test_uncorrected_gpu_memory_errors_fire_at_once_and_corrected_ones_do_not(tmp_path):
    labels = 'node="gpu01",gpu="1",job="gpu",instance="10.0.0.11:9835"'
    series = [{"series": f'gxnb_gpu_ecc_errors_total{{{labels},type="uncorrected"}}', "values": "0 0 0 2 2 2"},
              {"series": f'gxnb_gpu_ecc_errors_total{{{labels},type="corrected"}}', "values": "0 5 10 15 20 25"}]
    fired = {"node": "gpu01", "gpu": "1", "job": "gpu", "instance": "10.0.0.11:9835", "type": "uncorrected",
             "severity": "critical"}
    result = promtool_test(tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("GxnbGpuMemoryErrors", "2m"), alert("GxnbGpuMemoryErrors", "4m", fired)]}])  # fmt: skip
    check(result)


def test_a_gpus_first_hardware_xid_fires_at_once_and_a_programs_xid_does_not(tmp_path):
    labels = 'node="gpu01",gpu="0",pci="0000:3b:00",job="gpu",instance="10.0.0.11:9835"'
    # Xid 79 (fallen off the bus) appears at minute 20 as a new series; Xid 13 (a program's fault)
    # grows all along; Xid 48 is in the log when Prometheus starts, then stays, then grows at 25.
    series = [{"series": f'gxnb_gpu_xid_errors_total{{{labels},xid="79"}}', "values": "_x20 1 1 1"},
              {"series": f'gxnb_gpu_xid_errors_total{{{labels},xid="13"}}', "values": "1 2 3 4 5 6 7 8 9"},
              {"series": f'gxnb_gpu_xid_errors_total{{{labels},xid="48"}}', "values": "1x24 2 2 2"}]  # fmt: skip

    def fired(xid):
        return {"node": "gpu01", "gpu": "0", "pci": "0000:3b:00", "job": "gpu", "instance": "10.0.0.11:9835",
                "xid": xid, "severity": "critical"}  # fmt: skip

    result = promtool_test(tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("GxnbGpuXidErrors", "5m", fired("48")),  # new to Prometheus: it fires for what the log has
        alert("GxnbGpuXidErrors", "17m"), alert("GxnbGpuXidErrors", "21m", fired("79")),
        alert("GxnbGpuXidErrors", "26m", fired("79"), fired("48"))]}])  # fmt: skip
    check(result)


def test_a_long_wait_for_a_gpu_fires_and_one_for_cpus_does_not(tmp_path):
    wait = 'gxnb_slurm_job_wait_longest_seconds{{resource="{}",job="service",instance="head:9817"}}'
    series = [{"series": wait.format("shard"), "values": "0+60x40"},  # waits from 0 on, a minute a minute
              {"series": wait.format("cpu"), "values": "0+600x40"}]
    result = promtool_test(tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("GxnbJobsWaitForAGpu", "29m"),
        alert("GxnbJobsWaitForAGpu", "31m",
              {"resource": "shard", "job": "service", "instance": "head:9817", "severity": "warning"},
              value="31m 0s"),
    ]}], metrics_alert_gpu_wait_minutes=30)  # fmt: skip
    check(result)


def test_a_gpu_held_at_zero_fires_and_an_idle_gpu_nobody_holds_does_not(tmp_path):
    gpu = 'job="gpu",instance="10.0.0.11:9835",node="gpu01"'
    series = [{"series": f'gxnb_gpu_utilization_ratio{{{gpu},gpu="0"}}', "values": "0x90"},
              {"series": f'gxnb_gpu_utilization_ratio{{{gpu},gpu="1"}}', "values": "0x90"},
              {"series": f'gxnb_gpu_job{{{gpu},gpu="0",slurm_job="42",container="gxnb-ep-1"}}', "values": "1x90"}]
    result = promtool_test(tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("GxnbGpuHeldIdle", "50m"),
        alert("GxnbGpuHeldIdle", "70m", {"job": "gpu", "instance": "10.0.0.11:9835", "node": "gpu01", "gpu": "0",
                                         "severity": "info"}),
    ]}])  # fmt: skip
    check(result)


def test_the_dataset_disk_nearly_full_fires(tmp_path):
    labels = 'node="head",mountpoint="/srv/galaxy",job="node",instance="10.0.0.2:9100",device="/dev/vdb",fstype="ext4"'
    series = [{"series": f"node_filesystem_size_bytes{{{labels}}}", "values": "1000x30"},
              {"series": f"node_filesystem_avail_bytes{{{labels}}}", "values": "500x5 50x25"}]
    fired = {"node": "head", "mountpoint": "/srv/galaxy", "job": "node", "instance": "10.0.0.2:9100",
             "device": "/dev/vdb", "fstype": "ext4", "severity": "critical"}
    result = promtool_test(tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("GxnbDatasetDiskNearlyFull", "10m"),
        alert("GxnbDatasetDiskNearlyFull", "20m", fired, value="5.0")]}])  # fmt: skip
    check(result)


@pytest.mark.parametrize(("backups", "newest_age_h", "fires"), [(3, 2, False), (3, 30, True), (0, None, True)],
                         ids=["fresh", "a-day-old", "none"])  # fmt: skip
def test_an_old_or_missing_database_backup_fires(tmp_path, backups, newest_age_h, fires):
    labels = 'job="service",instance="head:9817"'
    series = [{"series": f"gxnb_database_backups{{{labels}}}", "values": f"{backups}x60"}]
    if newest_age_h is not None:
        # promtool's clock starts at 0: a dump written newest_age_h hours before 0 is negative time.
        series.append({"series": f"gxnb_database_backup_newest_timestamp_seconds{{{labels}}}",
                       "values": f"{-newest_age_h * 3600}x60"})  # fmt: skip
    expected = [{"job": "service", "instance": "head:9817", "severity": "critical"}] if fires else []
    result = promtool_test(tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("GxnbDatabaseBackupOld", "45m", *expected)]}])  # fmt: skip
    check(result)


def test_bad_input_is_not_a_rule_file_promtool_accepts(tmp_path):
    """The role validates the numbers first; a value that slipped through would not load."""
    rules = render_rules(tmp_path, metrics_alert_node_down_minutes="soon")
    result = subprocess.run(["promtool", "check", "rules", rules], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
