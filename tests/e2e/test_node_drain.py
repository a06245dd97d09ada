"""An operator takes a job node out for maintenance with ansible/drain_node.yml while a user works
on it: Slurm gives the node no new job, the session says in JupyterLab's status bar when it ends
and ends then by itself with its outputs back in the history, and the node returns to service."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.support import galaxy_it, local_cluster
from tests.support.ansible_run import REPO, ansible_env, ansible_playbook

pytestmark = pytest.mark.e2e

PLAYBOOK = "ansible/drain_node.yml"
WAIT_S = 30


def notice_of(session: galaxy_it.NotebookSession) -> dict | None:
    answer = session.api("GET", "gxnb/accelerator")
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()["notice"]


def test_a_drained_node_tells_its_session_ends_it_at_the_time_and_takes_no_new_job():
    local_cluster.all_nodes_up()
    admin = galaxy_it.admin_instance()
    session = galaxy_it.new_users_session()
    node = local_cluster.node_of(admin, session.job_id)
    saved = session.api("PUT", "api/contents/outputs/before_maintenance.txt",
                        json={"type": "file", "format": "text", "content": "kept through the drain"})  # fmt: skip
    assert saved.status_code in (200, 201), saved.text
    assert notice_of(session) is None

    started = time.time()
    drain = subprocess.Popen(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", "inventory/local", PLAYBOOK, "--limit", node, "-e",
         json.dumps({"drain_reason": "e2e: new disk", "drain_wait": f"{WAIT_S}s", "drain_then": "resume"})],
        cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        notice = galaxy_it.wait_for(lambda: notice_of(session), "the node's notice in the session", timeout=90)
        assert "goes down for maintenance" in notice["text"] and "(e2e: new disk)" in notice["text"], notice
        assert started + WAIT_S - 5 <= notice["ends_at"] <= time.time() + WAIT_S, notice
        assert "DRAIN" in local_cluster.slurm_node_states(node)
        # A launch meanwhile lands on another node.
        other = galaxy_it.new_users_session()
        try:
            assert local_cluster.node_of(admin, other.job_id) != node
        finally:
            other.galaxy.jobs.cancel_job(other.job_id)
        output, _ = drain.communicate(timeout=WAIT_S + 300)
    finally:
        if drain.poll() is None:
            drain.kill()
    assert drain.returncode == 0, output[-4000:]
    # The session ended by itself at the time, as File > Shut Down ends it: its job is ok and
    # what it left in outputs/ is in the history.
    assert galaxy_it.wait_for_job(session.galaxy, session.job_id, timeout=60) == "ok"
    ended = time.time()
    assert ended >= notice["ends_at"]
    assert galaxy_it.wait_for_dataset_text(session.galaxy, session.history_id, "before_maintenance") == (
        "kept through the drain")
    assert "back in service" in output
    assert local_cluster.slurm_node_states(node).isdisjoint({"DRAIN", "DOWN"}), local_cluster.slurm_node_states(node)
    assert local_cluster.run(node, "ls", "-A", local_cluster.facts()["node_notice_dir"]).strip() == ""


def test_drain_refuses_what_it_cannot_do_before_touching_a_node():
    node = local_cluster.job_nodes()[0]
    everything = ansible_playbook(PLAYBOOK, extra_vars={"drain_reason": "x"})
    assert everything.returncode != 0
    assert "drains the job nodes --limit names" in everything.stdout, everything.stdout[-2000:]
    no_reason = ansible_playbook(PLAYBOOK, "--limit", node)
    assert no_reason.returncode != 0
    assert "slurm_drain_reason='' must say why" in no_reason.stdout, no_reason.stdout[-2000:]
    bad_then = ansible_playbook(PLAYBOOK, "--limit", node, extra_vars={"drain_reason": "x", "drain_then": "later"})
    assert bad_then.returncode != 0
    assert "later" in bad_then.stdout and "resume" in bad_then.stdout, bad_then.stdout[-2000:]
    bad_wait = ansible_playbook(PLAYBOOK, "--limit", node, extra_vars={"drain_reason": "x", "drain_wait": "soon"})
    assert "slurm_drain_wait='soon' takes a duration" in bad_wait.stdout, bad_wait.stdout[-2000:]
    assert local_cluster.slurm_node_states(node).isdisjoint({"DRAIN", "DOWN"})


def test_a_training_still_running_at_the_end_of_the_wait_stops_the_drain_naming_it():
    """The node stays drained; once the training has ended a rerun finishes, and a further rerun
    of a drain that keeps the node drained changes nothing."""
    local_cluster.all_nodes_up()
    admin, gi = galaxy_it.admin_instance(), galaxy_it.new_user()
    history = gi.histories.create_history(name="drain")["id"]
    script = galaxy_it.paste_dataset(gi, history, galaxy_it.HOLDING_SCRIPT.format(release_at=int(time.time()) + 600),
                                     "hold.py")  # fmt: skip
    training = gi.tools.run_tool(history, galaxy_it.TRAINING_TOOL_ID, {"select_file": {"src": "hda", "id": script}}
                                 )["jobs"][0]["id"]  # fmt: skip
    galaxy_it.wait_for(lambda: gi.jobs.show_job(training)["state"] == "running", "the training running", timeout=120)
    node, container = local_cluster.node_and_container(admin, training)
    # No session to wait for: the run gives the training a few seconds, not the usual grace.
    stay = {"drain_reason": "e2e: firmware", "drain_wait": "0", "drain_then": "stay", "__slurm_drain_grace_s": 5}
    try:
        stopped = ansible_playbook(PLAYBOOK, "--limit", node, extra_vars=stay)
        assert stopped.returncode != 0
        said = " ".join(stopped.stdout.split())
        slurm_job = admin.jobs.show_job(training, full_details=True)["external_id"]
        assert f"1 job(s) still run on {node} after the wait" in said and f": {slurm_job} galaxy " in said, said[-2000:]
        assert "The node stays drained and takes no new job" in said
        assert "DRAIN" in local_cluster.slurm_node_states(node)
        assert gi.jobs.show_job(training)["state"] == "running"  # never ended by the drain

        local_cluster.run(node, "docker", "exec", container, "touch", "/tmp/release")
        assert galaxy_it.wait_for_job(gi, training, timeout=120) == "ok"
        finished = ansible_playbook(PLAYBOOK, "--limit", node, extra_vars=stay)
        assert finished.returncode == 0, finished.stdout[-3000:]
        assert "drained (e2e: firmware)" in finished.stdout
        again = ansible_playbook(PLAYBOOK, "--limit", node, extra_vars=stay)
        assert again.returncode == 0, again.stdout[-3000:]
        assert re.search(rf"^{node}\s+: ok=\d+\s+changed=0\s", again.stdout, re.MULTILINE), again.stdout[-2000:]
        assert "DRAIN" in local_cluster.slurm_node_states(node)
    finally:
        local_cluster.slurm("scontrol", "update", f"NodeName={node}", "State=RESUME")
        local_cluster.run(node, "rm", "-f", f"{local_cluster.facts()['node_notice_dir']}/notice.json")
