"""The notebook tool's "notebook from the history" mode, executed headless: the executed
notebook returns to the history with its outputs."""

from __future__ import annotations

import json
import time

import pytest

from tests.support import galaxy_it

pytestmark = pytest.mark.e2e

NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                    "language": "python"}},
    "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None, "outputs": [],
               "source": "print('answer', 6 * 7)"}],
}


def test_execute_a_notebook_from_the_history(tmp_path):
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    gi = galaxy_it.GalaxyInstance(endpoints["galaxy_url"], key=key)
    history = gi.histories.create_history(name="execute mode")
    path = tmp_path / "analysis.ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    upload = gi.tools.upload_file(str(path), history["id"], file_type="ipynb")
    dataset_id = upload["outputs"][0]["id"]
    gi.datasets.wait_for_dataset(dataset_id, maxwait=120)

    run = gi.tools.run_tool(history["id"], galaxy_it.NOTEBOOK_TOOL_ID, {
        "mode|mode_select": "previous",
        "mode|ipynb": {"src": "hda", "id": dataset_id},
        "mode|run_it": True,
    })
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
