"""What Prometheus scrapes (roles/metrics/templates/prometheus.yml.j2), run in Debian's Prometheus:
the nodes a cloud made on demand are scraped at the addresses gxnb-nodes writes for them, and
dropped when gxnb-nodes removes them (tests/e2e/test_metrics.py scrapes the local cluster)."""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import sys
import time

import jinja2
import pytest
import requests
import yaml

from tests.conftest import REPO

ROLE = REPO / "roles" / "metrics"
sys.path.insert(0, str(REPO / "roles/slurm/files"))
gxnb_nodes = importlib.import_module("gxnb_nodes")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def render(tmp_path, **settings) -> str:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
        (ROLE / "templates" / "prometheus.yml.j2").read_text()
    )
    text = template.render(ansible_managed="test", **{**defaults, **settings})
    text = text.replace("/etc/prometheus/gxnb-alerts.yml", str(tmp_path / "none.yml"))
    (tmp_path / "prometheus.yml").write_text(text)
    return str(tmp_path / "prometheus.yml")


@pytest.fixture
def prometheus(tmp_path):
    if not shutil.which("prometheus"):
        pytest.fail("prometheus is missing: scripts/host-setup.sh installs Debian's prometheus for the tests")
    port = free_port()
    targets = tmp_path / "metrics-targets"
    targets.mkdir()  # the slurm role makes it before Prometheus starts: Prometheus watches it
    config = render(tmp_path, metrics_cloud_targets_dir=str(targets), metrics_prometheus_listen=f"127.0.0.1:{port}",
                    metrics_alertmanager_listen="127.0.0.1:1", metrics_node_exporter_port=9100,
                    metrics_gpu_exporter_port=9835, metrics_service_exporter_port=9817,
                    metrics_targets={"node": [{"name": "galaxy", "address": "10.0.0.2"}], "gpu": [],
                                     "service": [{"name": "galaxy", "address": "10.0.0.2"}]})  # fmt: skip
    assert subprocess.run(["promtool", "check", "config", "--syntax-only", config], capture_output=True).returncode == 0
    server = subprocess.Popen(["prometheus", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                               f"--storage.tsdb.path={tmp_path / 'data'}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    yield f"http://127.0.0.1:{port}", targets
    server.terminate()
    server.wait(timeout=30)


def scraped(url: str, seconds: float = 30, until=lambda found: True) -> set[tuple[str, str, str]]:
    """(job, node, address) of every active target, once `until` holds (file_sd looks every 5 s)."""
    deadline = time.monotonic() + seconds
    found: set[tuple[str, str, str]] = set()
    while time.monotonic() < deadline:
        try:
            answer = requests.get(f"{url}/api/v1/targets", timeout=5, proxies={"http": "", "https": ""}).json()
            found = {(target["labels"]["job"], target["labels"].get("node", ""), target["labels"]["instance"])
                     for target in answer["data"]["activeTargets"]}  # fmt: skip
            if until(found):
                return found
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return found


def test_a_node_a_cloud_made_is_scraped_at_its_address_until_it_is_removed(prometheus, monkeypatch):
    url, targets = prometheus
    monkeypatch.setattr(gxnb_nodes, "scontrol_update", lambda node, **fields: None)

    class MadeAt:
        def resume(self, node):
            return {"message": "made", "address": "10.20.0.31"}

        def suspend(self, node):
            return "removed"

    settings = {"driver": "aws", "nodes": {"gpu-3": {}},
                "metrics_targets": {"dir": str(targets), "ports": {"node": 9100, "gpu": 9835}}}  # fmt: skip
    assert ("node", "galaxy", "10.0.0.2:9100") in scraped(url, until=lambda found: len(found) >= 3)

    assert gxnb_nodes.run("resume", ["gpu-3"], settings, MadeAt()) == 0
    made = {("node", "gpu-3", "10.20.0.31:9100"), ("gpu", "gpu-3", "10.20.0.31:9835")}
    assert made <= scraped(url, until=lambda found: made <= found)

    assert gxnb_nodes.run("suspend", ["gpu-3"], settings, MadeAt()) == 0
    assert not made & scraped(url, until=lambda found: not made & found)
