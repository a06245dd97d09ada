"""A host expected to have GPUs with none working fails with a message naming the host and the
variable; a host with enough GPUs passes. Runs the role's check on the controller."""

from __future__ import annotations

import json

from tests.support.ansible_run import ansible_playbook

PLAY = """
- hosts: gpu-node-1,gpu-node-2
  gather_facts: false
  connection: local
  tasks:
    - ansible.builtin.include_role:
        name: gpu_facts
        tasks_from: check
      vars:
        gpu_facts_expected_count: 1
        ansible_local: >-
          {{ lookup('ansible.builtin.env', 'FACTS_' ~ inventory_hostname | replace('-', '_')) | from_json }}
"""


def test_missing_gpu_fails_only_that_host(tmp_path):
    playbook = tmp_path / "check.yml"
    playbook.write_text(PLAY)
    # The role comes from the repository's roles folder (ansible.cfg's roles_path).
    env = dict(FACTS_gpu_node_1=json.dumps({"gpu": {"count": 0, "error": "NVML not usable: Driver Not Loaded"}}),
               FACTS_gpu_node_2=json.dumps({"gpu": {"count": 1, "devices": [{"name": "NVIDIA H200"}]}}))
    result = ansible_playbook(playbook, inventory="gpu-node-1,gpu-node-2,", env=env, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "gpu-node-1: gpu_facts_expected_count=1 GPU(s) expected, 0 working" in out
    assert "Driver Not Loaded" in out
    assert "gpu-node-2: 1 GPU(s) ['NVIDIA H200']" in out
    assert "gpu-node-2                 : ok=" in out and "failed=0" in out.split("gpu-node-2")[-1]
