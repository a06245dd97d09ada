"""Users apart in the dataset store: every user's datasets live in one folder that every job node
shares, and a job's container holds only that job's own input files. Code in one user's notebook
reads its own input and finds no trace of another user's dataset, though the file sits on the
same node."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.e2e.test_notebook_modes import NOTEBOOK
from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

PROBE = """
import json, os
def read(path):
    try:
        with open(path) as opened:
            return opened.read()
    except OSError as error:
        return type(error).__name__
print(json.dumps({{"own": read({own!r}), "other": read({other!r}),
                  "store": sorted(os.path.join(folder, name) for folder, _subfolders, names in os.walk({store!r})
                                  for name in names)}}))
"""


@pytest.fixture(scope="module")
def alices_dataset() -> tuple[str, str]:
    alice = galaxy_it.new_user()
    history = alice.histories.create_history(name="private")["id"]
    secret = f"alice's private data {uuid.uuid4().hex}"
    return galaxy_it.dataset_file(galaxy_it.paste_dataset(alice, history, secret, "private.txt")), secret


@pytest.fixture(scope="module")
def bobs_session():
    """Bob's notebook session, opened on a notebook of his own from his history."""
    bob = galaxy_it.new_user()
    history = bob.histories.create_history(name="mine")["id"]
    notebook = galaxy_it.paste_dataset(bob, history, json.dumps(NOTEBOOK), "mine.ipynb", ext="ipynb")
    inputs = {"mode|mode_select": "previous", "mode|ipynb": {"src": "hda", "id": notebook}, "mode|run_it": False}
    started = galaxy_it.start_session(galaxy_it.load_endpoints(), bob.key, inputs)
    yield started, galaxy_it.dataset_file(notebook)
    started.galaxy.jobs.cancel_job(started.job_id)


def test_a_session_reads_its_own_input_and_nothing_of_another_users_datasets(alices_dataset, bobs_session):
    alices_path, secret = alices_dataset
    session, own_path = bobs_session
    node, _container = local_cluster.node_and_container(galaxy_it.admin_instance(), session.job_id)
    # The other user's file is on this node (shared storage), readable outside the container...
    assert local_cluster.run(node, "cat", alices_path).strip() == secret
    store = os.path.commonpath([alices_path, own_path])
    seen = json.loads(session.run_code(PROBE.format(own=own_path, other=alices_path, store=store)))
    # ...and inside it only the job's own input exists.
    assert json.loads(seen["own"])["cells"][0]["source"] == NOTEBOOK["cells"][0]["source"], seen["own"]
    assert seen["other"] == "FileNotFoundError", seen["other"]
    assert seen["store"] == [own_path], seen["store"]


def test_the_container_mounts_no_dataset_folder(bobs_session):
    session, own_path = bobs_session
    node, container = local_cluster.node_and_container(galaxy_it.admin_instance(), session.job_id)
    mounts = json.loads(local_cluster.run(node, "docker", "inspect", "--format", "{{json .Mounts}}", container))
    datasets = {(m["Source"], m["RW"]) for m in mounts if os.path.basename(m["Source"]).startswith("dataset_")}
    assert datasets == {(own_path, False)}, mounts
    assert not any(own_path.startswith(m["Source"] + "/") for m in mounts), mounts  # no folder above it
