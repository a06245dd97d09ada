"""What a user's code in a notebook session can do to its node: its container has no
capabilities, gains no privilege through setuid binaries, has a bounded number of processes
and the cores and memory TPV gave the job, dumps no core, and cannot forge its node's
maintenance notice. A fork bomb stops at the bound; the session and
the node carry on."""

from __future__ import annotations

import errno
import json

import pytest

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

CORES, MEMORY_GIB = 2, 4  # galaxy_config/tpv/tools.yml for the notebook tool


@pytest.fixture(scope="module")
def session():
    started = galaxy_it.new_users_session()
    yield started
    started.galaxy.jobs.cancel_job(started.job_id)


@pytest.fixture(scope="module")
def node_and_container(session):
    return local_cluster.node_and_container(galaxy_it.admin_instance(), session.job_id)


def test_session_code_has_no_capability_and_no_way_to_gain_one(session):
    status = session.run_code("print(open('/proc/self/status').read())")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[name].strip(), 16) == 0, (name, fields[name])
    # no_new_privs: the kernel ignores setuid bits and file capabilities from here on.
    assert fields["NoNewPrivs"].strip() == "1", fields.get("NoNewPrivs")
    assert fields["Uid"].split()[1] != "0", fields["Uid"]  # effective UID: not root


def test_the_container_gets_the_jobs_cores_and_memory_and_a_pids_limit(node_and_container):
    node, container = node_and_container
    host_config = json.loads(local_cluster.run(node, "docker", "inspect", "--format", "{{json .HostConfig}}",
                                               container))  # fmt: skip
    assert host_config["CapDrop"] == ["ALL"], host_config["CapDrop"]
    assert "no-new-privileges" in host_config["SecurityOpt"], host_config["SecurityOpt"]
    assert host_config["NanoCpus"] == CORES * 10**9, host_config["NanoCpus"]
    assert host_config["Memory"] == MEMORY_GIB * 2**30, host_config["Memory"]
    assert host_config["PidsLimit"] == int(local_cluster.facts()["job_pids_limit"]), host_config["PidsLimit"]


CRASH = """
import os, resource, subprocess, sys
before = set(os.listdir("."))
code = subprocess.run([sys.executable, "-c", "import os; os.abort()"]).returncode
try:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    raised = "raised"
except (ValueError, OSError):
    raised = "refused"
print(code, ",".join(sorted(set(os.listdir(".")) - before)) or "-", raised)
"""


def test_a_crashing_process_leaves_no_memory_dump_behind(session):
    """A core file holds the process's memory (the user's API key among it) and lands in the
    working folder, which Galaxy keeps after a failed job: none is written, and the session
    cannot lift the limit."""
    code, new_files, raised = session.run_code(CRASH).split()
    assert code == "-6", code  # SIGABRT
    assert new_files == "-", new_files
    assert raised == "refused"


NOTICE_TAMPERING = """
import json, os
folder = "/run/gxnb-node"
fake = json.dumps({"node": "x", "reason": "forged", "ends_at": 0})
attempts = {
    "write": lambda: open(os.path.join(folder, "notice.json"), "w").write(fake),
    "create": lambda: open(os.path.join(folder, "other.json"), "x").write(fake),
    "mkdir": lambda: os.mkdir(os.path.join(folder, "d")),
    "symlink": lambda: os.symlink("/etc/passwd", os.path.join(folder, "notice.json")),
    "chmod": lambda: os.chmod(folder, 0o777),
}
results = []
for name, attempt in attempts.items():
    try:
        attempt()
        results.append(name + ":done")
    except OSError as exc:
        results.append(name + ":" + str(exc.errno))
print(" ".join(results), sorted(os.listdir(folder)) == [])
"""


def test_a_session_cannot_forge_its_nodes_maintenance_notice(session, node_and_container):
    """The node's notice folder is mounted into every job container on the node: a notice a
    session could write would end every other session there at the time it chose. Each way to
    write, replace or add to it is refused (read-only mount), and the node's folder stays empty."""
    node, _container = node_and_container
    *attempts, still_empty = session.run_code(NOTICE_TAMPERING).split()
    assert still_empty == "True"
    for attempt in attempts:
        name, outcome = attempt.split(":")
        assert outcome in (str(errno.EROFS), str(errno.EACCES), str(errno.EPERM)), attempt
    assert local_cluster.run(node, "ls", "-A", local_cluster.facts()["node_notice_dir"]).strip() == ""
    assert session.api("GET", "gxnb/accelerator").json()["notice"] is None


FORK_BOMB = """
import subprocess
children, error = [], None
try:
    while len(children) < {ceiling}:
        children.append(subprocess.Popen(["sleep", "300"]))
except OSError as exc:
    error = exc.errno
for child in children:
    child.kill()
for child in children:
    child.wait()
print(len(children), error)
"""


def test_a_fork_bomb_stops_at_the_limit_and_the_session_and_node_carry_on(session, node_and_container):
    node, _container = node_and_container
    limit = int(local_cluster.facts()["job_pids_limit"])
    started, error = session.run_code(FORK_BOMB.format(ceiling=limit + 200), timeout=300).split()
    assert error == str(errno.EAGAIN), (started, error)
    assert int(started) < limit, started
    assert session.run_code("print(6 * 7)").strip() == "42"
    assert not local_cluster.node_state(node).startswith("down"), local_cluster.node_state(node)
    assert local_cluster.run(node, "docker", "info", "--format", "{{.ContainersRunning}}").strip().isdigit()
