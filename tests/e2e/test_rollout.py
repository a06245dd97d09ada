"""Rolling a new notebook image out and back (scripts/rollout-image.sh -> ansible/rollout_image.yml,
rollback_image.yml) on the local deployment, with Debian's docker-registry as the registry.

v2 and v3 are the built image (GXNB_TEST_IMAGE, default the cpu variant) plus one layer:
v2 marks itself, v3 cannot start JupyterLab.
Runs last among the e2e tests (it switches the image the notebook tool runs) and ends with a
rollback, so the tools run the deployed image again afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid

import pytest
import requests

from scripts import service_facts
from tests.conftest import REPO
from tests.image.conftest import IMAGE
from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

STATE_FILE = "/var/lib/gxnb/notebook-image-rollout.json"
SUMMARY = REPO / ".deploy-local" / "rollout-summary.json"
MARKER_CODE = "import os; print('image', os.environ.get('GXNB_ROLLOUT_TEST', 'without marker'))"
# One quick image test shows that the rollout tests the source image; the default runs them all
# (the test command has run them on this image already).
QUICK_IMAGE_TESTS = json.dumps({"notebook_rollout_image_tests": "tests/image/test_image.py -k runs_as_non_root"})


def docker(*args: str, stdin: str | None = None) -> str:
    out = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def rollout(*args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([REPO / "scripts/rollout-image.sh", *args], capture_output=True, text=True, timeout=1800)
    print(run.stdout[-4000:])
    return run


def stray_container_monitors() -> list[str]:
    """Container monitors (the job nodes' gxnb-container-monitor, or Galaxy's own) on the job nodes
    whose Slurm job no longer runs (node:pid each)."""
    script = (
        "for p in $(pgrep -f 'gxnb-container-monito[r]|galaxy_ext[.]container_monitor'); do "
        "j=$(tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SLURM_JOB_ID=//p'); "
        '[ -n "$j" ] && [ "$(squeue -h -j "$j" -o %T 2>/dev/null)" = RUNNING ] || echo "$(hostname):$p"; done'
    )
    return [s for node in local_cluster.job_nodes() for s in local_cluster.run(node, "bash", "-c", script).split()]


def rollout_state() -> dict:
    return json.loads(local_cluster.run(local_cluster.head(), "cat", STATE_FILE))


def resolved_image(endpoints: dict, tool_id: str = galaxy_it.NOTEBOOK_TOOL_ID) -> str:
    """The container Galaxy resolves the tool to right now (admin API)."""
    answer = requests.get(
        f"{endpoints['galaxy_url']}/api/container_resolvers/resolve",
        params={"tool_id": tool_id, "container_type": "docker"},
        headers={"x-api-key": endpoints["admin_api_key"]},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["status"]["container_description"]["identifier"]


@pytest.fixture(scope="module")
def endpoints():
    return galaxy_it.load_endpoints()


@pytest.fixture(scope="module")
def user_key(endpoints):
    return galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])[1]


@pytest.fixture(scope="module")
def images():
    """Local test images v2 and v3, each with a unique content (a new digest on every run)."""
    run_id = uuid.uuid4().hex[:8]
    base = IMAGE  # the image the deployment built (the cpu variant)
    user = docker("image", "inspect", "-f", "{{.Config.User}}", base).strip()
    docker("build", "-q", "-t", "gxnb/rollout-test:v2", "-", stdin=(
        f"FROM {base}\nENV GXNB_ROLLOUT_TEST=v2-{run_id}\n"))  # fmt: skip
    docker("build", "-q", "-t", "gxnb/rollout-test:v3", "-", stdin=(
        f"FROM gxnb/rollout-test:v2\nENV GXNB_ROLLOUT_TEST=v3-{run_id}\nUSER root\n"
        "RUN printf '#!/bin/sh\\necho v3 cannot start >&2\\nexit 3\\n' > /usr/local/bin/start-notebook.sh\n"
        f"USER {user}\n"))  # fmt: skip
    yield {"v2": f"rollout-v2-{run_id}", "v3": f"rollout-v3-{run_id}", "v2_marker": f"image v2-{run_id}"}
    # The run's tags as the rollout pushed them (<registry>/<repository>:rollout-v2-<run>): every
    # run would leave two more in this machine's engine.
    pushed = [name for name in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split()
              if name.endswith((f":rollout-v2-{run_id}", f":rollout-v3-{run_id}"))]  # fmt: skip
    docker("rmi", "gxnb/rollout-test:v3", "gxnb/rollout-test:v2", *pushed)


@pytest.fixture(scope="module")
def rolled(endpoints, user_key, images):
    """A session on the deployed image (v1), then the rollout of v2."""
    v1_image = resolved_image(endpoints)
    v1_session = galaxy_it.start_session(endpoints, user_key)
    v1_marker = v1_session.run_code(MARKER_CODE).strip()
    run = rollout(images["v2"], "gxnb/rollout-test:v2", "-e", QUICK_IMAGE_TESTS)
    yield {"v1_image": v1_image, "v1_session": v1_session, "v1_marker": v1_marker, "run": run}
    v1_session.api("POST", "api/shutdown")


def test_rollout_switches_new_launches_to_the_digest_while_running_sessions_go_on(endpoints, user_key, images, rolled):
    run = rolled["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    # The source image was tested first.
    assert re.search(r"TASK \[notebook_rollout : Image tests, .* -k runs_as_non_root\]", run.stdout)
    summary = json.loads(SUMMARY.read_text())
    assert summary["old"] == rolled["v1_image"]
    facts = service_facts.load()
    assert summary["new"].startswith(f"{facts['registry']}/{facts['image_repository']}@sha256:"), summary
    assert summary["smoke_test"]["image"] == summary["new"]
    assert set(summary["pull_seconds"]) == set(local_cluster.job_nodes())
    assert resolved_image(endpoints) == summary["new"]
    assert resolved_image(endpoints, "run_jupyter_job") == summary["new"]
    state = rollout_state()
    assert (state["current"], state["previous"]) == (summary["new"], rolled["v1_image"])

    # The session started before the rollout still answers and still runs v1.
    assert rolled["v1_session"].run_code(MARKER_CODE).strip() == rolled["v1_marker"]
    # A new launch runs v2, by digest (Galaxy's job metrics, once the session has ended).
    session = galaxy_it.start_session(endpoints, user_key)
    assert session.run_code(MARKER_CODE).strip() == images["v2_marker"]
    session.api("POST", "api/shutdown")
    galaxy_it.wait_for_job(session.galaxy, session.job_id)
    assert session.container_image(endpoints["admin_api_key"]) == summary["new"]


def test_rolling_the_same_tag_out_again_changes_nothing(endpoints, images, rolled):
    before = rollout_state()
    run = rollout(images["v2"], "gxnb/rollout-test:v2", "-e", "notebook_rollout_image_tests=")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.MULTILINE)
    assert recap and all(changed == "0" for _, changed in recap), recap
    assert "the tools already run it" in run.stdout
    assert json.loads(SUMMARY.read_text())["smoke_test"]["image"] == before["current"]
    assert rollout_state() == before
    assert resolved_image(endpoints) == before["current"]


def test_a_failing_smoke_test_rolls_back_by_itself(endpoints, user_key, images, rolled):
    v2 = rollout_state()["current"]
    run = rollout(images["v3"], "gxnb/rollout-test:v3", "-e", "notebook_rollout_image_tests=")
    assert run.returncode != 0
    assert "v3 cannot start" in run.stdout, run.stdout[-3000:]
    assert f"The tools run {v2} again" in run.stdout.replace("\n", " "), run.stdout[-3000:]
    assert resolved_image(endpoints) == v2
    state = rollout_state()
    assert (state["current"], state["previous"]) == (v2, rolled["v1_image"])  # rollback_image.yml still returns to v1
    assert state["history"][0]["action"] == "automatic rollback"
    # v3's container died before publishing its port: Galaxy's own monitor of that job would spin
    # for ever; no monitor may outlive its Slurm job on the job nodes.
    deadline = time.monotonic() + 150
    while (stray := stray_container_monitors()) and time.monotonic() < deadline:
        time.sleep(5)
    assert stray == []
    session = galaxy_it.start_session(endpoints, user_key)
    assert session.run_code(MARKER_CODE).strip() == images["v2_marker"]
    session.api("POST", "api/shutdown")


def test_a_tag_missing_from_the_registry_stops_before_galaxy_is_touched(endpoints, rolled):
    before = rollout_state()
    # The tool panel names the tool XMLs Galaxy loads (each named by its content).
    tool_files = ["exec", local_cluster.head(), "sh", "-c",
                  "cat /srv/galaxy/config/tool_conf.xml; ls -l --full-time -R /srv/galaxy/tools"]
    files_before = docker(*tool_files)
    run = rollout("no-such-tag-0")
    assert run.returncode != 0
    assert "has no tag no-such-tag-0" in run.stdout and "before touching the job nodes or Galaxy" in run.stdout
    assert "Rollout 2/4" not in run.stdout
    assert rollout_state() == before
    assert docker(*tool_files) == files_before
    assert resolved_image(endpoints) == before["current"]


def test_rollback_returns_new_launches_to_the_previous_image(endpoints, user_key, rolled):
    v2 = rollout_state()["current"]
    run = rollout("--rollback")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert resolved_image(endpoints) == rolled["v1_image"]
    state = rollout_state()
    assert (state["current"], state["previous"], state["history"][0]["action"]) == (rolled["v1_image"], v2, "rollback")
    session = galaxy_it.start_session(endpoints, user_key)
    assert session.run_code(MARKER_CODE).strip() == rolled["v1_marker"]
    session.api("POST", "api/shutdown")
