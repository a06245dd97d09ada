"""Image tests: run inside the notebook image on the host's Docker engine.

GXNB_TEST_IMAGE names the image (default: the cpu variant that
scripts/build-notebook-image.sh builds); the test command builds it first.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
import requests

IMAGE = os.environ.get("GXNB_TEST_IMAGE", "gxnb/jupyterlab-ai:cpu")


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


@pytest.fixture(scope="session")
def image() -> str:
    if docker("version", check=False).returncode != 0:
        pytest.fail("no Docker engine answers: run scripts/start-docker-engine.sh")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail(f"image {IMAGE} is missing: build it with scripts/build-notebook-image.sh cpu")
    return IMAGE


def run_in_image(image: str, script: str, *docker_args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a bash script in a throw-away container as an arbitrary UID (as Galaxy does)."""
    return docker(
        "run", "--rm", "--user", "12345:100", *docker_args, image, "bash", "-c", script, check=False, timeout=timeout
    )


class RunningNotebook:
    """A JupyterLab container started with `docker run -d` as a person off Galaxy would (Jupyter's
    token login: self.http sends the token), removed at the end."""

    def __init__(self, image: str, *docker_args: str, port: int = 8888, base_url: str = "/"):
        self.name = f"gxnb-image-test-{uuid.uuid4().hex[:8]}"
        self.base_url = base_url
        self.token = uuid.uuid4().hex
        docker(
            "run",
            "-d",
            "--name",
            self.name,
            "-p",
            f"127.0.0.1::{port}",
            "-e",
            f"JUPYTER_PORT={port}",
            "-e",
            f"JUPYTER_BASE_URL={base_url}",
            "-e",
            f"JUPYTER_TOKEN={self.token}",
            *docker_args,
            image,
        )
        mapping = docker("port", self.name, f"{port}/tcp").stdout.split()[0]
        self.url = f"http://{mapping}{base_url.rstrip('/')}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"

    def wait_ready(self, timeout: float = 90) -> requests.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = self.http.get(f"{self.url}/lab", timeout=5)
                if response.status_code == 200:
                    return response
            except requests.ConnectionError:
                pass
            time.sleep(1)
        raise AssertionError(f"JupyterLab did not answer at {self.url}/lab in {timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        out = docker("logs", self.name, check=False)
        return out.stdout + out.stderr

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return docker("exec", self.name, *command, check=False)

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)
