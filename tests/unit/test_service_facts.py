"""The harness scripts read the service's facts from the Ansible variables, not copies of them."""

from __future__ import annotations

import subprocess

import pytest

from scripts import service_facts
from tests.conftest import REPO


def test_local_facts_come_from_the_inventory_and_the_shared_defaults():
    facts = service_facts.load(REPO / "inventory" / "local")
    assert facts["image_repository"] == "gxnb/jupyterlab-ai"  # ansible/group_vars/all/service.yml
    assert facts["image_variant"] == "cpu"  # inventory/local overrides nothing here: both say cpu
    bridge_gateway = facts["host_bridge"].split("/")[0]
    assert facts["registry"] == f"{bridge_gateway}:5000", "the local registry listens on the host bridge's gateway"
    # The first job node stays on (gxnb_nodes_min: 1), the second is made on demand.
    assert (facts["node_driver"], facts["nodes_on_demand"]) == ("local", "gxnb-local-node2")


def test_the_local_containers_are_records_and_one_line_each_for_the_shell():
    facts = service_facts.load(REPO / "inventory" / "local")
    assert facts["local_containers"][:2] == [
        {"name": "gxnb-local-head", "address": "172.30.0.10", "gpus": 0, "kind": "head"},
        {"name": "gxnb-local-node1", "address": "172.30.0.11", "gpus": 2, "kind": "node"},
    ]
    script = (f"source {REPO}/scripts/lib.sh; gxnb_load_facts; "
              'while read -r name address gpus kind; do echo "$name|$address|$gpus|$kind"; done '
              '<<< "$GXNB_FACT_LOCAL_CONTAINERS"')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "GXNB_INVENTORY": str(REPO / "inventory" / "local")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-3:] == ["gxnb-local-head|172.30.0.10|0|head", "gxnb-local-node1|172.30.0.11|2|node",
                                            "gxnb-local-node2|172.30.0.12|2|node"]


def test_production_facts_follow_that_inventory():
    facts = service_facts.load(REPO / "inventory" / "production")
    assert facts["image_repository"].startswith("registry.example.org/")
    assert facts["public_port"] == "443"
    assert facts["node_driver"] == "none"


def test_an_inventory_override_reaches_the_scripts(tmp_path):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    gxnb_service:\n      children:\n        galaxy_servers:\n"
        "          hosts:\n            g1: {ansible_connection: local}\n"
    )
    (inventory / "group_vars" / "gxnb_service.yml").write_text("gxnb_notebook_image_repository: example.org/lab\n")
    script = f'source {REPO}/scripts/lib.sh; gxnb_load_facts; echo "$GXNB_FACT_IMAGE_REPOSITORY"'
    out = subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin", "GXNB_INVENTORY": str(inventory)},
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "example.org/lab"


def test_an_inventory_without_a_galaxy_server_is_a_clear_error(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    lonely: {}\n")
    with pytest.raises(SystemExit, match="did not answer"):
        service_facts.load(inventory)
