"""Job nodes made on demand (Slurm's power saving): site.yml's preflight checks the settings
here, in Python (tests/unit/test_nodes_on_demand_settings.py), and stops with every bad value
named before anything changes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DRIVERS = ("none", "local", "aws", "openstack")
# What each driver cannot do without (roles/slurm/files/gxnb_nodes/<driver>.py).
REQUIRED_SETTINGS = {
    "local": ("socket",),
    # munge_key_store: where a new node fetches the munge key at boot (Terraform's modules set it).
    "aws": ("region", "launch_template", "cluster_name", "munge_key_store"),
    "openstack": ("cloud", "image", "flavor", "network", "cluster_name", "munge_key_store"),
}
CREDENTIAL_KEY = re.compile(r"secret|password|passwd|token|access_key|credential|private_key", re.IGNORECASE)


def _whole(value: Any) -> int | None:
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[0-9]+", text) else None


CLOUD_DRIVERS = ("aws", "openstack")


def gxnb_nodes_on_demand_errors(driver: Any, nodes_min: Any, idle_minutes: Any, resume_timeout_s: Any,
                                driver_settings: Any, job_nodes: int, cloud_nodes: Any = (),
                                job_node_names: Any = ()) -> list[str]:  # fmt: skip
    """Every problem with the settings, each naming the setting, its value and what is allowed.
    cloud_nodes: the inventory's cloud_job_nodes (a cloud makes them; Terraform's inventory lists
    them), which must be job nodes and need a cloud driver, which in turn needs them."""
    errors = []
    if driver not in DRIVERS:
        return [f"gxnb_node_driver is {driver!r}; allowed: {', '.join(DRIVERS)}"]
    cloud_nodes = list(cloud_nodes or [])
    strays = [node for node in cloud_nodes if job_node_names and node not in job_node_names]
    if strays:
        errors.append(f"cloud_job_nodes has {', '.join(strays)}, which are not in job_nodes; a node the cloud "
                      "makes on demand is a job node too")  # fmt: skip
    if cloud_nodes and driver not in CLOUD_DRIVERS:
        errors.append(f"cloud_job_nodes lists {', '.join(cloud_nodes)} (nodes a cloud makes on demand) but "
                      f"gxnb_node_driver is {driver!r}; allowed with them: {', '.join(CLOUD_DRIVERS)}")  # fmt: skip
    if driver in CLOUD_DRIVERS and not cloud_nodes:
        errors.append(f"gxnb_node_driver is {driver!r} but the inventory's cloud_job_nodes group is empty; list "
                      "there the job nodes the cloud makes on demand (Terraform's inventory does, for nodes "
                      "with on_demand = true)")  # fmt: skip
    minimum = _whole(nodes_min)
    if minimum is None or minimum > job_nodes:
        errors.append(f"gxnb_nodes_min is {nodes_min!r}; a whole number 0-{job_nodes} is allowed (the job nodes "
                      f"that stay on; the inventory has {job_nodes} job node(s), the most there can be)")  # fmt: skip
    if driver == "none":
        return errors
    idle = _whole(idle_minutes)
    if idle is None or not 1 <= idle <= 10080:
        errors.append(f"gxnb_node_idle_minutes is {idle_minutes!r}; a whole number of minutes 1-10080 is allowed")
    timeout = _whole(resume_timeout_s)
    if timeout is None or not 30 <= timeout <= 3600:
        errors.append(f"gxnb_node_resume_timeout_s is {resume_timeout_s!r}; a whole number of seconds 30-3600 is "
                      "allowed (how long a node may take to start and join Slurm)")  # fmt: skip
    if not isinstance(driver_settings, Mapping):
        return errors + [f"gxnb_node_driver_settings is {driver_settings!r}; a mapping of the {driver} driver's "
                         f"settings is allowed ({', '.join(REQUIRED_SETTINGS[driver])})"]  # fmt: skip
    for key in driver_settings:
        if CREDENTIAL_KEY.search(str(key)):
            errors.append(f"gxnb_node_driver_settings.{key}: credentials never go into the settings (they would "
                          "be written into slurm.conf's folder); the driver takes them from the cloud itself: "
                          "an instance profile (aws) or clouds.yaml's application credential (openstack)")  # fmt: skip
    missing = [key for key in REQUIRED_SETTINGS[driver] if not driver_settings.get(key)]
    if missing:
        errors.append(f"gxnb_node_driver_settings lacks {', '.join(missing)} for the {driver} driver "
                      f"(it needs {', '.join(REQUIRED_SETTINGS[driver])})")  # fmt: skip
    if driver == "local" and driver_settings.get("socket") and not str(driver_settings["socket"]).startswith("/"):
        errors.append(f"gxnb_node_driver_settings.socket is {driver_settings['socket']!r}; an absolute path is allowed")
    return errors


class FilterModule:
    def filters(self):
        return {"gxnb_nodes_on_demand_errors": gxnb_nodes_on_demand_errors}
