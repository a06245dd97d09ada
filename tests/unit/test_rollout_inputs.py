"""Bad rollout inputs stop ansible/rollout_image.yml (and a rollback with nothing recorded stops
rollback_image.yml) in their first step, before any node or Galaxy is touched, with a message
naming the value and what is allowed. The full rollout runs in tests/e2e/test_rollout.py."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.ansible_run import ansible_playbook

BASE = {"ansible_connection": "local", "gxnb_registry": "registry.example.org:5000"}


def playbook(name: str, **extra) -> subprocess.CompletedProcess:
    return ansible_playbook(f"ansible/{name}", extra_vars={**BASE, **extra})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, ["rollout_tag is ''", "-e rollout_tag=1.0.1-cpu"]),
        ({"rollout_tag": "1.0 final"}, ["rollout_tag is '1.0 final'", "letters, digits"]),
        ({"rollout_tag": "1.0.1-cpu", "gxnb_registry": ""}, ["gxnb_registry", "host:port"]),
        ({"rollout_tag": "1.0.1-cpu", "gxnb_registry": "https://registry.example.org"},
         ["'https://registry.example.org'", "no scheme"]),
        ({"rollout_tag": "1.0.1-cpu", "rollout_source_image": "Not An Image"},
         ["rollout_source_image is 'Not An Image'", "gxnb/jupyterlab-ai:cpu"]),
        ({"rollout_tag": "1.0.1-cpu", "rollout_source_image": "gxnb/not-built-here:cpu"},
         ["'gxnb/not-built-here:cpu' is not on this controller's Docker engine"]),
    ],
    ids=["no-tag", "tag-with-space", "no-registry", "registry-with-scheme", "bad-source-image", "source-not-built"],
)
def test_bad_rollout_input_stops_in_the_first_step(extra, expected):
    result = playbook("rollout_image.yml", **extra)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    for words in expected:
        assert words in out, f"{words!r} not in:\n{out[-3000:]}"
    assert "Rollout 2/4" not in out and "changed=0" in out


def test_rollback_without_a_recorded_rollout_changes_nothing(tmp_path):
    result = playbook("rollback_image.yml", gxnb_rollout_state_file=str(tmp_path / "none.json"))
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "records no previous image: nothing to roll back to" in out, out[-3000:]
    assert "Rollback 2/3" not in out and "changed=0" in out
