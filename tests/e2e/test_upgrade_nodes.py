"""An operator upgrades the job nodes' GPU stack with ansible/upgrade_nodes.yml while the cluster
serves: one node at a time is drained, upgraded (here the Docker engine, reinstalled: the same
package), checked and returned to service. A node whose upgrade fails stays drained with the reason,
and the run stops there. The GPU steps (driver, toolkit, NVML check) need GPU nodes; none here."""

from __future__ import annotations

import re
import threading

import pytest

from tests.support import local_cluster
from tests.support.ansible_run import ansible_playbook

pytestmark = pytest.mark.e2e

PLAYBOOK = "ansible/upgrade_nodes.yml"


class SlurmStates:
    """Which job nodes Slurm has drained, sampled every second while a run goes on."""

    def __init__(self):
        self.samples: list[set[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(1):
            lines = local_cluster.slurm("sinfo", "-h", "-N", "-o", "%N %T").split("\n")
            self.samples.append({line.split()[0] for line in lines if line.strip() and "drain" in line.split()[1]})

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def ever_drained(self) -> set[str]:
        return set().union(*self.samples)


def docker_started_at(node: str) -> str:
    return local_cluster.run(node, "systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "docker").strip()


def test_nodes_are_upgraded_one_at_a_time_and_a_failed_one_stops_the_run_drained():
    local_cluster.all_nodes_up()
    first, second = local_cluster.job_nodes()
    second_docker = docker_started_at(second)
    # A package that cannot be upgraded (a broken mirror would do the same) on the first node.
    with SlurmStates() as states:
        failed = ansible_playbook(PLAYBOOK, extra_vars={"docker_engine_package": "no-such-docker-package",
                                                        "upgrade_wait": "30s"}, timeout=600)  # fmt: skip
    try:
        said = " ".join(failed.stdout.split())
        assert failed.returncode != 0, said[-3000:]
        failed_at = "the upgrade failed at 'Docker engine and its Python bindings"
        assert f"{first}: {failed_at}" in said, said[-3000:]
        assert "The node stays drained" in said
        assert "DRAIN" in local_cluster.slurm_node_states(first)
        reason = local_cluster.slurm("sinfo", "-h", "-n", first, "-o", "%E").strip()
        assert reason.startswith("upgrade failed: Docker engine and its Python bindings"), reason
        # The run stopped at the first node: the second was never drained, its engine untouched.
        assert not re.search(rf"^{second}\s+:", failed.stdout, re.MULTILINE), failed.stdout[-2000:]
        assert states.ever_drained() == {first}, states.samples
        assert docker_started_at(second) == second_docker

        # The cause fixed, the rerun upgrades every node, one at a time.
        before = {node: docker_started_at(node) for node in (first, second)}
        with SlurmStates() as states:
            upgraded = ansible_playbook(PLAYBOOK, extra_vars={"upgrade_reinstall": True, "upgrade_wait": "30s"},
                                        timeout=900)  # fmt: skip
        assert upgraded.returncode == 0, upgraded.stdout[-4000:]
        assert upgraded.stdout.count("PLAY [Upgrade the job nodes one at a time]") == 2  # a batch a node
        assert all(f"{node}: back in service" in upgraded.stdout for node in (first, second)), upgraded.stdout[-3000:]
        assert all(len(drained) <= 1 for drained in states.samples), states.samples  # never both at once
        assert states.ever_drained() == {first, second}, states.samples
        for node in (first, second):
            assert docker_started_at(node) != before[node]  # the engine was reinstalled and restarted
            assert local_cluster.slurm_node_states(node).isdisjoint({"DRAIN", "DOWN"})
    finally:
        for node in (first, second):
            if "DRAIN" in local_cluster.slurm_node_states(node):
                local_cluster.slurm("scontrol", "update", f"NodeName={node}", "State=RESUME")
