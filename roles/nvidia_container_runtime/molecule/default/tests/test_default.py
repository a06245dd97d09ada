"""nvidia_container_runtime without GPU hardware or NVIDIA's servers: the package source, the
runtime registered in daemon.json with earlier settings kept, Docker running with it."""

import json


def test_package_source_points_at_the_repo_with_its_keyring(host):
    source = host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.list").content_string
    assert source.strip() == ("deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.asc] "
                              "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /")
    assert host.file("/etc/apt/keyrings").is_directory


def test_runtime_registered_in_daemon_json(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    assert "default-runtime" not in config


def test_docker_knows_the_runtime(host):
    out = host.check_output("docker info --format '{{json .Runtimes}}'")
    assert "nvidia" in json.loads(out)
    assert host.service("docker").is_running
