"""gxnb-nodes' OpenStack driver: a job node is one Nova server named after the node, with the
node's and the cluster's names in its metadata (gxnb_node, gxnb_cluster).

Settings (the "openstack" section): cloud (the clouds.yaml entry, with an application
credential), image, flavor, network, cluster_name and controller_address are required;
metadata (added to each server) is optional. A node's own settings may set flavor. The
credential is clouds.yaml's (/etc/openstack/clouds.yaml or slurmctld's user's), never these
settings.

The user data is JSON with the node's name, the controller's address, the cluster's name and
munge_key_store (a Barbican secret's name): the node's boot unit (gxnb-node-join) fetches the
munge key from there with the image's clouds.yaml entry, an application credential whose access
rules allow reading secrets only.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from . import DriverError, check_cloud_settings, user_data

REQUIRED = ("cloud", "image", "flavor", "network", "cluster_name", "controller_address")
CREDENTIALS_FROM = (
    "the driver uses the application credential of the 'cloud' entry in clouds.yaml "
    "(/etc/openstack/clouds.yaml or ~/.config/openstack/clouds.yaml of slurmctld's user)"
)


def connect(cloud: str):
    try:
        import openstack  # only where this driver is used: the others do without openstacksdk
        from openstack import exceptions
    except ImportError:
        raise DriverError("the openstack driver needs openstacksdk (python3-openstacksdk)") from None
    try:
        return openstack.connect(cloud=cloud)
    except exceptions.SDKException as error:
        raise DriverError(f"cloud {cloud!r}: {error}; {CREDENTIALS_FROM}") from None


class Driver:
    # One node after the other: openstacksdk's Connection is not documented as thread-safe, and
    # each resume waits for its server; ResumeTimeout has to allow for a host list's servers.
    parallel_resumes = 1
    # Bounded: a resume waits for its server to be active.
    active_wait_s = 300
    poll_s = 5

    def __init__(self, settings: dict[str, Any], nodes: dict[str, dict[str, Any]], connection=None):
        check_cloud_settings("openstack", settings, nodes, REQUIRED, CREDENTIALS_FROM)
        if not isinstance(settings.get("metadata") or {}, dict):
            raise DriverError("openstack settings: metadata must be a mapping of key to value")
        self.settings = settings
        self.nodes = nodes
        self.cluster = str(settings["cluster_name"])
        self.connection = connection or self.connect(settings["cloud"])

    @staticmethod
    def connect(cloud: str):
        return connect(cloud)

    def metadata(self, node: str) -> dict[str, str]:
        # The driver's own keys win: they are how suspend and resume find the node's server.
        metadata = {str(key): str(value) for key, value in (self.settings.get("metadata") or {}).items()}
        metadata.update({"gxnb_node": node, "gxnb_cluster": self.cluster})
        return metadata

    def servers(self, node: str | None = None) -> list:
        """This cluster's servers (of one node where given); Nova filters names by regex."""
        query = {"name": f"^{re.escape(node)}$"} if node else {}
        return [server for server in self.connection.compute.servers(**query)
                if (server.metadata or {}).get("gxnb_cluster") == self.cluster
                and (node is None or (server.metadata or {}).get("gxnb_node") == node)]  # fmt: skip

    def check(self) -> str:
        try:
            image, flavor, network = self.find(self.settings["flavor"])
            count = len(self.servers())
        except Exception as error:  # openstacksdk's and keystoneauth's classes, which vary by version
            raise DriverError(f"cannot reach cloud {self.settings['cloud']!r}: {error}") from None
        return (f"OpenStack cloud {self.settings['cloud']}: image {image.name}, flavor {flavor.name}, "
                f"network {network.name}; {count} server(s) of cluster {self.cluster}")  # fmt: skip

    def find(self, flavor: str):
        """The image, flavor and network by name or ID; a missing one is an error."""
        compute = self.connection.compute
        return (self.connection.image.find_image(self.settings["image"], ignore_missing=False),
                compute.find_flavor(flavor, ignore_missing=False),
                self.connection.network.find_network(self.settings["network"], ignore_missing=False))  # fmt: skip

    def resume(self, node: str) -> dict[str, str]:
        flavor_name = (self.nodes.get(node) or {}).get("flavor") or self.settings["flavor"]
        try:
            image, flavor, network = self.find(flavor_name)
            servers = self.servers(node)
            for failed in (server for server in servers if server.status == "ERROR"):
                self.connection.compute.delete_server(failed, ignore_missing=True)  # made anew below
            existing = [server for server in servers if server.status != "ERROR"]
            if existing:
                server, verb = existing[0], "reused"
            else:
                server = self.connection.compute.create_server(
                    name=node,
                    image_id=image.id,
                    flavor_id=flavor.id,
                    networks=[{"uuid": network.id}],
                    metadata=self.metadata(node),
                    user_data=base64.b64encode(user_data(node, self.settings).encode()).decode(),
                )
                verb = "created"
            server = self.connection.compute.wait_for_server(
                server, status="ACTIVE", failures=["ERROR"], interval=self.poll_s, wait=self.active_wait_s
            )
        except Exception as error:  # openstacksdk's and keystoneauth's classes, which vary by version
            raise DriverError(f"{node}: OpenStack failed: {type(error).__name__}: {error}") from None
        address = fixed_address(server, network.name)
        if not address:
            raise DriverError(f"{node}: server {server.id} is ACTIVE but has no fixed address on {network.name}")
        return {"message": f"{verb} server {server.id} ({flavor.name}), address {address}", "address": address}

    def suspend(self, node: str) -> str:
        try:
            servers = self.servers(node)
            for server in servers:
                self.connection.compute.delete_server(server, ignore_missing=True)
        except Exception as error:  # openstacksdk's and keystoneauth's classes, which vary by version
            raise DriverError(f"{node}: OpenStack failed to delete its server: {error}") from None
        if not servers:
            return f"no server of {node} in cluster {self.cluster}; nothing to remove"
        return f"deleting server {', '.join(server.id for server in servers)}"


def fixed_address(server, network_name: str) -> str | None:
    """The server's first fixed (not floating) address on that network; Nova keys by network name."""
    for entry in (server.addresses or {}).get(network_name, []):
        if entry.get("OS-EXT-IPS:type", "fixed") == "fixed":
            return entry["addr"]
    return None


class MungeKeyStore:
    """Slurm's munge key as a Barbican secret named munge_key_store (base64 text): the
    controller stores it (gxnb-nodes share-munge-key), a node made on demand reads the newest of
    that name at boot (gxnb-node-join). Barbican's secrets cannot change: a new key is a new
    secret, and the older ones of the name are deleted once it is stored."""

    def __init__(self, name: str, cloud: str | None = None, connection=None):
        self.name = name
        self.connection = connection or connect(cloud or "gxnb-node")

    def secrets(self) -> list:
        try:
            found = list(self.connection.key_manager.secrets(name=self.name))
        except Exception as error:  # openstacksdk's and keystoneauth's classes, which vary by version
            raise DriverError(f"Barbican failed to list the secrets named {self.name}: {error}") from None
        return sorted(found, key=lambda secret: str(secret.created or ""), reverse=True)

    def key_of(self, secret) -> bytes:
        try:
            return base64.b64decode(self.connection.key_manager.get_secret(secret).payload, validate=True)
        except Exception as error:  # openstacksdk's and binascii's classes
            raise DriverError(f"Barbican secret {self.name} ({secret.id}): {type(error).__name__}: {error}") from None

    def get(self) -> bytes | None:
        """The key of the newest secret of the name, or None while there is none."""
        secrets = self.secrets()
        return self.key_of(secrets[0]) if secrets else None

    def put(self, key: bytes) -> bool:
        """Store the key unless the newest secret of the name holds it; True if it was stored."""
        older = self.secrets()
        if older and self.key_of(older[0]) == key:
            return False
        try:
            self.connection.key_manager.create_secret(
                name=self.name, secret_type="opaque", payload=base64.b64encode(key).decode(),
                payload_content_type="text/plain",
            )
            for secret in older:
                self.connection.key_manager.delete_secret(secret, ignore_missing=True)
        except Exception as error:  # openstacksdk's and keystoneauth's classes, which vary by version
            raise DriverError(f"Barbican refused to store the munge key as {self.name}: {error}") from None
        return True
