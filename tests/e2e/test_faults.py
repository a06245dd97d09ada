"""Faults survived: with a user's notebook session open (a variable defined in its kernel), each
service of the production server is restarted in turn. After each the session answers again at
the same URL within a stated time, its kernel still holds what the user made, and Galaxy takes
a new upload (PostgreSQL, the broker and the Celery workers behind it)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

# Seconds within which the session must answer again after each fault.
BACK_WITHIN = {"postgresql": 30, "redis": 30, "gx-it-proxy": 20, "nginx-reload": 10, "nginx-restart": 15,
               "docker-engine": 60}  # fmt: skip


@pytest.fixture(scope="module")
def session():
    session = galaxy_it.new_users_session()
    session.run_code("made_by_the_user = 41")
    yield session
    session.galaxy.jobs.cancel_job(session.job_id)


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
def test_the_session_and_galaxy_survive_a_restart_on_the_galaxy_server(session, fault, command):
    local_cluster.run(local_cluster.head(), *command, timeout=120)
    took = answers_again(session, BACK_WITHIN[fault])
    print(f"{fault}: the session answered again after {took:.1f} s")
    nothing_lost(session)


def test_the_session_survives_its_nodes_docker_engine_restarting(session):
    """live-restore keeps the container; the job script's docker command (slurm-job-docker) waits
    for it again instead of ending the job."""
    node, container = local_cluster.node_and_container(galaxy_it.admin_instance(), session.job_id)
    pid = local_cluster.run(node, "docker", "inspect", "-f", "{{.State.Pid}}", container).strip()
    local_cluster.run(node, "systemctl", "restart", "docker", timeout=180)
    took = answers_again(session, BACK_WITHIN["docker-engine"])
    print(f"docker engine on {node}: the session answered again after {took:.1f} s")
    assert local_cluster.run(node, "docker", "inspect", "-f", "{{.State.Pid}}", container).strip() == pid
    nothing_lost(session)
