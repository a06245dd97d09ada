"""The cluster's shape from the inventory, in Python (tests/unit/test_topology.py): Slurm's node
and GRES lines, the hosts Galaxy's folder is shared with, and the local cluster's containers.
ansible/group_vars/all/roles.yml hands each filter the hosts' variables:

    groups['job_nodes'] | map('extract', hostvars) | list | gxnb_slurm_nodes
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def _whole(node: Mapping[str, Any], name: str, default: Any = None) -> int:
    value = node.get(name, default)
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"{_name(node)}: {name} is {value!r}; a whole number is allowed") from None


def _name(node: Mapping[str, Any]) -> str:
    return str(node.get("inventory_hostname", "?"))


def _short_name(node: Mapping[str, Any]) -> str:
    return str(node.get("inventory_hostname_short") or _name(node).split(".", 1)[0])


def _gpu_indices(node: Mapping[str, Any]) -> list[int]:
    """The node's GPU numbers: NVML's indices (gpu_facts) where known, else 0..count-1; count at most."""
    count = _whole(node, "gxnb_gpu_count", 0)
    local = node.get("ansible_local") or {}
    gpu = local.get("gpu") if isinstance(local, Mapping) else None
    devices = (gpu.get("devices") if isinstance(gpu, Mapping) else None) or []
    indices = [int(device["index"]) for device in devices if isinstance(device, Mapping) and "index" in device]
    return (indices or list(range(count)))[:count]


def _shards(shards_per_gpu: Any) -> int:
    try:
        shards = int(str(shards_per_gpu).strip())
    except (TypeError, ValueError):
        shards = -1
    if not 0 <= shards <= 64:
        raise AnsibleFilterError(f"gxnb_gpu_shards_per_gpu is {shards_per_gpu!r}; a whole number 0-64 is allowed "
                                 "(0: whole GPUs only)")
    return shards


def gxnb_slurm_nodes(job_nodes: Iterable[Mapping[str, Any]], shards_per_gpu: Any = 0,
                     cloud_nodes: Iterable[str] = ()) -> list[dict[str, Any]]:  # fmt: skip
    """One slurm.conf NodeName entry per job node: address, CPUs, memory, its GPUs as GRES (and,
    with shards_per_gpu, each GPU as that many shards: gres/shard, a share of one GPU). A node a
    cloud makes on demand (cloud_nodes, by inventory name) is State=CLOUD without an address:
    slurmctld learns it when the node registers (SlurmctldParameters=cloud_reg_addrs)."""
    shards = _shards(shards_per_gpu)
    in_cloud = set(cloud_nodes or ())
    nodes = []
    for node in job_nodes:
        cloud = _name(node) in in_cloud
        entry = {"name": _short_name(node)}
        if not cloud:
            entry["NodeAddr"] = str(node.get("gxnb_internal_address") or "")
        entry.update({
            "CPUs": _whole(node, "gxnb_slurm_cpus"),
            "RealMemory": _whole(node, "gxnb_slurm_memory_mb"),
            "State": "CLOUD" if cloud else "UNKNOWN",
        })
        gpus = _whole(node, "gxnb_gpu_count", 0)
        if gpus > 0:
            entry["Gres"] = f"gpu:{gpus}" + (f",shard:{gpus * shards}" if shards else "")
        nodes.append(entry)
    return nodes


def gxnb_slurm_gres(job_nodes: Iterable[Mapping[str, Any]], shards_per_gpu: Any = 0) -> list[dict[str, Any]]:
    """One gres.conf line per GPU: /dev/nvidia<N> for each of the node's GPU numbers; with
    shards_per_gpu, one more per GPU binding that many shards to it: a job given shards is given
    that GPU's device, and Slurm keeps a job's shards on one GPU, so that a job asking for all of a
    GPU's shards has that GPU to itself (Slurm 22.05 does not keep --gres=gpu jobs off a GPU whose
    shards are partly in use: where GPUs are shared, every GPU job asks for shards)."""
    shards = _shards(shards_per_gpu)
    lines: list[dict[str, Any]] = []
    for node in job_nodes:
        indices = _gpu_indices(node)
        lines += [{"NodeName": _short_name(node), "Name": "gpu", "File": f"/dev/nvidia{i}"} for i in indices]
        if shards:
            lines += [{"NodeName": _short_name(node), "Name": "shard", "Count": shards, "File": f"/dev/nvidia{i}"}
                      for i in indices]
    return lines


def gxnb_nfs_clients(hosts: Iterable[Mapping[str, Any]]) -> list[str]:
    """The internal addresses Galaxy's folder is exported to, each once, in inventory order; for a
    node a cloud makes on demand, whose address is not known beforehand, its network
    (gxnb_internal_network, the subnet Terraform makes it in)."""
    addresses: list[str] = []
    for host in hosts:
        address = str(host.get("gxnb_internal_network") or host.get("gxnb_internal_address") or "")
        if not address:
            raise AnsibleFilterError(f"{_name(host)}: gxnb_internal_address is empty; the NFS export needs "
                                     "the address the host mounts Galaxy's folder from")
        if address not in addresses:
            addresses.append(address)
    return addresses


def gxnb_power_save_nodes(job_nodes: Iterable[Mapping[str, Any]], driver: Any, nodes_min: Any,
                          cloud_nodes: Iterable[str] = ()) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The job nodes made on demand, by Slurm name, each with its own driver settings (its
    instance type or flavor: gxnb_node_driver_node_settings). With a cloud driver, the nodes the
    cloud makes (cloud_nodes: the inventory's cloud_job_nodes, which Terraform writes); with the
    local one, every job node after the first nodes_min; with none, no node."""
    hosts = list(job_nodes)
    if driver == "none":
        return {}
    if driver in ("aws", "openstack"):
        chosen = [host for host in hosts if _name(host) in set(cloud_nodes or ())]
    else:
        chosen = hosts[_whole({"gxnb_nodes_min": nodes_min}, "gxnb_nodes_min"):]
    return {_short_name(host): dict(host.get("gxnb_node_driver_node_settings") or {}) for host in chosen}


def gxnb_metrics_targets(hosts_by_kind: Mapping[str, Iterable[str]], hostvars: Mapping[str, Any],
                         cloud_nodes: Iterable[str] = ()) -> dict[str, list[dict[str, str]]]:  # fmt: skip
    """What Prometheus scrapes, by exporter kind: each host once, by its short name (the label
    Slurm's metrics carry too) and internal address. A node a cloud makes on demand has no
    address to scrape yet: it is left out."""
    skipped = set(cloud_nodes or ())
    targets: dict[str, list[dict[str, str]]] = {}
    for kind, hosts in hosts_by_kind.items():
        seen: list[str] = []
        targets[kind] = []
        for host in hosts:
            if host in skipped or host in seen:
                continue
            seen.append(host)
            variables = hostvars[host]
            targets[kind].append({"name": str(variables.get("inventory_hostname_short") or host.split(".")[0]),
                                  "address": str(variables.get("gxnb_internal_address") or host)})  # fmt: skip
    return targets


def gxnb_local_containers(hosts: Iterable[Mapping[str, Any]], galaxy_servers: Iterable[str]) -> list[dict[str, Any]]:
    """The local cluster's containers (scripts/start-local-cluster.sh), one per host: name,
    address, fake GPUs, and kind - 'head' for a Galaxy server, else 'node'."""
    heads = set(galaxy_servers or [])
    return [
        {"name": _name(host), "address": str(host.get("gxnb_internal_address") or ""),
         "gpus": _whole(host, "gxnb_gpu_count", 0), "kind": "head" if _name(host) in heads else "node"}
        for host in hosts
    ]


class FilterModule:
    def filters(self):
        return {"gxnb_slurm_nodes": gxnb_slurm_nodes, "gxnb_slurm_gres": gxnb_slurm_gres,
                "gxnb_power_save_nodes": gxnb_power_save_nodes, "gxnb_metrics_targets": gxnb_metrics_targets,
                "gxnb_nfs_clients": gxnb_nfs_clients, "gxnb_local_containers": gxnb_local_containers}
