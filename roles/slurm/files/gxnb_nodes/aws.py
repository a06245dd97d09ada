"""gxnb-nodes' EC2 driver: a job node is one instance from a launch template (image, security
groups, instance profile, disks are the template's), tagged with its node and cluster names.

Settings (the "aws" section): region, launch_template (lt-... or a name), cluster_name and
controller_address are required; launch_template_version ("$Latest"), subnet_id, tags (added
to each instance) and endpoint_url (a VPC endpoint) are optional. A node's own settings may set
instance_type and subnet_id. Credentials are boto3's default chain (the controller's instance
profile), never these settings.

The user data is JSON with the node's name, the controller's address, the cluster's name and
munge_key_store (the Secrets Manager secret Terraform makes without a value): the node's boot
unit (gxnb-node-join) fetches the munge key from there with its instance profile.
"""

from __future__ import annotations

import re
import time
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from . import DriverError, check_cloud_settings, user_data

REQUIRED = ("region", "launch_template", "cluster_name", "controller_address")
LIVE_STATES = ["pending", "running"]
# Every state but terminated: shutting-down is left out as it is on its way already.
REMOVABLE_STATES = ["pending", "running", "stopping", "stopped"]
CREDENTIALS_FROM = (
    "the driver uses boto3's default credential chain: the controller's instance profile (or "
    "AWS_PROFILE / the environment of slurmctld's user)"
)
AWS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


def explain(error: Exception) -> str:
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return f"{error}: {CREDENTIALS_FROM}"
    return str(error)


class Driver:
    # Nodes asked for together are launched together (boto3's clients are thread-safe).
    parallel_resumes = 8
    # Bounded: a resume waits for its node's address.
    address_wait_s = 60.0
    poll_s = 2.0

    def __init__(self, settings: dict[str, Any], nodes: dict[str, dict[str, Any]]):
        check_cloud_settings("aws", settings, nodes, REQUIRED, CREDENTIALS_FROM)
        if not isinstance(settings.get("tags") or {}, dict):
            raise DriverError("aws settings: tags must be a mapping of tag name to value")
        self.settings = settings
        self.nodes = nodes
        self.cluster = str(settings["cluster_name"])
        self.ec2 = boto3.client(
            "ec2",
            region_name=settings["region"],
            endpoint_url=settings.get("endpoint_url") or None,
            config=botocore.config.Config(
                connect_timeout=10, read_timeout=30, retries={"mode": "standard", "max_attempts": 5}
            ),
        )

    def launch_template(self) -> dict[str, str]:
        template = str(self.settings["launch_template"])
        version = str(self.settings.get("launch_template_version") or "$Latest")
        key = "LaunchTemplateId" if re.fullmatch(r"lt-[0-9a-f]+", template) else "LaunchTemplateName"
        return {key: template, "Version": version}

    def tags(self, node: str) -> list[dict[str, str]]:
        # The driver's own tags win: they are how suspend and resume find the node's instance.
        tags = {str(key): str(value) for key, value in (self.settings.get("tags") or {}).items()}
        tags.update({"Name": node, "gxnb:node": node, "gxnb:cluster": self.cluster})
        return [{"Key": key, "Value": value} for key, value in tags.items()]

    def instances(self, states: list[str], node: str | None = None) -> list[dict[str, Any]]:
        """This cluster's instances (of one node where given) in those states, oldest first."""
        filters = [{"Name": "tag:gxnb:cluster", "Values": [self.cluster]},
                   {"Name": "instance-state-name", "Values": states}]  # fmt: skip
        if node:
            filters.append({"Name": "tag:gxnb:node", "Values": [node]})
        found = []
        for page in self.ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                found.extend(reservation["Instances"])
        return sorted(found, key=lambda instance: (instance["LaunchTime"], instance["InstanceId"]))

    def check(self) -> str:
        template = self.launch_template()
        try:
            key = "LaunchTemplateIds" if "LaunchTemplateId" in template else "LaunchTemplateNames"
            found = self.ec2.describe_launch_templates(**{key: [next(iter(template.values()))]})
            count = len(self.instances(REMOVABLE_STATES))
        except AWS_ERRORS as error:
            raise DriverError(f"cannot reach EC2 in {self.settings['region']}: {explain(error)}") from None
        name = found["LaunchTemplates"][0]["LaunchTemplateName"]
        return (f"EC2 in {self.settings['region']} via launch template {name} ({template['Version']}), "
                f"{count} instance(s) of cluster {self.cluster}")  # fmt: skip

    def resume(self, node: str) -> dict[str, str]:
        try:
            live = self.instances(LIVE_STATES, node)
            if live:
                instance, verb = live[0], "reused"
                if len(live) > 1:  # two resumes raced: a node is one instance
                    extra = [other["InstanceId"] for other in live[1:]]
                    self.ec2.terminate_instances(InstanceIds=extra)
                    verb = f"reused (terminated the extra {', '.join(extra)})"
            else:
                instance, verb = self.launch(node), "launched"
            instance = self.wait_for_address(node, instance)
        except AWS_ERRORS as error:
            raise DriverError(f"{node}: EC2 failed: {explain(error)}") from None
        message = (f"{verb} {instance['InstanceId']} ({instance.get('InstanceType')}) in "
                   f"{instance.get('SubnetId')}, address {instance['PrivateIpAddress']}")  # fmt: skip
        return {"message": message, "address": instance["PrivateIpAddress"]}

    def launch(self, node: str) -> dict[str, Any]:
        node_settings = self.nodes.get(node) or {}
        request: dict[str, Any] = {
            "MinCount": 1,
            "MaxCount": 1,
            "LaunchTemplate": self.launch_template(),
            "UserData": user_data(node, self.settings),  # boto3 base64-encodes it
            "TagSpecifications": [{"ResourceType": "instance", "Tags": self.tags(node)}],
        }
        if node_settings.get("instance_type"):
            request["InstanceType"] = node_settings["instance_type"]
        subnet = node_settings.get("subnet_id") or self.settings.get("subnet_id")
        if subnet:
            request["SubnetId"] = subnet
        return self.ec2.run_instances(**request)["Instances"][0]

    def wait_for_address(self, node: str, instance: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.address_wait_s
        while not instance.get("PrivateIpAddress"):
            if time.monotonic() > deadline:
                # The node is marked down: leave nothing billing that Slurm will not use.
                self.ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
                raise DriverError(f"{node}: {instance['InstanceId']} had no private address after "
                                  f"{self.address_wait_s:.0f} s; terminated it")  # fmt: skip
            time.sleep(self.poll_s)
            try:
                reservations = self.ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"]
            except botocore.exceptions.ClientError as error:
                # A new instance may not be visible yet (EC2 is eventually consistent).
                if error.response.get("Error", {}).get("Code") != "InvalidInstanceID.NotFound":
                    raise
                continue
            instance = reservations[0]["Instances"][0]
            state = instance["State"]["Name"]
            if state not in LIVE_STATES:
                reason = instance.get("StateReason", {}).get("Message", "no reason given")
                raise DriverError(f"{node}: {instance['InstanceId']} went {state} while starting: {reason}")
        return instance

    def suspend(self, node: str) -> str:
        try:
            instances = self.instances(REMOVABLE_STATES, node)
            if not instances:
                return f"no instance of {node} in cluster {self.cluster}; nothing to remove"
            ids = [instance["InstanceId"] for instance in instances]
            self.ec2.terminate_instances(InstanceIds=ids)
        except AWS_ERRORS as error:
            raise DriverError(f"{node}: EC2 failed to terminate its instance: {explain(error)}") from None
        return f"terminating {', '.join(ids)}"


class MungeKeyStore:
    """Slurm's munge key in a Secrets Manager secret (binary): the controller puts it
    (gxnb-nodes share-munge-key, with its instance profile), a node made on demand reads it at
    boot (gxnb-node-join, with the job nodes' instance profile, which may read that secret only).
    Terraform makes the secret without a value, so the key is never in its state."""

    def __init__(self, secret_id: str, region: str | None = None, endpoint_url: str | None = None):
        self.secret_id = secret_id
        self.client = boto3.client(
            "secretsmanager",
            region_name=region or None,
            endpoint_url=endpoint_url or None,
            config=botocore.config.Config(
                connect_timeout=10, read_timeout=30, retries={"mode": "standard", "max_attempts": 5}
            ),
        )

    def get(self) -> bytes | None:
        """The key, or None while the secret has no value yet."""
        try:
            value = self.client.get_secret_value(SecretId=self.secret_id)
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                if "version" in str(error).lower() or "AWSCURRENT" in str(error):
                    return None
                raise DriverError(f"Secrets Manager has no secret {self.secret_id}: {explain(error)}") from None
            raise DriverError(f"Secrets Manager refused {self.secret_id}: {explain(error)}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise DriverError(f"Secrets Manager did not answer for {self.secret_id}: {explain(error)}") from None
        if "SecretBinary" in value:
            return bytes(value["SecretBinary"])
        return value.get("SecretString", "").encode() or None

    def put(self, key: bytes) -> bool:
        """Store the key unless the secret holds it already; True if it was stored."""
        if self.get() == key:
            return False
        try:
            self.client.put_secret_value(SecretId=self.secret_id, SecretBinary=key)
        except AWS_ERRORS as error:
            raise DriverError(f"Secrets Manager refused to store the munge key in {self.secret_id}: "
                              f"{explain(error)}") from None  # fmt: skip
        return True
