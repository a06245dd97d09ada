"""The notebook tool's modes beyond a fresh session: a notebook from the history executed
headless (the executed notebook returns to the history), and a clone of a git repository."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "print('answer', 6 * 7)",
        }
    ],
}


def upload_notebook(gi, tmp_path, history_name: str) -> tuple[dict, str]:
    """A new history holding NOTEBOOK as an ipynb dataset: (history, dataset id)."""
    history = gi.histories.create_history(name=history_name)
    path = tmp_path / "analysis.ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    upload = gi.tools.upload_file(str(path), history["id"], file_type="ipynb")
    dataset_id = upload["outputs"][0]["id"]
    gi.datasets.wait_for_dataset(dataset_id, maxwait=120)
    return history, dataset_id


def test_open_a_notebook_from_the_history(tmp_path):
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    gi = galaxy_it.GalaxyInstance(endpoints["galaxy_url"], key=key)
    history, dataset_id = upload_notebook(gi, tmp_path, "open mode")
    inputs = {"mode|mode_select": "previous", "mode|ipynb": {"src": "hda", "id": dataset_id}, "mode|run_it": False}
    run = gi.tools.run_tool(history["id"], galaxy_it.NOTEBOOK_TOOL_ID, inputs)
    job_id = run["jobs"][0]["id"]
    ep = galaxy_it.wait_for_entry_point(gi, job_id, timeout=240)
    session = galaxy_it.NotebookSession(gi, endpoints["galaxy_url"], history["id"], job_id, ep)
    try:
        galaxy_it.wait_for_http_200(session.url + "lab")
        opened = session.api("GET", "api/contents/work/galaxy_notebook.ipynb", params={"content": 1})
        assert opened.status_code == 200, opened.text
        assert opened.json()["content"]["cells"][0]["source"] == NOTEBOOK["cells"][0]["source"]
    finally:
        session.api("POST", "api/shutdown")
        galaxy_it.wait_for_job(gi, job_id, timeout=120)


def test_execute_a_notebook_from_the_history(tmp_path):
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    gi = galaxy_it.GalaxyInstance(endpoints["galaxy_url"], key=key)
    history, dataset_id = upload_notebook(gi, tmp_path, "execute mode")

    run = gi.tools.run_tool(
        history["id"],
        galaxy_it.NOTEBOOK_TOOL_ID,
        {
            "mode|mode_select": "previous",
            "mode|ipynb": {"src": "hda", "id": dataset_id},
            "mode|run_it": True,
        },
    )
    job_id = run["jobs"][0]["id"]
    state = galaxy_it.wait_for_job(gi, job_id, timeout=300)
    assert state == "ok", gi.jobs.show_job(job_id, full_details=True).get("stderr", "")[-2000:]

    deadline = time.monotonic() + 60
    executed = []
    while time.monotonic() < deadline and not executed:
        contents = gi.histories.show_history(history["id"], contents=True, details="all")
        executed = [d for d in contents if d["name"].startswith("galaxy_notebook_executed") and d["state"] == "ok"]
        time.sleep(1)
    assert executed, [d["name"] for d in contents]
    text = gi.datasets.download_dataset(executed[0]["id"], require_ok_state=True)
    notebook = json.loads(text)
    outputs = notebook["cells"][0]["outputs"]
    assert any("answer 42" in "".join(o.get("text", "")) for o in outputs), outputs


@pytest.fixture
def git_repository(tmp_path):
    """A repository served by `git daemon` on the Docker bridge, on the one address and port of
    this machine the local inventory lets sessions reach (gxnb_session_reachable_services: a
    private address, closed to sessions otherwise)."""
    source = tmp_path / "analysis"
    source.mkdir()
    (source / "README.md").write_text("# analysis from git\n")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-C", str(source)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(source)], check=True)
    subprocess.run([*git, "add", "README.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    host, port = next(service.rsplit(":", 1) for service in local_cluster.facts()["session_reachable_services"].split()
                      if service.startswith(bridge_address() + ":"))  # fmt: skip
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={tmp_path}",
                               f"--listen={host}", f"--port={port}", str(tmp_path)])  # fmt: skip
    time.sleep(1)
    yield f"git://{host}:{port}/analysis"
    daemon.terminate()


def bridge_address() -> str:
    """This host's address on the Docker bridge (the local node's gateway)."""
    out = subprocess.run(["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.strip()


def test_clone_a_git_repository(git_repository):
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    session = galaxy_it.start_session(endpoints, key, {"mode|mode_select": "git", "mode|repo_url": git_repository})
    try:
        galaxy_it.wait_for_http_200(session.url + "lab")
        listing = session.api("GET", "api/contents/work/repository")
        assert listing.status_code == 200, listing.text
        assert "README.md" in [item["name"] for item in listing.json()["content"]]
        readme = session.api("GET", "api/contents/work/repository/README.md", params={"content": 1}).json()
        assert readme["content"] == "# analysis from git\n"
    finally:
        session.api("POST", "api/shutdown")
        galaxy_it.wait_for_job(session.galaxy, session.job_id, timeout=120)
