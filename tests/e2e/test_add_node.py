"""An operator adds a job node to the running cluster: the node goes into the inventory and
`ansible-playbook site.yml --limit <node>,galaxy_servers` runs. Slurm knows the node, the job nodes
outside the run get the same slurm.conf, a session running meanwhile keeps answering, and launches
land on the new node."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from tests.support import galaxy_it, local_cluster
from tests.support.ansible_run import REPO, ansible_playbook

pytestmark = pytest.mark.e2e

SECRETS = REPO / ".deploy-local" / "secrets.yml"


def site(inventory, limit: str):
    return ansible_playbook("ansible/site.yml", "--limit", limit, inventory=inventory,
                            extra_vars=[f"@{SECRETS}"], timeout=900)  # fmt: skip


def inventory_without(node: str, folder):
    """A copy of the local inventory (its group_vars too) that has no `node`."""
    shutil.copytree(REPO / "inventory" / "local", folder)
    hosts = yaml.safe_load((folder / "hosts.yml").read_text())
    del hosts["all"]["hosts"][node]
    del hosts["all"]["children"]["job_nodes"]["hosts"][node]
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return folder


def slurm_nodes() -> set[str]:
    return set(local_cluster.slurm("sinfo", "-h", "-N", "-o", "%N").split())


def test_a_node_added_to_the_inventory_joins_while_a_session_runs(tmp_path):
    local_cluster.all_nodes_up()
    first, new = local_cluster.job_nodes()
    head = local_cluster.head()
    # The cluster before: the new node is not in the inventory, and its machine is up with slurmd
    # stopped (a machine Terraform has just made).
    smaller = inventory_without(new, tmp_path / "inventory")
    added = None
    try:
        before = site(smaller, "galaxy_servers")
        assert before.returncode == 0, before.stdout[-4000:]
        local_cluster.run(new, "systemctl", "stop", "slurmd")
        assert slurm_nodes() == {first}, slurm_nodes()
        admin = galaxy_it.admin_instance()
        session = galaxy_it.new_users_session()
        assert local_cluster.node_of(admin, session.job_id) == first

        added = site("inventory/local", f"{new},galaxy_servers")
        assert added.returncode == 0, added.stdout[-4000:]
        # The run was the new node's and the head's only.
        assert not re.search(rf"^{first}\s+: ok=", added.stdout, re.MULTILINE), added.stdout[-2000:]
        assert slurm_nodes() == {first, new}, slurm_nodes()
        local_cluster.wait_for_node_state(new, {"idle", "mixed"}, timeout=120)
        # The job node outside the run has the controller's configuration (a stale one would make
        # slurmctld warn and its slurmd not know the new node).
        config = "/etc/slurm/slurm.conf"
        assert local_cluster.run(first, "cat", config) == local_cluster.run(head, "cat", config)
        assert f"NodeName={new} " in local_cluster.run(first, "cat", config)

        # The session started before the change still answers, and its job still runs.
        assert session.run_code("print(6 * 7)").strip() == "42"
        assert session.galaxy.jobs.show_job(session.job_id)["state"] == "running"
        # A launch with the first node full (drained here) lands on the new one.
        with local_cluster.drained(first):
            other = galaxy_it.new_users_session()
        try:
            assert local_cluster.node_of(admin, other.job_id) == new
            assert other.run_code("print(6 * 7)").strip() == "42"
        finally:
            other.galaxy.jobs.cancel_job(other.job_id)
        session.galaxy.jobs.cancel_job(session.job_id)
    finally:
        if added is None or added.returncode != 0:  # the cluster as the other tests expect it
            site("inventory/local", f"{new},galaxy_servers")
