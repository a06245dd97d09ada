"""A user runs at most gxnb_session_limit_per_user notebook sessions at once: Galaxy holds the
next one (queued, never sent to Slurm) until one of them ends, then starts it."""

from __future__ import annotations

import time

import pytest

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e


def test_a_user_runs_at_most_the_limit_of_sessions_and_the_next_starts_when_one_ends():
    endpoints = galaxy_it.load_endpoints()
    limit = int(local_cluster.facts()["session_limit_per_user"])
    assert limit > 0, "the local deployment limits sessions per user"
    admin = galaxy_it.admin_instance()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    running, waiting = [], None
    try:
        running = [galaxy_it.start_session(endpoints, key) for _ in range(limit)]
        gi, _history, waiting = galaxy_it.launch_notebook(endpoints["galaxy_url"], key)
        # Held while the others run: long enough for several of Galaxy's job handler passes.
        hold_until = time.monotonic() + 30
        while time.monotonic() < hold_until:
            job = admin.jobs.show_job(waiting, full_details=True)
            assert job["state"] in ("new", "queued") and not job.get("external_id"), job
            time.sleep(3)
        # Another user is not held by this user's sessions.
        _other_email, other_key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
        other = galaxy_it.start_session(endpoints, other_key)
        running.append(other)
        # One of the user's sessions ends (File > Shut Down): the held one starts.
        assert running[0].api("POST", "api/shutdown").status_code in (200, 204)
        galaxy_it.wait_for_entry_point(gi, waiting, timeout=240)
    finally:
        for session in running:
            session.galaxy.jobs.cancel_job(session.job_id)
        if waiting:
            admin.jobs.cancel_job(waiting)
