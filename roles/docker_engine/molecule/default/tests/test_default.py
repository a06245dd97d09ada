"""docker_engine: daemon.json merged (existing keys kept), engine running, containers run."""

import json


def test_daemon_json_merges_wanted_settings_over_existing(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["bip"] == "172.30.99.1/24"
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "50m"}
    assert config["default-ulimits"]["nofile"]["Hard"] == 8192  # kept from before


def test_engine_running_and_enabled(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled


def test_engine_uses_the_configured_bridge(host):
    out = host.check_output("docker network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}'")
    assert out.strip() == "172.30.99.1"


def test_engine_allows_the_plain_http_registry(host):
    info = json.loads(host.check_output("docker info --format '{{json .RegistryConfig.IndexConfigs}}'"))
    assert info["registry.internal.example:5000"]["Secure"] is False


def test_socket_belongs_to_the_docker_group_with_the_clusters_gid(host):
    assert host.group("docker").gid == 1451
    socket = host.file("/var/run/docker.sock")
    assert socket.is_socket and socket.gid == 1451 and socket.mode & 0o060 == 0o060


def test_engine_runs_a_container(host):
    probe = host.run("docker image inspect gxnb-probe >/dev/null 2>&1 || "
                     "(rm -rf /tmp/probe && mkdir -p /tmp/probe/bin && cp /bin/busybox /tmp/probe/bin/sh "
                     "&& tar -C /tmp/probe -c . | docker import - gxnb-probe)")
    assert probe.rc == 0, probe.stderr
    out = host.run("docker run --rm gxnb-probe /bin/sh -c 'echo inner-container-ok'")
    assert out.rc == 0, out.stderr
    assert "inner-container-ok" in out.stdout
