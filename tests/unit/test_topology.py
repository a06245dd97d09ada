"""The cluster's shape (ansible/filter_plugins/gxnb_topology.py): slurm.conf's node lines,
gres.conf's GPU lines and the NFS export's clients, from the hosts' variables; and the same
through Ansible on the inventories the repository ships."""

from __future__ import annotations

import json

import pytest

from tests.support.ansible_run import ansible_adhoc, filter_plugin, output

topology = filter_plugin("gxnb_topology")


def node(name, address, gpus=0, cpus=4, memory=7000, **extra):
    return {"inventory_hostname": name, "inventory_hostname_short": name.split(".")[0],
            "gxnb_internal_address": address, "gxnb_gpu_count": gpus, "gxnb_slurm_cpus": str(cpus),
            "gxnb_slurm_memory_mb": memory, **extra}


def test_a_node_line_per_job_node_with_its_gpus_as_gres():
    nodes = [node("gpu01.example.org", "10.0.0.11", gpus=2), node("cpu01.example.org", "10.0.0.12", gpus="0")]
    assert topology.gxnb_slurm_nodes(nodes) == [
        {"name": "gpu01", "NodeAddr": "10.0.0.11", "CPUs": 4, "RealMemory": 7000, "State": "UNKNOWN", "Gres": "gpu:2"},
        {"name": "cpu01", "NodeAddr": "10.0.0.12", "CPUs": 4, "RealMemory": 7000, "State": "UNKNOWN"},
    ]


def test_no_job_nodes_no_lines():
    assert topology.gxnb_slurm_nodes([]) == [] and topology.gxnb_slurm_gres([]) == []


def test_gres_lines_use_nvml_indices_where_known_and_never_more_than_the_count():
    # NVML says the node's GPUs are 1 and 3 (0 and 2 taken out by the site); the inventory promises 2.
    known = node("gpu01", "10.0.0.11", gpus=2, ansible_local={"gpu": {"devices": [{"index": 1}, {"index": 3}]}})
    # More devices than promised: only the promised number become GRES.
    more = node("gpu02", "10.0.0.12", gpus=1, ansible_local={"gpu": {"devices": [{"index": 0}, {"index": 1}]}})
    # No facts yet (first run, or a CPU node): 0..count-1.
    unknown = node("gpu03", "10.0.0.13", gpus=2, ansible_local={})
    assert topology.gxnb_slurm_gres([known, more, unknown]) == [
        {"NodeName": "gpu01", "Name": "gpu", "File": "/dev/nvidia1"},
        {"NodeName": "gpu01", "Name": "gpu", "File": "/dev/nvidia3"},
        {"NodeName": "gpu02", "Name": "gpu", "File": "/dev/nvidia0"},
        {"NodeName": "gpu03", "Name": "gpu", "File": "/dev/nvidia0"},
        {"NodeName": "gpu03", "Name": "gpu", "File": "/dev/nvidia1"},
    ]


def test_a_gpu_count_that_is_not_a_number_names_the_host():
    with pytest.raises(Exception, match=r"gpu01: gxnb_gpu_count is 'two'; a whole number"):
        topology.gxnb_slurm_nodes([node("gpu01", "10.0.0.11", gpus="two")])


def test_shared_gpus_are_offered_as_shards_bound_to_their_gpu():
    nodes = [node("gpu01", "10.0.0.11", gpus=2), node("cpu01", "10.0.0.12")]
    assert [n.get("Gres") for n in topology.gxnb_slurm_nodes(nodes, 4)] == ["gpu:2,shard:8", None]
    assert topology.gxnb_slurm_gres(nodes, "4") == [
        {"NodeName": "gpu01", "Name": "gpu", "File": "/dev/nvidia0"},
        {"NodeName": "gpu01", "Name": "gpu", "File": "/dev/nvidia1"},
        {"NodeName": "gpu01", "Name": "shard", "Count": 4, "File": "/dev/nvidia0"},
        {"NodeName": "gpu01", "Name": "shard", "Count": 4, "File": "/dev/nvidia1"},
    ]
    # 0: whole GPUs only, as without the setting
    assert topology.gxnb_slurm_gres(nodes, 0) == topology.gxnb_slurm_gres(nodes)


@pytest.mark.parametrize("bad", ["half", -1, 65, None])
def test_a_shard_count_that_is_not_0_to_64_is_refused(bad):
    with pytest.raises(Exception, match="gxnb_gpu_shards_per_gpu is .*a whole number 0-64"):
        topology.gxnb_slurm_gres([node("gpu01", "10.0.0.11", gpus=1)], bad)


def test_nfs_clients_each_address_once_in_inventory_order():
    hosts = [node("galaxy2", "10.0.0.3"), node("gpu01", "10.0.0.11"), node("gpu01-alias", "10.0.0.11")]
    assert topology.gxnb_nfs_clients(hosts) == ["10.0.0.3", "10.0.0.11"]


def test_an_nfs_client_without_an_address_is_named():
    with pytest.raises(Exception, match="gpu01: gxnb_internal_address is empty"):
        topology.gxnb_nfs_clients([node("gpu01", "")])


def test_a_node_a_cloud_makes_is_a_cloud_node_without_an_address():
    nodes = [node("gpu-1", "10.0.0.11", gpus=1), node("gpu-2", "gpu-2", gpus=4, cpus=48, memory=176947)]
    assert topology.gxnb_slurm_nodes(nodes, 0, ["gpu-2"]) == [
        {"name": "gpu-1", "NodeAddr": "10.0.0.11", "CPUs": 4, "RealMemory": 7000, "State": "UNKNOWN", "Gres": "gpu:1"},
        {"name": "gpu-2", "CPUs": 48, "RealMemory": 176947, "State": "CLOUD", "Gres": "gpu:4"},
    ]


def test_galaxys_folder_is_exported_to_the_network_of_the_nodes_a_cloud_makes():
    hosts = [node("gpu-1", "10.0.0.11"), node("gpu-2", "gpu-2", gxnb_internal_network="10.0.0.0/24")]
    assert topology.gxnb_nfs_clients(hosts) == ["10.0.0.11", "10.0.0.0/24"]


def test_the_nodes_made_on_demand_by_driver():
    hosts = [node("n1", "10.0.0.11"), node("n2", "10.0.0.12"),
             node("n3", "n3", gxnb_node_driver_node_settings={"instance_type": "g5.12xlarge"})]
    assert topology.gxnb_power_save_nodes(hosts, "none", 0, ["n3"]) == {}
    # local: every node after the first gxnb_nodes_min
    assert topology.gxnb_power_save_nodes(hosts, "local", 1) == {"n2": {}, "n3": {"instance_type": "g5.12xlarge"}}
    # a cloud: the nodes it makes (cloud_job_nodes) only; the ones terraform made stay on
    assert topology.gxnb_power_save_nodes(hosts, "aws", 1, ["n3"]) == {"n3": {"instance_type": "g5.12xlarge"}}


def ansible_value(inventory: str, host: str, variable: str, *extra: str):
    result = ansible_adhoc(host, "-m", "ansible.builtin.debug", "-a", f"var={variable}", *extra, inventory=inventory)
    assert result.returncode == 0, output(result)
    return json.loads(result.stdout[result.stdout.index("{"):])[variable]


def test_the_local_cluster_shape_through_the_playbooks_variables():
    # The local inventory shares each GPU as 4 shards.
    nodes = ansible_value("inventory/local", "gxnb-local-head", "slurm_nodes")
    assert [(n["name"], n["NodeAddr"], n.get("Gres")) for n in nodes] == [
        ("gxnb-local-node1", "172.30.0.11", "gpu:2,shard:8"),
        ("gxnb-local-node2", "172.30.0.12", "gpu:2,shard:8")]
    gres = ansible_value("inventory/local", "gxnb-local-head", "slurm_gres_config")
    assert [(g["NodeName"], g["Name"], g["File"]) for g in gres if g["NodeName"] == "gxnb-local-node1"] == [
        ("gxnb-local-node1", "gpu", "/dev/nvidia0"), ("gxnb-local-node1", "gpu", "/dev/nvidia1"),
        ("gxnb-local-node1", "shard", "/dev/nvidia0"), ("gxnb-local-node1", "shard", "/dev/nvidia1")]
    assert [g["File"] for g in gres if g["NodeName"] == "gxnb-local-node2" and g["Name"] == "gpu"] == [
        "/dev/nvidia0", "/dev/nvidia1"]


def test_whole_gpus_only_where_the_inventory_does_not_share_them():
    nodes = ansible_value("inventory/local", "gxnb-local-head", "slurm_nodes", "-e", "gxnb_gpu_shards_per_gpu=0")
    assert [n["Gres"] for n in nodes] == ["gpu:2", "gpu:2"]


def test_the_production_example_exports_galaxys_folder_to_every_job_node():
    exports = ansible_value("inventory/production", "galaxy.example.org", "nfs_exports",
                            "-e", "gxnb_shared_storage=galaxy_server")
    assert exports[0]["path"] == "/srv/galaxy"
    job_nodes = ansible_value("inventory/production", "galaxy.example.org", "groups['job_nodes']")
    assert len(exports[0]["clients"]) == len(job_nodes) >= 2
