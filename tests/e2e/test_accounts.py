"""Accounts: with registration closed (gxnb_user_registration, closed by default) nobody
registers on their own; the admin creates accounts."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e


def test_a_visitor_cannot_register_and_galaxy_shows_no_register_link():
    """What Galaxy's register form does: the page's session token, then POST /user/create."""
    endpoints = galaxy_it.load_endpoints()
    visitor = requests.Session()
    page = visitor.get(f"{endpoints['galaxy_url']}/", timeout=30).text
    token = re.search(r'session_csrf_token = "([0-9a-f]+)"', page).group(1)
    name = f"walkin-{uuid.uuid4().hex[:8]}"
    answer = visitor.post(f"{endpoints['galaxy_url']}/user/create", timeout=30,
                          json={"email": f"{name}@example.org", "username": name, "password": "a-long-password-1",
                                "confirm": "a-long-password-1", "subscribe": False, "session_csrf_token": token})
    assert answer.status_code >= 400, answer.text
    assert "User registration is disabled" in answer.json()["err_msg"], answer.text
    config = visitor.get(f"{endpoints['galaxy_url']}/api/configuration", timeout=30).json()
    assert config["allow_local_account_creation"] is False  # the client shows no "Register here"
    assert not galaxy_it.admin_instance().users.get_users(f_email=f"{name}@example.org")


def test_the_admin_creates_accounts_that_work():
    endpoints = galaxy_it.load_endpoints()
    email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    me = requests.get(f"{endpoints['galaxy_url']}/api/users/current", headers={"x-api-key": key}, timeout=30)
    assert me.status_code == 200 and me.json()["email"] == email, me.text


def test_a_user_outside_the_gpu_users_group_is_told_whom_to_ask():
    endpoints = galaxy_it.load_endpoints()
    group = local_cluster.facts()["gpu_users_group"]
    if not group:
        pytest.skip("this deployment lets everyone run the notebook")
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"], gpu_user=False)
    gi, _history, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], key)
    assert galaxy_it.wait_for_job(gi, job_id, timeout=120) == "error"
    # What the user sees on the job's output in the history.
    said = galaxy_it.what_the_history_says(gi, job_id)
    assert f"only members of the Galaxy group '{group}'" in said, said
    assert endpoints["admin_email"] in said, said
