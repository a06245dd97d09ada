"""Secrets never reach the deployment's logs: the Ansible output of `make deploy-local` (kept by
`make test` in .deploy-local/test-results) holds none of the generated secrets nor the admin
API key, and neither do the processes' command lines nor the journals on the cluster's hosts."""

from __future__ import annotations

import pytest
import requests
import yaml

from tests.conftest import REPO
from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

STATE = REPO / ".deploy-local"


def secrets() -> dict[str, str]:
    values = yaml.safe_load((STATE / "secrets.yml").read_text())
    values["admin_api_key"] = galaxy_it.load_endpoints()["admin_api_key"]
    assert all(len(v) >= 16 for v in values.values()), "a secret too short to look for"
    return values


def test_deploy_logs_hold_no_secret():
    logs = sorted((STATE / "test-results").glob("deploy-*.log"))
    if not logs:
        pytest.skip("no deploy log kept (run through `make test`)")
    for log in logs:
        text = log.read_text(errors="replace")
        assert "PLAY RECAP" in text, f"{log} is not a deploy log"
        leaked = [name for name, value in secrets().items() if value in text]
        assert leaked == [], f"{log.name} shows {leaked}"


def test_no_process_on_the_cluster_has_a_secret_in_its_arguments():
    for host in local_cluster.containers():
        arguments = local_cluster.run(host, "ps", "-eo", "args", "--no-headers")
        leaked = [name for name, value in secrets().items() if value in arguments]
        assert leaked == [], f"{host}: {leaked} in a process's arguments"


def test_no_hosts_journal_holds_a_secret():
    """Ansible logs each module's arguments to the host's journal (the admin API key in a uri
    task's headers among them) unless told not to; Galaxy, nginx and Slurm log there too."""
    values = secrets()
    for host in local_cluster.containers():
        # The secrets go in on stdin (grep's patterns), never in an argument.
        found = local_cluster.run(host, "bash", "-c", "journalctl --no-pager -o cat | grep -oFf /dev/stdin | sort -u",
                                  check=False, timeout=300, stdin="\n".join(values.values()) + "\n")  # fmt: skip
        leaked = sorted(name for name, value in values.items() if value in found.split())
        assert leaked == [], f"{host}'s journal shows {leaked}"


def test_galaxy_encodes_ids_with_the_deployments_own_secret():
    """Galaxy's default id_secret is public: with it anyone could forge the ids in its URLs."""
    from galaxy.security.idencoding import IdEncodingHelper

    encoded = galaxy_it.admin_instance().users.get_current_user()["id"]
    ours = IdEncodingHelper(id_secret=secrets()["galaxy_id_secret"])
    default = IdEncodingHelper(id_secret="USING THE DEFAULT IS NOT SECURE!")
    decoded = ours.decode_id(encoded)
    assert ours.encode_id(decoded) == encoded
    assert default.encode_id(decoded) != encoded


def test_the_bootstrap_key_only_bootstraps():
    """After the deploy Galaxy refuses the bootstrap key and its configuration no longer holds
    it; the admin's own key is kept on the Galaxy server for root only."""
    endpoints = galaxy_it.load_endpoints()
    answer = requests.get(f"{endpoints['galaxy_url']}/api/users/current", timeout=30,
                          headers={"x-api-key": secrets()["galaxy_bootstrap_admin_api_key"]})  # fmt: skip
    assert answer.status_code in (401, 403), (answer.status_code, answer.text[:300])
    head = local_cluster.head()
    config = local_cluster.run(head, "cat", "/srv/galaxy/config/galaxy.yml")
    assert "bootstrap_admin_api_key" not in config
    assert local_cluster.run(head, "stat", "-c", "%U %a", "/etc/galaxy-admin/api_key").split() == ["root", "600"]
    assert requests.get(f"{endpoints['galaxy_url']}/api/users/current", timeout=30,
                        headers={"x-api-key": endpoints["admin_api_key"]}).json()["is_admin"]  # fmt: skip
