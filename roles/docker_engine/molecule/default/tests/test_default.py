"""docker_engine: daemon.json merged (existing keys kept), engine running, containers run."""

import json

import pytest


def test_daemon_json_merges_wanted_settings_over_existing(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["bip"] == "172.30.99.1/24"
    assert config["max-concurrent-downloads"] == 5  # docker_engine_daemon_config
    assert config["default-ulimits"]["nofile"]["Hard"] == 8192  # kept from before


def node_address(host) -> str:
    return host.ansible("setup", "filter=ansible_default_ipv4")["ansible_facts"]["ansible_default_ipv4"]["address"]


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
    """The positive control: the page is there for whoever is let in, at the node's address."""
    url = f"http://{node_address(host)}:18080/"
    page = host.check_output(f"python3 -c \"import urllib.request as u; print(u.urlopen('{url}').read().decode())\"")
    assert "session-page" in page


# From the node itself: what answers where (IPv6 included, which iptables does not filter).
CONNECT = """python3 -c "
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close(); print('answered')
except ConnectionRefusedError:
    print('refused')
except OSError as error:
    print('failed', error)
" {} {}"""


def test_a_published_port_listens_on_the_nodes_ipv4_address_only(host, session):
    """Not on IPv6 ([::]: the container firewall is iptables, IPv4 only), not on the loopback."""
    assert host.file("/proc/net/if_inet6").content_string.strip(), "this node has no IPv6 (the test needs it)"
    listening = host.check_output("ss -Hltn 'sport = :18080'")
    assert [line.split()[3] for line in listening.splitlines()] == [f"{node_address(host)}:18080"], listening
    assert host.check_output(CONNECT.format("::1", 18080)) == "refused"
    link_local = host.check_output("ip -6 -o addr show scope link | awk '{print $4}' | cut -d/ -f1 | head -1")
    if link_local:
        interface = host.check_output("ip -6 -o addr show scope link | awk '{print $2}' | head -1")
        assert host.check_output(CONNECT.format(f"{link_local}%{interface}", 18080)) == "refused"
    assert host.check_output(CONNECT.format("127.0.0.1", 18080)) == "refused"
    assert host.check_output(CONNECT.format(node_address(host), 18080)) == "answered"


@pytest.fixture(scope="module")
def node_services(host):
    """Two services of the node itself: one containers may reach (Galaxy's, in the service), one not."""
    image = probe_image(host)
    for port in (18081, 18082):
        host.run(f"docker rm -f node-service-{port}")
        started = host.run(f"docker run -d --name node-service-{port} --network host {image} "
                           f"httpd -f -p {port} -h /www")
        assert started.rc == 0, started.stderr
    yield node_address(host)
    for port in (18081, 18082):
        host.run(f"docker rm -f node-service-{port}")


def test_a_container_reaches_the_allowed_service_and_nothing_else_of_the_node_or_the_network(host, node_services):
    allowed = from_another_container(host, node_services, 18081)
    assert "session-page" in allowed.stdout, (allowed.stdout, allowed.stderr)
    for address, port in ((node_services, 18082), ("10.20.30.40", 80), ("192.168.1.1", 5432), ("172.16.5.5", 6817),
                          ("198.51.100.7", 443)):  # the last one public: the internet is off here
        out = from_another_container(host, address, port)
        assert out.rc != 0 and "refused" in out.stdout + out.stderr, (address, port, out.stdout, out.stderr)


def test_a_containers_log_is_kept_to_its_limit(host):
    """docker_engine_container_log_max_mb=4: a container that prints 12 MB keeps at most 4."""
    host.run("docker rm -f chatty")
    printed = host.run(f"docker run --name chatty {probe_image(host)} sh -c "
                       "'i=0; while [ $i -lt 12288 ]; do printf %01023d\\\\n 0; i=$((i+1)); done'")
    assert printed.rc == 0, printed.stderr
    log_path = host.check_output("docker inspect -f '{{.LogPath}}' chatty")
    kept = int(host.check_output(f"cat {log_path}* | wc -c"))
    host.run("docker rm -f chatty")
    assert 0 < kept <= 4 * 2**20 + 2**16, kept


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
