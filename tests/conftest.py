"""Shared test helpers: repository paths and rendering of the repository's templates."""

from __future__ import annotations

import pathlib
import subprocess

import jinja2
import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
# The Debian base image scripts/build-base-images.sh makes: tests that start containers use it.
BASE_IMAGE = "gxnb/debian-systemd:bookworm"


def render_template(path: pathlib.Path, **variables) -> str:
    """Render one of the repository's Jinja templates outside Ansible (strict: no undefined names)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_nice_yaml"] = lambda data, indent=2, sort_keys=True: yaml.safe_dump(
        data, indent=indent, sort_keys=sort_keys, default_flow_style=False
    )
    return env.from_string(path.read_text()).render(**variables)


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO


@pytest.fixture()
def base_image() -> str:
    """BASE_IMAGE on this machine's Docker engine, or the test is skipped saying how to make it."""
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"{BASE_IMAGE} not built here (scripts/build-base-images.sh)")
    return BASE_IMAGE
