"""The docker command of job scripts (roles/slurm/files/slurm-job-docker) behaves as `docker run`
does for Galaxy's job script: the tool's stdout and stderr apart, its exit status, the container
removed at the end, and every other command passed to docker unchanged. (That it outlives an
engine restart is tested end to end: tests/e2e/test_faults.py.)"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.conftest import REPO

WRAPPER = str(REPO / "roles" / "slurm" / "files" / "slurm-job-docker")
IMAGE = "gxnb/debian-systemd:bookworm"

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module", autouse=True)
def image():
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"{IMAGE} not built here (scripts/build-base-images.sh)")


def test_run_gives_the_tools_output_and_status_and_removes_the_container():
    name = f"gxnb-wrapper-{uuid.uuid4().hex[:8]}"
    result = subprocess.run([WRAPPER, "run", "--rm", "--name", name, "--label", "org.gxnb.test=1", IMAGE,
                             "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stdout == "to-stdout\n" and result.stderr == "to-stderr\n"
    assert subprocess.run(["docker", "inspect", name], capture_output=True).returncode != 0


def test_other_commands_go_to_docker_unchanged():
    result = subprocess.run([WRAPPER, "image", "inspect", "-f", "{{.Id}}", IMAGE], capture_output=True, text=True)
    direct = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == direct.stdout


def test_a_container_killed_from_outside_ends_the_job():
    name = f"gxnb-wrapper-{uuid.uuid4().hex[:8]}"
    run = subprocess.Popen([WRAPPER, "run", "--rm", "--name", name, IMAGE, "sleep", "300"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for _ in range(60):
            if subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", name],
                              capture_output=True, text=True).stdout.strip() == "true":  # fmt: skip
                break
            subprocess.run(["sleep", "0.5"])
        subprocess.run(["docker", "kill", name], capture_output=True)
        assert run.wait(timeout=60) == 137
    finally:
        run.kill()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
