"""The job nodes' container monitor (roles/slurm/files/gxnb-container-monitor) against this
machine's Docker engine, run as Galaxy's job script runs it (in the job folder, beside the
container): it writes the ports Docker published into container_runtime.json, in Galaxy's format,
whether the container starts after it or before it, and says so when the container never starts.
(End to end, every notebook launch of tests/e2e goes through it.)"""

from __future__ import annotations

import json
import pathlib
import subprocess
import time
import uuid

import pytest

from tests.conftest import BASE_IMAGE, REPO

MONITOR = str(REPO / "roles" / "slurm" / "files" / "gxnb-container-monitor")
IMAGE = BASE_IMAGE


def job_folder(tmp_path: pathlib.Path) -> tuple[pathlib.Path, str]:
    """A job folder with the container config Galaxy writes (configs/container_config.json)."""
    name = f"gxnb-monitor-{uuid.uuid4().hex[:8]}"
    (tmp_path / "configs").mkdir()
    (tmp_path / "working").mkdir()
    config = {"container_name": name, "container_type": "docker",
              "connection_configuration": {"docker_cmd": "docker", "sudo": False, "host": None}}  # fmt: skip
    (tmp_path / "configs" / "container_config.json").write_text(json.dumps(config))
    return tmp_path, name


def start_monitor(folder: pathlib.Path) -> subprocess.Popen:
    # Galaxy's job script starts it in the tool's working folder.
    return subprocess.Popen([MONITOR], cwd=folder / "working", stderr=subprocess.PIPE, text=True)


def published_ports(name: str) -> dict:
    answer = subprocess.run(["docker", "port", name, "80/tcp"], capture_output=True, text=True, check=True)
    host, port = answer.stdout.splitlines()[0].rsplit(":", 1)
    return {"80": {"tool_port": 80, "host": host, "port": int(port), "protocol": "tcp"}}


def test_docker_port_lines_become_galaxys_container_runtime():
    module = {}
    exec(compile(pathlib.Path(MONITOR).read_text(), MONITOR, "exec"), module)
    ports = module["parse_ports"]("8888/tcp -> 172.30.0.11:40000\n8888/tcp -> [::]:40000\n9000/udp -> 0.0.0.0:41000\n")
    assert ports == {"8888": {"tool_port": 8888, "host": "172.30.0.11", "port": 40000, "protocol": "tcp"},
                     "9000": {"tool_port": 9000, "host": "0.0.0.0", "port": 41000, "protocol": "udp"}}  # fmt: skip


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
@pytest.mark.parametrize("container_first", [False, True], ids=["monitor-first", "container-first"])
def test_the_published_port_reaches_the_job_folder(tmp_path, container_first):
    folder, name = job_folder(tmp_path)
    monitor = None if container_first else start_monitor(folder)
    try:
        subprocess.run(["docker", "run", "-d", "--rm", "-p", "127.0.0.1::80", "--name", name, IMAGE, "sleep", "60"],
                       capture_output=True, check=True)  # fmt: skip
        monitor = monitor or start_monitor(folder)
        assert monitor.wait(timeout=30) == 0, monitor.stderr.read()
        runtime = json.loads((folder / "container_runtime.json").read_text())
        assert runtime == published_ports(name)
        assert not (folder / "container_monitor_exception.txt").exists()
    finally:
        if monitor is not None:
            monitor.kill()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_a_container_removed_before_it_starts_is_reported_and_the_monitor_ends(tmp_path):
    folder, name = job_folder(tmp_path)
    monitor = None
    try:
        subprocess.run(["docker", "create", "--name", name, IMAGE, "true"], capture_output=True, check=True)
        monitor = start_monitor(folder)
        time.sleep(1)
        assert monitor.poll() is None  # still waiting for the start
        subprocess.run(["docker", "rm", name], capture_output=True, check=True)
        assert monitor.wait(timeout=30) == 1
        assert "was removed before it started" in (folder / "container_monitor_exception.txt").read_text()
        assert not (folder / "container_runtime.json").exists()
    finally:
        if monitor is not None:
            monitor.kill()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
