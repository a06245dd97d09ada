"""docker_engine: daemon.json merged (existing keys kept), engine running, containers run."""

import json

import pytest


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


PROBE_IMAGE = "gxnb-probe"


def probe_image(host):
    """A busybox image (sh, httpd, nc) made from Debian's static busybox: no registry here."""
    made = host.run(f"docker image inspect {PROBE_IMAGE} >/dev/null 2>&1 || "
                    "(rm -rf /tmp/probe && mkdir -p /tmp/probe/bin /tmp/probe/www && cp /bin/busybox /tmp/probe/bin/ "
                    "&& for applet in sh httpd nc printf cat; do ln -s busybox /tmp/probe/bin/$applet; done "
                    "&& echo session-page > /tmp/probe/www/index.html "
                    f"&& tar -C /tmp/probe -c . | docker import - {PROBE_IMAGE})")
    assert made.rc == 0, made.stderr
    return PROBE_IMAGE


def test_engine_runs_a_container(host):
    out = host.run(f"docker run --rm {probe_image(host)} /bin/sh -c 'echo inner-container-ok'")
    assert out.rc == 0, out.stderr
    assert "inner-container-ok" in out.stdout


@pytest.fixture(scope="module")
def session(host):
    """A web server in a container with a published port, like a notebook session."""
    image = probe_image(host)
    host.run("docker rm -f fw-session")
    started = host.run(f"docker run -d --name fw-session -p 18080:8000 {image} httpd -f -p 8000 -h /www")
    assert started.rc == 0, started.stderr
    address = host.check_output("docker inspect -f '{{.NetworkSettings.IPAddress}}' fw-session").strip()
    yield address
    host.run("docker rm -f fw-session")


def from_another_container(host, address, port):
    """An HTTP request from a new container (busybox nc: its wget crashes without NSS)."""
    return host.run(f"docker run --rm {PROBE_IMAGE} sh -c "
                    f"'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 5 {address} {port}'")


def test_the_firewall_rules_are_in_force_and_first_in_dockers_chain(host):
    assert host.run("/usr/local/sbin/docker-container-firewall --check").rc == 0
    assert host.service("docker-container-firewall").is_enabled
    assert host.check_output("iptables -S DOCKER-USER").splitlines()[1] == "-A DOCKER-USER -j GXNB-CONTAINERS"
    assert "-s 192.0.2.10/32 -o docker0 -j RETURN" in host.check_output("iptables -S GXNB-CONTAINERS")


def test_the_session_answers_on_the_node_itself(host, session):
    """The positive control: the page is there for whoever is let in."""
    page = host.check_output("python3 -c \"import urllib.request; "
                             "print(urllib.request.urlopen('http://127.0.0.1:18080/', timeout=5).read().decode())\"")
    assert "session-page" in page


def test_another_container_cannot_reach_the_session_on_the_bridge(host, session):
    out = from_another_container(host, session, 8000)
    assert out.rc != 0 and "session-page" not in out.stdout, out.stdout
    assert "refused" in out.stdout + out.stderr, (out.stdout, out.stderr)


def test_another_container_cannot_reach_the_published_port_through_the_node(host, session):
    out = from_another_container(host, "172.30.99.1", 18080)
    assert out.rc != 0 and "session-page" not in out.stdout, out.stdout
    assert "refused" in out.stdout + out.stderr, (out.stdout, out.stderr)


def test_a_container_cannot_reach_the_cloud_metadata_service(host):
    out = from_another_container(host, "169.254.169.254", 80)
    assert out.rc != 0
    assert "refused" in out.stdout + out.stderr, (out.stdout, out.stderr)  # turned away here, not lost on the way


def test_a_container_keeps_running_while_the_engine_restarts(host):
    """live-restore: a user's session or training survives an engine restart (same process)."""
    assert json.loads(host.file("/etc/docker/daemon.json").content_string)["live-restore"] is True
    host.run("docker rm -f survivor")
    assert host.run(f"docker run -d --name survivor {probe_image(host)} httpd -f -p 8000 -h /www").rc == 0
    pid = host.check_output("docker inspect -f '{{.State.Pid}}' survivor")
    assert host.run("systemctl restart docker").rc == 0
    assert host.check_output("docker inspect -f '{{.State.Running}} {{.State.Pid}}' survivor").split() == ["true", pid]
    host.run("docker rm -f survivor")
