"""Only the route reaches a session. A notebook's JupyterLab runs the code it is sent and holds
its user's Galaxy API key: its published port on the job node must not answer another user's
session (on the same node or another one) nor a host that is not the proxy's. The sessions'
code cannot reach the node's own services nor the cloud's metadata service either.

Sessions are placed on purpose: Slurm starts no new job on a drained node."""

from __future__ import annotations

import pytest

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

NOTEBOOK_PORT = int(local_cluster.facts()["notebook_port"])  # JupyterLab's port in the container
SLURMD_PORT = int(local_cluster.facts()["slurmd_port"])  # slurm.conf's SlurmdPort

# Opens a TCP connection and sends a request: what came back, or why nothing did.
REACH = """
import socket

def reach(host, port):
    try:
        with socket.create_connection((host, port), timeout=5) as connection:
            connection.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            return "answered " + connection.recv(12).decode(errors="replace")
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"failed: {exc}"
"""


def reach_from_host(host: str, address: str, port: int) -> str:
    return local_cluster.run(host, "python3", "-c", REACH + f"print(reach({address!r}, {port}))").strip()


def reach_from_session(session: galaxy_it.NotebookSession, address: str, port: int) -> str:
    return session.run_code(REACH + f"print(reach({address!r}, {port}))").strip()


@pytest.fixture(scope="module")
def sessions():
    """The target's session, another user's on the same node and a third user's on the other node."""
    admin = galaxy_it.admin_instance()
    started = []
    try:
        target = galaxy_it.new_users_session()
        started.append(target)
        node, container = local_cluster.node_and_container(admin, target.job_id)
        other_node = next(n for n in local_cluster.job_nodes() if n != node)
        with local_cluster.drained(other_node):
            same_node = galaxy_it.new_users_session()
            started.append(same_node)
        with local_cluster.drained(node):
            elsewhere = galaxy_it.new_users_session()
            started.append(elsewhere)
        assert local_cluster.node_of(admin, same_node.job_id) == node
        assert local_cluster.node_of(admin, elsewhere.job_id) == other_node
        published = local_cluster.run(node, "docker", "port", container, f"{NOTEBOOK_PORT}/tcp")
        yield {
            "target": target, "same_node": same_node, "elsewhere": elsewhere,
            "node": node, "other_node": other_node,
            "node_address": local_cluster.containers()[node]["address"],
            "port": int(published.splitlines()[0].rsplit(":", 1)[1]),
            "container_address": local_cluster.run(node, "docker", "inspect", "-f",
                                                   "{{.NetworkSettings.IPAddress}}", container).strip(),
        }  # fmt: skip
    finally:
        for session in started:
            session.galaxy.jobs.cancel_job(session.job_id)


def test_the_route_and_the_proxy_host_reach_the_session(sessions):
    """The control: the port is the session's and it answers whoever is let in."""
    assert sessions["target"].api("GET", "api/status").status_code == 200
    answer = reach_from_host(local_cluster.head(), sessions["node_address"], sessions["port"])
    assert answer.startswith("answered HTTP/1."), answer


def test_another_users_session_on_the_same_node_cannot_reach_it(sessions):
    neighbour = sessions["same_node"]
    via_node = reach_from_session(neighbour, sessions["node_address"], sessions["port"])
    on_the_bridge = reach_from_session(neighbour, sessions["container_address"], NOTEBOOK_PORT)
    assert via_node == "refused", via_node
    assert on_the_bridge == "refused", on_the_bridge


def test_a_session_on_another_node_cannot_reach_it(sessions):
    answer = reach_from_session(sessions["elsewhere"], sessions["node_address"], sessions["port"])
    assert answer == "refused", answer


def test_a_host_that_is_not_the_proxys_cannot_reach_it(sessions):
    answer = reach_from_host(sessions["other_node"], sessions["node_address"], sessions["port"])
    assert answer == "refused", answer


def test_a_session_reaches_neither_its_nodes_services_nor_the_cloud_metadata_service(sessions):
    slurmd = reach_from_session(sessions["same_node"], sessions["node_address"], SLURMD_PORT)
    assert slurmd == "refused", slurmd
    metadata = reach_from_session(sessions["same_node"], "169.254.169.254", 80)
    assert metadata == "refused", metadata  # turned away on the node, not lost on the way


def test_a_session_reaches_no_exporter_of_its_node_nor_the_galaxy_servers(sessions):
    """The node and GPU exporters and the service exporter answer Prometheus on the Galaxy server
    only: what runs on a node and in Slurm is not a session's to read."""
    node_port, gpu_port, service_port = map(int, local_cluster.facts()["metrics_ports"].split())
    head = local_cluster.head()
    head_address = local_cluster.containers()[head]["address"]
    control = reach_from_host(head, sessions["node_address"], gpu_port)
    assert control.startswith("answered HTTP/1."), control  # Prometheus' host reaches it
    for address, port in [(sessions["node_address"], node_port), (sessions["node_address"], gpu_port),
                          (head_address, service_port), (head_address, node_port)]:  # fmt: skip
        answer = reach_from_session(sessions["same_node"], address, port)
        assert answer == "refused", (address, port, answer)


def test_a_session_reaches_neither_slurms_controller_nor_its_accounting(sessions):
    """slurmctld and slurmdbd (every job's record, every user's GPU time) on the Galaxy server
    answer the cluster's hosts only: a session that reached them could read or forge records."""
    head = local_cluster.head()
    head_address = local_cluster.containers()[head]["address"]
    accounting_port = int(local_cluster.facts()["slurm_accounting_port"])
    # The node itself connects (slurmdbd waits for a message of its own: a connection is the sign).
    connect = f"import socket; socket.create_connection(({head_address!r}, {accounting_port}), timeout=5); print('ok')"
    assert local_cluster.run(sessions["node"], "python3", "-c", connect).strip() == "ok"
    for port in (6817, accounting_port):  # slurm.conf's SlurmctldPort, slurmdbd's DbdPort
        answer = reach_from_session(sessions["same_node"], head_address, port)
        assert answer == "refused", (port, answer)
