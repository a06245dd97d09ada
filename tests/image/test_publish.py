"""Tag, push to a real local registry (Debian's docker-registry), pull back by digest.

The registry is the local deployment's (the inventory's gxnb_registry, started as
scripts/rollout-image.sh starts it): a rollout of an image built on this one then finds its
layers there and pushes only what is new.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import requests

from scripts import service_facts
from tests.conftest import REPO
from tests.image.conftest import IMAGE, docker

pytestmark = pytest.mark.docker
VERSION = (REPO / "container" / "VERSION").read_text().strip()


@pytest.fixture(scope="module")
def registry():
    addr = service_facts.load()["registry"]
    env = {**os.environ, "GXNB_REGISTRY_ADDR": addr, "GXNB_REGISTRY_STORAGE": str(REPO / ".deploy-local" / "registry")}
    subprocess.run([REPO / "scripts/start-local-registry.sh"], env=env, check=True)
    return addr


def publish(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([REPO / "scripts/publish-image.sh", *args], capture_output=True, text=True, timeout=1200)


def test_push_then_pull_by_digest(image, registry, tmp_path):
    repository, variant = IMAGE.rsplit(":", 1)
    digest_file = tmp_path / "digest"
    out = publish("--registry", registry, "--variant", variant, "--repository", repository,
                  "--digest-file", str(digest_file))  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    reference = out.stdout.strip().splitlines()[-1].removeprefix("digest: ")
    assert re.fullmatch(rf"{re.escape(registry)}/{re.escape(repository)}@sha256:[0-9a-f]{{64}}", reference)
    assert digest_file.read_text().strip() == reference

    # The registry lists the scheme's tags: <version>-<variant>, the same with the image's commit, <variant>.
    revision = docker("image", "inspect", "-f", '{{index .Config.Labels "org.opencontainers.image.revision"}}', IMAGE)
    scheme = [f"{VERSION}-{variant}", f"{VERSION}-{variant}-{revision.stdout.strip()[:7]}", variant]
    tags = requests.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10).json()["tags"]
    assert set(scheme) <= set(tags), tags

    # Pull by digest after dropping every local reference to the pushed tags.
    for tag in scheme:
        docker("rmi", f"{registry}/{repository}:{tag}")
    pulled = docker("pull", reference, check=False)
    assert pulled.returncode == 0, pulled.stderr
    local_id = docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
    assert docker("image", "inspect", "-f", "{{.Id}}", reference).stdout.strip() == local_id
    docker("rmi", reference, check=False)


def test_bad_arguments_are_named(registry):
    out = publish("--registry", registry, "--variant", "huge")
    assert out.returncode == 2 and "unknown variant 'huge'" in out.stderr and "cpu, gpu" in out.stderr
    out = publish("--variant", "cpu")
    assert out.returncode == 2 and "--registry" in out.stderr
    out = publish("--registry", registry, "--repository", "gxnb/not-built-here", "--variant", "cpu")
    assert out.returncode == 1 and "gxnb/not-built-here:cpu is not on this host" in out.stderr
