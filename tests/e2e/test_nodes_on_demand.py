"""Job nodes made on demand on the local cluster (Slurm's power saving with gxnb-nodes' local
driver, scripts/local-nodes-helper.py on this machine): Slurm switches an idle node off, which
stops its container; a notebook launch or a training that needs it starts it again, and the user
is told meanwhile; a node that cannot be started is marked down, and its user is told that too.

Each test keeps the always-on node(s) drained while it needs the on-demand node, so that Slurm
has no other place for the job."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import REPO
from tests.support import galaxy_it, local_cluster
from tests.support.galaxy_it import HOLDING_SCRIPT, TRAINING_TOOL_ID

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.nodes_switched_off,  # tests/e2e/conftest.py leaves the nodes as they are
    pytest.mark.skipif(local_cluster.facts().get("node_driver") != "local" or not local_cluster.nodes_on_demand(),
                       reason="the inventory makes no job node on demand with the local driver"),  # fmt: skip
]

HELPER_DIR = REPO / ".deploy-local" / "node-helper"


@pytest.fixture
def node():
    """The on-demand node, switched off by Slurm, with every other job node drained."""
    on_demand = local_cluster.nodes_on_demand()[0]
    with contextlib.ExitStack() as stack:
        for other in local_cluster.job_nodes():
            if other != on_demand:
                stack.enter_context(local_cluster.drained(other))
        local_cluster.wait_until_no_job_on(on_demand)  # switched off with a job on it, the job would be lost
        local_cluster.power_down(on_demand)
        assert not local_cluster.container_running(on_demand), f"{on_demand}: Slurm switched it off, its container runs"
        yield on_demand
    local_cluster.power_up(on_demand)


def history_message(gi, job_id: str) -> str:
    return galaxy_it.what_the_history_says(gi, job_id)


@contextlib.contextmanager
def idle_time_on_the_controller(seconds: int):
    """slurmctld's SuspendTime changed for a while (slurm.conf on the head and `scontrol
    reconfigure`: a partition's SuspendTime cannot be changed at run time in Slurm 22.05)."""
    head, conf = local_cluster.head(), "/etc/slurm/slurm.conf"
    original = local_cluster.run(head, "cat", conf)
    configured = next(line for line in original.splitlines() if line.startswith("SuspendTime="))
    local_cluster.run(head, "sed", "-i", f"s/^{configured}$/SuspendTime={seconds}/", conf)
    local_cluster.slurm("scontrol", "reconfigure")
    try:
        yield int(configured.split("=")[1])
    finally:
        local_cluster.run(head, "tee", conf, stdin=original)
        local_cluster.slurm("scontrol", "reconfigure")


def test_an_idle_node_is_switched_off_after_its_idle_time_and_its_container_stops():
    """Slurm's own timer (SuspendTime), shortened for the test."""
    on_demand = local_cluster.nodes_on_demand()[0]
    local_cluster.power_up(on_demand)
    # Idle: no job on it (sinfo may still say "mixed" for a while after a shard job on a node that
    # was started for it: Slurm 22.05's GRES accounting; slurmctld counts it idle).
    local_cluster.wait_until_no_job_on(on_demand)
    with idle_time_on_the_controller(60) as configured_s:
        assert configured_s == int(local_cluster.facts()["node_idle_minutes"]) * 60, configured_s
        begun = time.monotonic()
        local_cluster.wait_for_node_state(on_demand, {"idle~"}, 240)
        galaxy_it.wait_for(lambda: not local_cluster.container_running(on_demand), f"{on_demand}'s container stopped",
                           timeout=60)  # fmt: skip
        print(f"{on_demand} switched off {time.monotonic() - begun:.0f} s after the idle time was set to 60 s")
        # The always-on node stays on, whatever its idle time.
        for other in set(local_cluster.job_nodes()) - {on_demand}:
            assert not local_cluster.node_state(other).endswith("~"), local_cluster.node_state(other)
            assert local_cluster.container_running(other)
    log = local_cluster.run(local_cluster.head(), "cat", "/var/log/slurm/gxnb-nodes.log")
    assert f"suspend {on_demand}: {on_demand}: container stopped" in log, log[-2000:]


def test_a_notebook_launch_starts_the_node_and_its_user_is_told_while_it_starts(node):
    """...across a stop of slurmctld and a restart of Galaxy while the node's start hangs in the
    node helper, as a cloud call can: the stop leaves the start's program running
    (KillMode=process); that start is then lost (its program killed, the frozen helper replaced).
    Slurm alone keeps such a node "being started" with nothing starting it (measured: for good);
    slurmctld's next start runs gxnb-nodes resume-pending, which starts it again. Galaxy, restarted
    meanwhile, takes the waiting job up again and routes the session once it runs."""
    gi = galaxy_it.new_user()
    endpoints = galaxy_it.load_endpoints()
    head = local_cluster.head()
    started_again = f"resume-pending: slurmctld (re)started while starting {node}"

    def times_started_again() -> int:
        return local_cluster.run(head, "cat", "/var/log/slurm/gxnb-nodes.log").count(started_again)

    def start_program_runs() -> bool:
        return "gxnb-nodes-resume" in local_cluster.run(head, "ps", "-eo", "args")

    said_before = times_started_again()
    begun = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        with node_helper_frozen():
            gi, history_id, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], gi.key)
            cleanup.callback(gi.jobs.cancel_job, job_id)
            told = galaxy_it.wait_for(lambda: "to start" in (said := history_message(gi, job_id)) and said,
                                      "the history telling the user the node is being started", timeout=90)  # fmt: skip
            assert f"Waiting for the job node {node} to start" in told, told
            assert gi.jobs.show_job(job_id)["state"] == "queued"
            galaxy_it.wait_for(start_program_runs, "slurmctld's program starting the node", timeout=60)
            assert local_cluster.node_state(node).endswith(local_cluster.POWERING_UP), local_cluster.node_state(node)
            # A stop (SIGTERM) saves slurmctld's state, the node being started in it (a kill could
            # come before the save: Slurm then schedules the job anew and starts the node itself).
            cleanup.callback(local_cluster.run, head, "systemctl", "start", "slurmctld")  # whatever fails below
            local_cluster.run(head, "systemctl", "stop", "slurmctld")
            assert start_program_runs(), "the stop killed the start"
            local_cluster.run(head, "pkill", "--signal", "KILL", "-f", "gxnb-nodes-resume")
            galaxy_it.wait_for(lambda: not start_program_runs(), "the start's program gone", timeout=30)
        assert not local_cluster.container_running(node)
        local_cluster.restart_galaxy()  # its handler finds the job queued, and Slurm not answering
        assert gi.jobs.show_job(job_id)["state"] == "queued"
        assert f"Waiting for the job node {node} to start" in history_message(gi, job_id)
        local_cluster.run(head, "systemctl", "start", "slurmctld")
        galaxy_it.wait_for(lambda: times_started_again() > said_before,
                           "gxnb-nodes resume-pending starting the node again", timeout=60)  # fmt: skip
        entry_point = galaxy_it.wait_for_entry_point(gi, job_id, timeout=240)
        session = galaxy_it.NotebookSession(gi, endpoints["galaxy_url"], history_id, job_id, entry_point)
        galaxy_it.wait_for_http_200(session.url + "api/status", timeout=120, session=session.http)
        print(f"launch -> JupyterLab answering, its node's start lost once and started again: "
              f"{time.monotonic() - begun:.1f} s")  # fmt: skip
        assert local_cluster.container_running(node)
        admin = galaxy_it.admin_instance()
        assert local_cluster.node_of(admin, job_id) == node
        assert "to start" not in history_message(gi, job_id)  # the words went once it ran
        # The node came up as deployed: the session's port is from the range its firewall opens
        # (a sysctl of the node's network namespace, which starts anew with the container).
        _node, container = local_cluster.node_and_container(admin, job_id)
        published = int(local_cluster.run(node, "docker", "port", container).split(":")[-1].split()[0])
        low, high = map(int, local_cluster.facts()["session_ports"].split("-"))
        assert low <= published <= high, (container, published, low, high)


def test_a_training_submitted_while_no_node_runs_completes(node):
    gi = galaxy_it.new_user()
    history = gi.histories.create_history(name="training on a node made for it")
    script = galaxy_it.paste_dataset(gi, history["id"], HOLDING_SCRIPT.format(release_at=int(time.time()) + 5),
                                     "short.py")  # fmt: skip
    job_id = gi.tools.run_tool(history["id"], TRAINING_TOOL_ID, {"select_file": {"src": "hda", "id": script}})[
        "jobs"][0]["id"]  # fmt: skip
    assert galaxy_it.wait_for_job(gi, job_id, timeout=300) == "ok", history_message(gi, job_id)
    assert local_cluster.container_running(node)


HELPER = ["python3", str(REPO / "scripts/local-nodes-helper.py")]


def start_node_helper() -> None:
    settings = json.loads((HELPER_DIR / "helper.settings").read_text())
    subprocess.run([*HELPER, "start", "--socket-dir", str(HELPER_DIR), "--head", settings["head"],
                    *[f"--node={n}" for n in settings["nodes"]]], check=True, timeout=60)  # fmt: skip


@contextlib.contextmanager
def node_helper_stopped():
    """The local node helper away (as a cloud API that does not answer), started again after."""
    subprocess.run([*HELPER, "stop", "--socket-dir", str(HELPER_DIR)], check=True, timeout=30)
    galaxy_it.wait_for(lambda: not (HELPER_DIR / "helper.sock").exists(), "the helper's socket gone", timeout=10)
    try:
        yield
    finally:
        start_node_helper()


@contextlib.contextmanager
def node_helper_frozen():
    """The local node helper stopped in its tracks (SIGSTOP): what is asked of it hangs, as a cloud
    call that does not return. A fresh helper replaces it after; what was asked of the frozen one
    goes with it."""
    pid = int((HELPER_DIR / "helper.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGKILL)
        start_node_helper()


def test_a_node_that_cannot_be_started_is_marked_down_and_the_job_fails_saying_why(node):
    """Galaxy's jobs are not requeued (--no-requeue: Galaxy cannot follow a requeued job), so the
    job whose node could not be made ends, with a message naming the node and the cause."""
    gi = galaxy_it.new_user()
    endpoints = galaxy_it.load_endpoints()
    with node_helper_stopped():
        gi, _history_id, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], gi.key)
        assert galaxy_it.wait_for_job(gi, job_id, timeout=180) == "error"
        said = history_message(gi, job_id)
        assert f"The job node {node} was to be started for this job but did not join the cluster" in said, said
        assert "gxnb-nodes could not start it" in said and "local node helper" in said, said
        states = local_cluster.slurm_node_states(node)
        assert "DOWN" in states, states
        reason = local_cluster.slurm("scontrol", "-o", "show", "node", node).partition(" Reason=")[2]
        assert reason.startswith("gxnb-nodes could not start it"), reason
    # The operator mends the cause and returns the node to service (Slurm starts it again).
    local_cluster.slurm("scontrol", "update", f"NodeName={node}", "State=RESUME")
    local_cluster.wait_for_node_state(node, {"idle~", "idle#", "idle"}, 60)


def test_the_head_cannot_ask_the_node_helper_for_more_than_the_on_demand_nodes():
    """The boundary between the head and this machine: whoever is on the head reaches the helper's
    socket; it starts and stops the on-demand nodes for slurmctld's user only, and nothing else."""
    ask = ("import json,socket,sys; s=socket.socket(socket.AF_UNIX); s.connect('/run/gxnb-local-nodes/helper.sock');"
           "s.sendall(sys.argv[1].encode()+b'\\n'); print(s.makefile().readline())")  # fmt: skip
    head = local_cluster.head()

    def answer(user: str, request: dict) -> dict:
        out = local_cluster.run(head, "runuser", "-u", user, "--", "python3", "-c", ask, json.dumps(request))
        return json.loads(out)

    always_on = next(n for n in local_cluster.job_nodes() if n not in local_cluster.nodes_on_demand())
    assert not answer("galaxy", {"action": "ping"})["ok"]  # Galaxy's user (and a session's) may not
    refused = answer("slurm", {"action": "suspend", "node": always_on})
    assert not refused["ok"] and "is not a job node of the local cluster" in refused["message"], refused
    for request in ({"action": "suspend", "node": head}, {"action": "exec", "node": "x"},
                    {"action": "resume", "node": "gxnb-local-node2; docker run --privileged"}):  # fmt: skip
        assert not answer("slurm", request)["ok"], request
    assert local_cluster.container_running(always_on) and local_cluster.container_running(head)
    assert os.path.exists(HELPER_DIR / "helper.sock")
