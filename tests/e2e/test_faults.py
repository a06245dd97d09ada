"""Faults survived: with a user's notebook session open (a variable defined in its kernel), a
training running and an upload half sent, each service of the production server is restarted in
turn. After each the session answers again at the same URL within a stated time, its kernel still
holds what the user made, the upload completes with every byte and Galaxy takes a new one
(PostgreSQL, the broker and the Celery workers behind it); the training completes after them all.
An upload client killed halfway and called again resumes where it stopped."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import subprocess
import sys
import time
import uuid

import h5py
import numpy as np
import pytest
import requests

from tests.conftest import REPO
from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

# Seconds within which the session must answer again after each fault.
BACK_WITHIN = {"postgresql": 30, "redis": 30, "gx-it-proxy": 20, "nginx-reload": 10, "nginx-restart": 15,
               "docker-engine": 60}  # fmt: skip


MIB = 2**20


@pytest.fixture(scope="module")
def session():
    session = galaxy_it.new_users_session()
    session.run_code("made_by_the_user = 41")
    yield session
    session.galaxy.jobs.cancel_job(session.job_id)


@pytest.fixture(scope="module")
def training(session):
    """The same user's training, running on a job node until the last test releases it."""
    gi = session.galaxy
    hold = galaxy_it.HOLDING_SCRIPT.format(release_at=int(time.time()) + 1200)
    script = galaxy_it.paste_dataset(gi, session.history_id, hold, "hold.py")
    job_id = gi.tools.run_tool(session.history_id, galaxy_it.TRAINING_TOOL_ID,
                               {"select_file": {"src": "hda", "id": script}})["jobs"][0]["id"]  # fmt: skip
    deadline = time.monotonic() + 180
    while gi.jobs.show_job(job_id)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(2)
    assert gi.jobs.show_job(job_id)["state"] == "running", gi.jobs.show_job(job_id)
    yield job_id
    if gi.jobs.show_job(job_id)["state"] not in galaxy_it.TERMINAL_JOB_STATES:
        gi.jobs.cancel_job(job_id)


class UploadInProgress:
    """A chunked (tus) upload with its first chunk sent: finish() sends the rest after a fault."""

    def __init__(self, gi, history_id: str, folder):
        self.gi, self.history_id = gi, history_id
        self.path = folder / f"in-progress-{uuid.uuid4().hex[:6]}.txt"
        self.path.write_text("".join(os.urandom(32).hex() + "\n" for _ in range(3 * MIB // 65)))
        self.uploader = gi.get_tus_uploader(str(self.path), chunk_size=MIB)
        self.uploader.upload(stop_at=MIB)
        assert self.uploader.offset == MIB

    def finish(self) -> None:
        self.uploader.upload()
        fetched = self.gi.tools.post_to_fetch(str(self.path), self.history_id, self.uploader.session_id,
                                              file_type="txt", file_name=self.path.name)  # fmt: skip
        dataset_id = fetched["outputs"][0]["id"]
        self.gi.datasets.wait_for_dataset(dataset_id, maxwait=120)
        assert self.gi.datasets.download_dataset(dataset_id) == self.path.read_bytes()


def answers_again(session, within: float) -> float:
    """Seconds until the session's JupyterLab answers at its URL (fails after `within`)."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < within:
        try:
            last = requests.get(session.url + "api/status", timeout=5)
            if last.status_code == 200:
                return time.monotonic() - start
        except requests.RequestException as error:
            last = error
        time.sleep(0.5)
    raise AssertionError(f"{session.url} did not answer within {within} s: {last}")


def nothing_lost(session) -> None:
    assert session.run_code("print(made_by_the_user + 1)").strip() == "42"
    user = session.galaxy
    history = user.histories.create_history(name=f"after a fault {uuid.uuid4().hex[:6]}")["id"]
    galaxy_it.paste_dataset(user, history, "still uploading\n", "after-fault.txt")


@pytest.mark.parametrize(("fault", "command"), [
    ("postgresql", ["systemctl", "restart", "postgresql@15-main"]),
    ("redis", ["systemctl", "restart", "redis-server"]),
    ("gx-it-proxy", ["systemctl", "restart", "gx-it-proxy"]),
    ("nginx-reload", ["systemctl", "reload", "nginx"]),
    ("nginx-restart", ["systemctl", "restart", "nginx"]),
])  # fmt: skip
def test_the_session_and_galaxy_survive_a_restart_on_the_galaxy_server(session, training, tmp_path, fault,
                                                                       command):  # fmt: skip
    upload = UploadInProgress(session.galaxy, session.history_id, tmp_path)
    local_cluster.run(local_cluster.head(), *command, timeout=120)
    took = answers_again(session, BACK_WITHIN[fault])
    print(f"{fault}: the session answered again after {took:.1f} s")
    upload.finish()
    nothing_lost(session)
    assert session.galaxy.jobs.show_job(training)["state"] == "running"


def test_the_session_and_a_training_survive_their_nodes_docker_engine_restarting(session, training, tmp_path):
    """live-restore keeps the containers; the job script's docker command (slurm-job-docker) waits
    for them again instead of ending the job."""
    admin = galaxy_it.admin_instance()
    node, container = local_cluster.node_and_container(admin, session.job_id)
    pid = local_cluster.run(node, "docker", "inspect", "-f", "{{.State.Pid}}", container).strip()
    upload = UploadInProgress(session.galaxy, session.history_id, tmp_path)
    training_node = local_cluster.node_of(admin, training)
    for restarted in sorted({node, training_node}):
        local_cluster.run(restarted, "systemctl", "restart", "docker", timeout=180)
    took = answers_again(session, BACK_WITHIN["docker-engine"])
    print(f"docker engine on {node}: the session answered again after {took:.1f} s")
    assert local_cluster.run(node, "docker", "inspect", "-f", "{{.State.Pid}}", container).strip() == pid
    upload.finish()
    nothing_lost(session)
    assert session.galaxy.jobs.show_job(training)["state"] == "running"


# The upload client (gxnb.remote.upload, what run_script_job sends data with), in a process of its
# own that SIGKILLs itself after a number of chunks: nothing in it gets to clean up.
UPLOAD_CLIENT = """\
import os, signal, sys
from pathlib import Path
from bioblend.galaxy import GalaxyInstance
from tusclient.uploader import Uploader
from gxnb import remote

url, key, history_id, path, kill_after = sys.argv[1:]
send, sent = Uploader.upload_chunk, []
def upload_chunk(self):
    send(self)
    sent.append(1)
    if len(sent) == int(kill_after):
        os.kill(os.getpid(), signal.SIGKILL)
Uploader.upload_chunk = upload_chunk
dataset_id = remote.upload(GalaxyInstance(url, key=key), Path(path), history_id, "h5", progress=False)
print("dataset", dataset_id, "chunks sent", len(sent))
"""


def test_an_upload_client_killed_halfway_resumes_where_it_stopped(tmp_path):
    gi = galaxy_it.new_user()
    history_id = gi.histories.create_history(name="resumed upload")["id"]
    path = tmp_path / "train.h5"
    with h5py.File(path, "w") as f:
        f["X"] = np.random.default_rng(5).normal(size=(12 * MIB // 8,))
    size = path.stat().st_size
    env = {**os.environ, "PYTHONPATH": str(REPO / "container"), "GXNB_UPLOAD_CHUNK_MB": "1",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip

    def client(kill_after: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", UPLOAD_CLIENT, gi.base_url, gi.key, history_id, str(path),
                               str(kill_after)], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip

    killed = client(kill_after=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    again = client(kill_after=0)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "upload train.h5: resuming at 5.0 of" in again.stderr, again.stderr[-2000:]
    dataset_id, chunks = again.stdout.split()[1], int(again.stdout.split()[-1])
    assert chunks == math.ceil((size - 5 * MIB) / MIB), again.stdout  # the rest only, not from zero
    gi.datasets.wait_for_dataset(dataset_id, maxwait=120)
    received = gi.datasets.download_dataset(dataset_id)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_training_running_through_the_faults_completes(session, training):
    """Last in this module: the training held its slot through every fault above."""
    gi = session.galaxy
    node, container = local_cluster.node_and_container(galaxy_it.admin_instance(), training)
    local_cluster.run(node, "docker", "exec", container, "touch", "/tmp/release")
    assert galaxy_it.wait_for_job(gi, training, timeout=180) == "ok", gi.jobs.show_job(training, full_details=True)
