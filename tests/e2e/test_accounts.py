"""Accounts: with registration closed (gxnb_user_registration, closed by default) nobody
registers on their own; the admin creates accounts."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e


def test_a_visitor_cannot_register_and_galaxy_shows_no_register_link():
    endpoints = galaxy_it.load_endpoints()
    name = f"walkin-{uuid.uuid4().hex[:8]}"
    answer = requests.post(f"{endpoints['galaxy_url']}/api/users", timeout=30,
                           json={"username": name, "email": f"{name}@example.org", "password": "a-long-password-1"})
    assert answer.status_code == 403, answer.text
    assert "User creation is not allowed" in answer.json()["err_msg"], answer.text
    config = requests.get(f"{endpoints['galaxy_url']}/api/configuration", timeout=30).json()
    assert config["allow_user_creation"] is False  # the client hides "Register here"
    assert not galaxy_it.admin_instance().users.get_users(f_email=f"{name}@example.org")


def test_the_admin_creates_accounts_that_work():
    endpoints = galaxy_it.load_endpoints()
    email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    me = requests.get(f"{endpoints['galaxy_url']}/api/users/current", headers={"x-api-key": key}, timeout=30)
    assert me.status_code == 200 and me.json()["email"] == email, me.text


def test_a_user_outside_the_gpu_users_group_is_told_whom_to_ask():
    endpoints = galaxy_it.load_endpoints()
    group = local_cluster.facts()["gpu_users_group"]
    if not (group and endpoints["gpu_count"]):
        pytest.skip("this deployment lets everyone use its GPUs")
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"], gpu_user=False)
    gi, _history, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], key)
    assert galaxy_it.wait_for_job(gi, job_id, timeout=120) == "error"
    job = gi.jobs.show_job(job_id, full_details=True)  # what the user sees of their own job
    said = " ".join(str(job.get(key) or "") for key in ("info", "stderr", "job_messages"))
    assert f"only members of the Galaxy group '{group}'" in said, job
    assert endpoints["admin_email"] in said, said
