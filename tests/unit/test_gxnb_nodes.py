"""gxnb-nodes (roles/slurm/files/gxnb_nodes), Slurm's Resume/Suspend program, with its local
driver against a helper socket of the same protocol as scripts/local-nodes-helper.py (the
end-to-end test tests/e2e/test_nodes_on_demand.py runs the real helper with the local cluster)."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "roles/slurm/files"))
import gxnb_nodes  # noqa: E402
from gxnb_nodes import local  # noqa: E402


@pytest.fixture(autouse=True)
def lock_dir(tmp_path, monkeypatch):
    """Each test's own node locks (production: the slurm role's folder)."""
    monkeypatch.setattr(gxnb_nodes, "LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


@pytest.mark.parametrize(("hostlist", "names"), [
    ("gxnb-node[1-3]", ["gxnb-node1", "gxnb-node2", "gxnb-node3"]),
    ("gpu[08-10,12],head", ["gpu08", "gpu09", "gpu10", "gpu12", "head"]),
    ("gxnb-local-node2", ["gxnb-local-node2"]),
])  # fmt: skip
def test_slurm_host_lists_are_expanded_without_scontrol_too(hostlist, names, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no scontrol: the program's own expansion
    assert gxnb_nodes.expand_hostlist(hostlist) == names


class FakeDriver:
    def __init__(self, failing: set[str] = frozenset()):
        self.failing, self.calls = failing, []

    def resume(self, node):
        self.calls.append(("resume", node))
        if node in self.failing:
            raise gxnb_nodes.DriverError(f"{node}: quota exceeded")
        return {"message": "made", "address": "10.0.0.9"}

    def suspend(self, node):
        self.calls.append(("suspend", node))
        return "removed"


def test_a_node_that_cannot_be_made_is_marked_down_with_the_reason_and_the_others_are_made(monkeypatch, tmp_path):
    told = []
    monkeypatch.setattr(gxnb_nodes, "scontrol_update", lambda node, **fields: told.append((node, fields)))
    settings = {"driver": "local", "nodes": {"n1": {}, "n2": {}}}
    driver = FakeDriver(failing={"n2"})
    assert gxnb_nodes.run("resume", ["n1", "n2", "other"], settings, driver) == 1
    assert driver.calls == [("resume", "n1"), ("resume", "n2")]  # a node not made on demand is left alone
    assert told == [("n1", {"NodeAddr": "10.0.0.9", "NodeHostname": "n1"}),
                    ("n2", {"State": "DOWN", "Reason": '"gxnb-nodes could not start it: n2: quota exceeded"'})]
    # ResumeTimeout passed: what was made is removed.
    assert gxnb_nodes.run("resume-fail", ["n1"], settings, driver) == 0 and driver.calls[-1] == ("suspend", "n1")


def test_prometheus_is_given_a_made_nodes_address_and_loses_it_when_the_node_goes(monkeypatch, tmp_path):
    monkeypatch.setattr(gxnb_nodes, "scontrol_update", lambda node, **fields: None)
    targets = tmp_path / "metrics-targets"
    targets.mkdir()  # the slurm role's
    settings = {"driver": "aws", "nodes": {"n1": {}, "n2": {}},
                "metrics_targets": {"dir": str(targets), "ports": {"node": 9100, "gpu": 9835}}}  # fmt: skip
    driver = FakeDriver(failing={"n2"})

    assert gxnb_nodes.run("resume", ["n1", "n2"], settings, driver) == 1
    for kind, port in (("node", 9100), ("gpu", 9835)):
        found = json.loads((targets / f"{kind}-n1.json").read_text())
        assert found == [{"targets": [f"10.0.0.9:{port}"], "labels": {"node": "n1"}}]
    assert oct((targets / "gpu-n1.json").stat().st_mode & 0o777) == "0o644"  # Prometheus' user reads it
    assert sorted(path.name for path in targets.iterdir()) == ["gpu-n1.json", "node-n1.json"]  # not n2

    assert gxnb_nodes.run("suspend", ["n1"], settings, driver) == 0
    assert not list(targets.iterdir())


def test_bad_settings_stop_it_naming_the_value(tmp_path):
    path = tmp_path / "gxnb-nodes.json"
    path.write_text(json.dumps({"driver": "gcp", "nodes": ["n1"]}))
    with pytest.raises(gxnb_nodes.DriverError, match="driver is 'gcp'; allowed: local, aws, openstack"):
        gxnb_nodes.load_settings(str(path))
    path.write_text(json.dumps({"driver": "local", "nodes": []}))
    with pytest.raises(gxnb_nodes.DriverError, match="no nodes to make on demand"):
        gxnb_nodes.load_settings(str(path))
    assert gxnb_nodes.main(["check", "--settings", str(tmp_path / "missing.json")]) == 2


@pytest.fixture
def helper_socket(tmp_path):
    """A socket answering as scripts/local-nodes-helper.py does; records what it was asked."""
    path = str(tmp_path / "helper.sock")
    asked = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                request = json.loads(connection.makefile().readline())
                asked.append(request)
                ok = request["node"] != "broken"
                reply = {"ok": ok, "message": f"{request['node']}: container started" if ok else "docker start failed"}
                connection.sendall(json.dumps(reply).encode() + b"\n")

    threading.Thread(target=serve, daemon=True).start()
    yield path, asked
    server.close()


def test_the_program_named_resume_asks_the_local_helper_and_logs_each_node(helper_socket, tmp_path, monkeypatch):
    path, asked = helper_socket
    monkeypatch.setattr(gxnb_nodes, "scontrol_update", lambda node, **fields: None)
    settings = tmp_path / "gxnb-nodes.json"
    log_file = tmp_path / "gxnb-nodes.log"
    settings.write_text(json.dumps({"driver": "local", "nodes": ["node1", "node2"], "log_file": str(log_file),
                                    "local": {"socket": path}}))  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["/usr/local/sbin/gxnb-nodes-resume"])  # as slurmctld runs it
    monkeypatch.setenv("PATH", "/nonexistent")
    assert gxnb_nodes.main(["node[1-2]", "--settings", str(settings)]) == 0
    # The two start at once (the driver's parallel_resumes): in either order.
    assert sorted(asked, key=str) == [{"action": "resume", "node": "node1"}, {"action": "resume", "node": "node2"}]
    lines = log_file.read_text().splitlines()
    assert sorted(line.split("] ", 1)[1] for line in lines) == ["resume node1: node1: container started",
                                                                "resume node2: node2: container started"]


def test_a_helper_that_refuses_or_is_gone_is_a_driver_error_naming_the_node(helper_socket, tmp_path):
    path, _asked = helper_socket
    with pytest.raises(gxnb_nodes.DriverError, match="broken: docker start failed"):
        local.Driver({"socket": path}, {}).resume("broken")
    gone = str(tmp_path / "gone.sock")
    with pytest.raises(gxnb_nodes.DriverError, match=f"node2: the local node helper at {gone} does not answer"):
        local.Driver({"socket": gone, "timeout_s": 2}, {}).resume("node2")
    assert not os.path.exists(gone)


SCONTROL_NODES = """NodeName=node1 Arch=x86_64 CoresPerSocket=1 State=MIXED+POWERING_UP ThreadsPerCore=1 Reason=a b c
NodeName=node2 Arch=x86_64 CoresPerSocket=1 State=IDLE+POWERED_DOWN ThreadsPerCore=1
NodeName=node3 Arch=x86_64 CoresPerSocket=1 State=IDLE ThreadsPerCore=1
NodeName=static9 Arch=x86_64 CoresPerSocket=1 State=ALLOCATED+POWERING_UP ThreadsPerCore=1
"""


def test_after_slurmctld_restarts_the_nodes_it_was_starting_are_started_again(helper_socket, tmp_path, monkeypatch):
    """slurmctld's stop cut a node's start (or it had not run it yet): the node stays "being
    started" with nothing starting it. gxnb-nodes resume-pending, run as slurmctld starts, waits
    until slurmctld answers and starts again the on-demand nodes it shows as being started."""
    path, asked = helper_socket
    told = []
    monkeypatch.setattr(gxnb_nodes, "scontrol_update", lambda node, **fields: told.append(node))
    settings = tmp_path / "gxnb-nodes.json"
    log_file = tmp_path / "gxnb-nodes.log"
    settings.write_text(json.dumps({"driver": "local", "nodes": ["node1", "node2", "node3"],
                                    "log_file": str(log_file), "local": {"socket": path}}))  # fmt: skip
    # A scontrol that fails twice (slurmctld still starting), then lists the nodes.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "nodes.txt").write_text(SCONTROL_NODES)
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f"""#!/bin/sh
echo x >> {tmp_path}/calls
if [ "$(wc -l < {tmp_path}/calls)" -le 2 ]; then echo 'Unable to contact slurm controller' >&2; exit 1; fi
[ "$*" = "-o show node" ] && cat {tmp_path}/nodes.txt
""")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert gxnb_nodes.main(["resume-pending", "--settings", str(settings)]) == 0
    assert asked == [{"action": "resume", "node": "node1"}]  # not the node off, up, or not made on demand
    assert told == []  # nothing marked down
    said = [line.split("] ", 1)[1] for line in log_file.read_text().splitlines()]
    assert said == ["resume-pending: slurmctld (re)started while starting node1: starting again",
                    "resume node1: node1: container started"], said
    # Nothing being started: nothing asked.
    (tmp_path / "nodes.txt").write_text(SCONTROL_NODES.replace("POWERING_UP", "POWERED_DOWN"))
    assert gxnb_nodes.main(["resume-pending", "--settings", str(settings)]) == 0
    assert len(asked) == 1
    # slurmctld that never answers: said, not waited on for ever.
    scontrol.write_text("#!/bin/sh\necho 'Unable to contact slurm controller' >&2; exit 1\n")
    assert gxnb_nodes.resume_pending(json.loads(settings.read_text()), wait_s=1) == 1
    assert "resume-pending: slurmctld did not answer within 1 s (Unable to contact slurm controller)" in (
        log_file.read_text())


def test_nodes_asked_for_together_start_together_as_many_as_the_driver_allows(monkeypatch):
    """One after another, the last of a host list's cloud nodes would wait for every boot before it
    (and could pass ResumeTimeout). Each resume here waits for all the others to have begun: run
    one after another, they would never meet."""
    monkeypatch.setattr(gxnb_nodes, "scontrol_update", lambda node, **fields: None)
    nodes = [f"n{i}" for i in range(4)]
    settings = {"driver": "local", "nodes": {node: {} for node in nodes}}

    class MeetingDriver(FakeDriver):
        parallel_resumes = 4
        everyone_began = threading.Barrier(4, timeout=10)

        def resume(self, node):
            self.everyone_began.wait()  # BrokenBarrierError (a failed resume) unless all four run at once
            return super().resume(node)

    driver = MeetingDriver(failing={"n3"})
    assert gxnb_nodes.run("resume", nodes, settings, driver) == 1  # n3 failed, the others were made
    assert sorted(driver.calls) == [("resume", node) for node in nodes]
    # A driver that does not say: one at a time (openstacksdk's connection is shared).
    serial = FakeDriver()
    assert gxnb_nodes.run("resume", nodes, settings, serial) == 0 and [node for _, node in serial.calls] == nodes
