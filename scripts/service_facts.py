#!/usr/bin/env python3
"""The service's facts as the playbooks see them, for the harness scripts and tests.

Asks Ansible once (`ansible -m debug` on the inventory's first Galaxy server: it templates the
variables with the playbook's group_vars and the inventory, and connects to nothing):

    scripts/service_facts.py [--inventory inventory/local] [--shell | --json]

--json (the default) prints the facts as load() returns them: strings, and lists of records
(RECORDS). --shell prints `GXNB_FACT_<NAME>=<value>` assignments for `eval` (scripts/lib.sh
does that); a list of records is one line per record there, its values in RECORDS' order.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
# Fact name -> the Ansible expression that defines it (ansible/group_vars/all, the inventory).
FACTS = {
    "image_repository": "gxnb_notebook_image_repository",
    "image_variant": "gxnb_notebook_image_variant",
    "registry": "gxnb_registry",
    "public_port": "gxnb_public_port",
    "public_http_port": "gxnb_public_http_port if gxnb_public_scheme == 'https' else ''",
    "bind_address": "gxnb_local_bind_address | default('127.0.0.1')",
    # The host engine's bridge (local deployments: the registry listens on its gateway).
    "host_bridge": "gxnb_local_host_bridge | default('')",
    "job_container_label": "gxnb_job_container_label",
    "job_pids_limit": "gxnb_job_pids_limit",
    # The job nodes' folder of their maintenance notice (ansible/drain_node.yml).
    "node_notice_dir": "gxnb_node_notice_dir",
    "notebook_port": "gxnb_notebook_port",
    "it_routing": "gxnb_it_routing",
    "session_limit_per_user": "gxnb_session_limit_per_user",
    "training_limit_per_user": "gxnb_training_limit_per_user",
    "training_queue_limit_per_user": "gxnb_training_queue_limit_per_user",
    "job_output_limit_gb": "gxnb_job_output_limit_gb",
    "job_log_max_mb": "gxnb_job_log_max_mb",
    "galaxy_cluster_http_port": "gxnb_galaxy_cluster_http_port",
    "session_reachable_services": "gxnb_session_reachable_services | join(' ')",
    # The job nodes' container bridge (its gateway is the node's own address there).
    "job_bridge": "docker_engine_bridge_ip | default('')",
    "gpu_users_group": "gxnb_gpu_users_group",
    "galaxy_internal_port": "gxnb_galaxy_internal_port",
    "downloads_location": "galaxy_x_accel_redirect_base",
    "slurmd_port": "gxnb_slurmd_port",
    # Each GPU's Slurm shards (0: GPUs are given whole only).
    "gpu_shards_per_gpu": "gxnb_gpu_shards_per_gpu",
    # GPU accounting (Slurm's, on the first Galaxy server) and the monthly GPU-hour quotas (JSON).
    "slurm_accounting": "gxnb_slurm_accounting",
    "slurm_accounting_port": "gxnb_slurm_accounting_port",
    "gpu_quota": "gxnb_gpu_quota | to_json",
    # Job nodes made on demand: the driver (none: all on) and the nodes it makes.
    "node_driver": "gxnb_node_driver",
    "nodes_on_demand": "slurm_power_save_nodes | join(' ')",
    "node_idle_minutes": "gxnb_node_idle_minutes",
    # The job nodes' range of published session ports, FROM-TO ('' : the nodes' own range).
    "session_ports": "(gxnb_session_ports['from'] ~ '-' ~ gxnb_session_ports['to']) if gxnb_session_ports else ''",
    # The exporters' ports (node, GPU, service) and where Prometheus listens on the first Galaxy server.
    "metrics_ports": "[gxnb_metrics_node_port, gxnb_metrics_gpu_port, gxnb_metrics_service_port] | join(' ')",
    "prometheus_listen": "gxnb_prometheus_listen",
    # Where Alertmanager sends firing alerts (a webhook's URL; '' for another kind of receiver).
    "alert_webhook": "gxnb_alert_receiver.url | default('')",
    # Local deployments: the containers' network.
    "local_network": "gxnb_local_network | default('')",
}
# Fact name -> (expression giving a list of records, the records' fields in shell order).
RECORDS = {
    # Local deployments: one container per host (ansible/filter_plugins/gxnb_topology.py).
    "local_containers": ("gxnb_local_containers | default([])", ("name", "address", "gpus", "kind")),
}


def load(inventory: str | os.PathLike = REPO / "inventory" / "local") -> dict[str, str | list[dict]]:
    terms = [f"'{name}': ({expr}) | string" for name, expr in FACTS.items()]
    terms += [f"'{name}': ({expr})" for name, (expr, _fields) in RECORDS.items()]
    expression = "{{ {" + ", ".join(terms) + "} }}"
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    ansible = pathlib.Path(sys.executable).parent / "ansible"
    result = subprocess.run(
        [str(ansible), "galaxy_servers[0]", "-i", str(inventory), "--playbook-dir", str(REPO / "ansible"),
         "-m", "ansible.builtin.debug", "-a", f"msg={expression}"],
        capture_output=True, text=True, env=env, cwd=REPO)
    try:
        # The JSON report, then whatever aggregate callbacks (profile_tasks) print after it.
        report, _ = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{"):])
        plays = report["plays"]
        host_results = plays[0]["tasks"][0]["hosts"]
        (outcome,) = host_results.values()
        facts = outcome["msg"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise SystemExit(f"service_facts: Ansible did not answer for {inventory} ({error}):\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}") from None
    if not isinstance(facts, dict):
        raise SystemExit(f"service_facts: could not template the facts for {inventory}: {facts}")
    return facts


def shell_value(name: str, value: str | list[dict]) -> str:
    """A fact as one shell word: a string as it is, records one line each (RECORDS' field order)."""
    if name not in RECORDS:
        return str(value)
    fields = RECORDS[name][1]
    return "\n".join(" ".join(str(record[field]) for field in fields) for record in value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default=str(REPO / "inventory" / "local"))
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--shell", action="store_true", help="GXNB_FACT_<NAME>=value lines for eval")
    form.add_argument("--json", action="store_true", help="a JSON object (the default)")
    args = parser.parse_args()
    facts = load(args.inventory)
    if args.shell:
        for name, value in facts.items():
            print(f"export GXNB_FACT_{name.upper()}={shlex.quote(shell_value(name, value))}")
    else:
        print(json.dumps(facts, indent=2))


if __name__ == "__main__":
    main()
