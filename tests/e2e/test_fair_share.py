"""A fair share of GPUs and disk: each limit is a setting, and a user who hits one is told so.

- trainings per user: beyond gxnb_training_limit_per_user they wait (held back by Galaxy), beyond
  gxnb_training_queue_limit_per_user a further one is refused with a message; another user is
  not held back;
- a job's working folder: a session that writes more than gxnb_job_output_limit_gb is stopped,
  and its history says why;
- a container's log: what a session prints is kept to gxnb_job_log_max_mb on the node;
- visitors without an account can neither upload nor run a tool (gxnb_anonymous_access off).

Trainings are held in Slurm's queue by draining both job nodes: nothing runs, nothing is heavy."""

from __future__ import annotations

import contextlib

import pytest
import requests

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

FACTS = local_cluster.facts()


@contextlib.contextmanager
def all_nodes_drained():
    with contextlib.ExitStack() as stack:
        for node in local_cluster.job_nodes():
            stack.enter_context(local_cluster.drained(node))
        yield


def send_training(gi, history_id: str, script_id: str) -> str:
    return gi.tools.run_tool(history_id, galaxy_it.TRAINING_TOOL_ID, {"select_file": {"src": "hda", "id": script_id}}
                             )["jobs"][0]["id"]  # fmt: skip


def test_a_users_trainings_wait_beyond_the_running_limit_and_are_refused_beyond_the_queue_limit():
    running_limit = int(FACTS["training_limit_per_user"])
    queue_limit = int(FACTS["training_queue_limit_per_user"])
    assert 0 < running_limit < queue_limit, FACTS
    admin = galaxy_it.admin_instance()
    gi, other = galaxy_it.new_user(), galaxy_it.new_user()
    history = gi.histories.create_history(name="many trainings")["id"]
    script = galaxy_it.paste_dataset(gi, history, "print('never runs: the nodes are drained')\n", "train.py")
    sent = []
    try:
        with all_nodes_drained():
            sent = [send_training(gi, history, script) for _ in range(queue_limit)]

            def dispatched():
                external = [admin.jobs.show_job(job, full_details=True).get("external_id") for job in sent]
                return sum(1 for e in external if e) == running_limit and external

            galaxy_it.wait_for(dispatched, f"{running_limit} of the user's trainings in Slurm", timeout=120)
            held = [job for job in sent if gi.jobs.show_job(job)["state"] == "new"]
            assert len(held) == queue_limit - running_limit, [gi.jobs.show_job(job)["state"] for job in sent]

            refused = send_training(gi, history, script)
            sent.append(refused)
            assert galaxy_it.wait_for_job(gi, refused, timeout=120) == "error"
            message = galaxy_it.what_the_history_says(gi, refused)
            assert f"You have {queue_limit} trainings running or waiting" in message, message

            others_history = other.histories.create_history(name="one training")["id"]
            others_script = galaxy_it.paste_dataset(other, others_history, "print('mine')\n", "train.py")
            theirs = send_training(other, others_history, others_script)
            sent.append(theirs)
            galaxy_it.wait_for(lambda: admin.jobs.show_job(theirs, full_details=True).get("external_id"),
                               "another user's training in Slurm", timeout=120)  # fmt: skip
    finally:
        for job in sent:
            admin.jobs.cancel_job(job)


def test_a_session_that_fills_its_working_folder_past_the_limit_is_stopped_saying_why():
    limit_gb = int(FACTS["job_output_limit_gb"])
    session = galaxy_it.new_users_session()
    folder = ""
    try:
        folder = session.run_code(f"""
import os
os.makedirs("outputs", exist_ok=True)
with open("outputs/too_big.bin", "wb") as big:
    os.posix_fallocate(big.fileno(), 0, {limit_gb * 10**9 + 200 * 10**6})
print(os.getcwd())
""").strip()
        assert galaxy_it.wait_for_job(session.galaxy, session.job_id, timeout=180) == "error"
        message = galaxy_it.what_the_history_says(session.galaxy, session.job_id)
        assert "into its working folder, more than the" in message and f"{limit_gb}.0 GB" in message, message
    finally:
        session.galaxy.jobs.cancel_job(session.job_id)
        if folder:  # Galaxy keeps a failed job's folder: not this file
            local_cluster.run(local_cluster.head(), "rm", "-f", f"{folder}/outputs/too_big.bin")


def test_what_a_session_prints_is_kept_to_the_log_limit_on_its_node():
    cap_mb = int(FACTS["job_log_max_mb"])
    session = galaxy_it.new_users_session()
    try:
        written = session.run_code(f"""
line = b"x" * 1023 + b"\\n"
with open("/proc/1/fd/1", "wb", buffering=0) as log:  # the container's output, as a print of PID 1
    for _ in range({3 * cap_mb} * 1024):
        log.write(line)
print({3 * cap_mb})
""", timeout=300)
        assert written.strip() == str(3 * cap_mb)
        node, container = local_cluster.node_and_container(galaxy_it.admin_instance(), session.job_id)
        log_path = local_cluster.run(node, "docker", "inspect", "-f", "{{.LogPath}}", container).strip()
        size = int(local_cluster.run(node, "bash", "-c", f"cat {log_path}* | wc -c").strip())
        assert 0 < size <= (cap_mb + 1) * 2**20, f"{size} bytes of log kept for {3 * cap_mb} MB printed"
    finally:
        session.galaxy.jobs.cancel_job(session.job_id)


def test_a_visitor_without_an_account_can_neither_upload_nor_run_a_tool():
    galaxy_url = galaxy_it.load_endpoints()["galaxy_url"]
    visitor = requests.Session()
    upload = visitor.post(f"{galaxy_url}/api/tools/fetch", timeout=30, json={"targets": [{
        "destination": {"type": "hdas"}, "elements": [{"src": "pasted", "paste_content": "x", "ext": "txt"}]}]})
    tool = {"tool_id": galaxy_it.NOTEBOOK_TOOL_ID, "inputs": {"mode|mode_select": "fresh"}}
    run = visitor.post(f"{galaxy_url}/api/tools", timeout=30, json=tool)
    histories = visitor.get(f"{galaxy_url}/api/histories/current", timeout=30)
    for answer in (upload, run, histories):
        assert answer.status_code in (400, 401, 403), (answer.request.url, answer.status_code, answer.text[:300])
    page = visitor.get(f"{galaxy_url}/", timeout=30)
    assert "login" in page.url or "login" in page.text.lower(), page.url
