"""gxnb-nodes' OpenStack driver against a fake connection with openstacksdk's proxy semantics
(compute.create_server/servers/wait_for_server/delete_server, find_* with ignore_missing)."""

from __future__ import annotations

import base64
import importlib
import importlib.util
import itertools
import json
import re
import sys
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

# The package is installed by the slurm role, not into .venv: import it from the role.
sys.path.insert(0, str(REPO / "roles/slurm/files"))
gxnb_nodes = importlib.import_module("gxnb_nodes")
openstack_driver = importlib.import_module("gxnb_nodes.openstack")

CLUSTER = "gxnb-unit"
CONTROLLER = "10.0.0.5"
FAKE_MUNGE_KEY = "fake-munge-key-must-never-reach-user-data"


class FakeSDKError(Exception):
    """Stands for openstack.exceptions.SDKException (ResourceNotFound, ResourceTimeout, ...)."""


class FakeProxy:
    """find_<kind>(name_or_id, ignore_missing) over named resources, as openstacksdk's proxies."""

    def __init__(self, kind: str, **named: str):
        self.resources = [SimpleNamespace(id=resource_id, name=name) for name, resource_id in named.items()]
        setattr(self, f"find_{kind}", self.find)
        self.kind = kind

    def find(self, name_or_id: str, ignore_missing: bool = True):
        for resource in self.resources:
            if name_or_id in (resource.id, resource.name):
                return resource
        if ignore_missing:
            return None
        raise FakeSDKError(f"No {self.kind} found for {name_or_id}")


class FakeCompute(FakeProxy):
    """Nova: servers build, then go ACTIVE with a fixed address on their network (keyed by its name)."""

    def __init__(self, networks: dict[str, str], **flavors: str):
        super().__init__("flavor", **flavors)
        self.networks = networks  # network ID -> name
        self.servers_made: list[SimpleNamespace] = []
        self.deleted: list[str] = []
        self.ids = itertools.count(1)
        self.fail_with: str | None = None

    def create_server(self, **attrs):
        server = SimpleNamespace(id=f"server-{next(self.ids)}", status="BUILD", addresses={}, **attrs)
        self.servers_made.append(server)
        return server

    def servers(self, details: bool = True, all_projects: bool = False, **query):
        for server in list(self.servers_made):
            if "name" in query and not re.search(query["name"], server.name):  # Nova: a regex
                continue
            yield server

    def wait_for_server(self, server, status="ACTIVE", failures=None, interval=2, wait=120):
        if self.fail_with:
            server.status = self.fail_with
            raise FakeSDKError(f"Error in creating the server. Fault: No valid host was found. ({server.id})")
        if server.status == "BUILD":
            [network_id] = [network["uuid"] for network in server.networks]
            number = int(server.id.rsplit("-", 1)[1])
            server.addresses = {self.networks[network_id]: [
                {"addr": f"203.0.113.{number}", "version": 4, "OS-EXT-IPS:type": "floating"},
                {"addr": f"192.168.10.{number}", "version": 4, "OS-EXT-IPS:type": "fixed"},
            ]}  # fmt: skip
            server.status = "ACTIVE"
        return server

    def delete_server(self, server, ignore_missing=True, force=False):
        self.servers_made.remove(server)
        self.deleted.append(server.id)


@pytest.fixture
def connection():
    return SimpleNamespace(
        compute=FakeCompute({"net-1": "gxnb-private"}, **{"g1.gpu": "flavor-gpu", "g1.gpu.large": "flavor-large"}),
        image=FakeProxy("image", **{"gxnb-node-image": "image-1"}),
        network=FakeProxy("network", **{"gxnb-private": "net-1"}),
    )


@pytest.fixture
def settings(monkeypatch) -> dict:
    monkeypatch.setenv("MUNGE_KEY", FAKE_MUNGE_KEY)
    return {
        "cloud": "gxnb",
        "image": "gxnb-node-image",
        "flavor": "g1.gpu",
        "network": "net-1",  # an ID: the address is looked up under the network's name
        "cluster_name": CLUSTER,
        "controller_address": CONTROLLER,
        "metadata": {"project": "gxnb"},
    }


def make(settings, connection, *nodes: str, **node_settings):
    return openstack_driver.Driver(settings, {node: node_settings.get(node, {}) for node in nodes},
                                   connection=connection)  # fmt: skip


def test_resume_creates_a_server_and_returns_its_fixed_address(settings, connection):
    outcome = make(settings, connection, "gxnb-node1").resume("gxnb-node1")

    [server] = connection.compute.servers_made
    assert (server.name, server.image_id, server.flavor_id) == ("gxnb-node1", "image-1", "flavor-gpu")
    assert server.networks == [{"uuid": "net-1"}]
    assert server.metadata == {"project": "gxnb", "gxnb_node": "gxnb-node1", "gxnb_cluster": CLUSTER}
    assert outcome["address"] == "192.168.10.1"  # the fixed one, not the floating one
    assert outcome["message"].startswith("created server server-1")


def test_user_data_has_only_node_controller_and_cluster(settings, connection):
    make(settings, connection, "gxnb-node1").resume("gxnb-node1")

    text = base64.b64decode(connection.compute.servers_made[0].user_data).decode()
    assert json.loads(text) == {"gxnb_node": "gxnb-node1", "slurm_controller": CONTROLLER, "cluster": CLUSTER}
    assert FAKE_MUNGE_KEY not in text


def test_a_nodes_flavor_overrides(settings, connection):
    make(settings, connection, "gxnb-node1", **{"gxnb-node1": {"flavor": "g1.gpu.large"}}).resume("gxnb-node1")

    assert connection.compute.servers_made[0].flavor_id == "flavor-large"


def test_resume_again_reuses_the_server(settings, connection):
    driver = make(settings, connection, "gxnb-node1")
    first = driver.resume("gxnb-node1")
    second = driver.resume("gxnb-node1")

    assert len(connection.compute.servers_made) == 1
    assert second["address"] == first["address"]
    assert second["message"].startswith("reused server server-1")


def test_reuse_is_by_exact_name_and_cluster(settings, connection):
    make(settings, connection, "gxnb-node10").resume("gxnb-node10")
    make({**settings, "cluster_name": "other"}, connection, "gxnb-node1").resume("gxnb-node1")

    make(settings, connection, "gxnb-node1").resume("gxnb-node1")

    assert [(server.name, server.metadata["gxnb_cluster"]) for server in connection.compute.servers_made] == [
        ("gxnb-node10", CLUSTER), ("gxnb-node1", "other"), ("gxnb-node1", CLUSTER)
    ]  # fmt: skip


def test_a_server_in_error_is_replaced(settings, connection):
    driver = make(settings, connection, "gxnb-node1")
    connection.compute.fail_with = "ERROR"
    with pytest.raises(gxnb_nodes.DriverError, match=r"^gxnb-node1: OpenStack failed: .*No valid host"):
        driver.resume("gxnb-node1")
    connection.compute.fail_with = None

    outcome = driver.resume("gxnb-node1")

    assert connection.compute.deleted == ["server-1"]
    assert [server.id for server in connection.compute.servers_made] == ["server-2"]
    assert outcome["address"] == "192.168.10.2"


def test_a_missing_image_names_the_node(settings, connection):
    settings["image"] = "no-such-image"

    with pytest.raises(gxnb_nodes.DriverError, match="^gxnb-node1: .*No image found for no-such-image"):
        make(settings, connection, "gxnb-node1").resume("gxnb-node1")
    assert connection.compute.servers_made == []


def test_suspend_deletes_the_server(settings, connection):
    driver = make(settings, connection, "gxnb-node1", "gxnb-node2")
    driver.resume("gxnb-node1")
    driver.resume("gxnb-node2")

    message = driver.suspend("gxnb-node1")

    assert message == "deleting server server-1"
    assert [server.name for server in connection.compute.servers_made] == ["gxnb-node2"]


def test_suspend_without_a_server_says_so(settings, connection):
    message = make(settings, connection, "gxnb-node1").suspend("gxnb-node1")

    assert message == f"no server of gxnb-node1 in cluster {CLUSTER}; nothing to remove"


def test_check_names_what_it_reaches(settings, connection):
    driver = make(settings, connection, "gxnb-node1")
    driver.resume("gxnb-node1")

    line = driver.check()

    assert line == (f"OpenStack cloud gxnb: image gxnb-node-image, flavor g1.gpu, network gxnb-private; "
                    f"1 server(s) of cluster {CLUSTER}")  # fmt: skip


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("settings", "application_credential_secret"),
        ("settings", "password"),
        ("settings", "token"),
        ("node", "application_credential_id"),
        ("metadata", "secret"),
    ],
)
def test_credentials_in_settings_are_refused(settings, connection, where, key):
    nodes = {"gxnb-node1": {}}
    if where == "settings":
        settings[key] = "not-a-real-one"
    elif where == "node":
        nodes["gxnb-node1"][key] = "not-a-real-one"
    else:
        settings["metadata"][key] = "not-a-real-one"

    with pytest.raises(gxnb_nodes.DriverError) as refused:
        openstack_driver.Driver(settings, nodes, connection=connection)

    assert repr(key) in str(refused.value)
    assert "clouds.yaml" in str(refused.value)


@pytest.mark.skipif(importlib.util.find_spec("openstack") is not None, reason="openstacksdk is installed here")
def test_without_openstacksdk_the_driver_says_what_it_needs(settings):
    with pytest.raises(gxnb_nodes.DriverError, match="needs openstacksdk"):
        openstack_driver.Driver(settings, {"gxnb-node1": {}})


class FakeKeyManager:
    """Barbican as openstacksdk's key_manager proxy shows it: secrets(name=...), create_secret,
    get_secret (with the payload), delete_secret; secrets cannot change."""

    def __init__(self):
        self.stored: list[SimpleNamespace] = []
        self.ids = itertools.count(1)

    def secrets(self, **query):
        return [secret for secret in self.stored if secret.name == query.get("name", secret.name)]

    def create_secret(self, **attrs):
        number = next(self.ids)
        secret = SimpleNamespace(id=f"secret-{number}", created=f"2026-12-07T10:00:{number:02d}", **attrs)
        self.stored.append(secret)
        return secret

    def get_secret(self, secret):
        return secret

    def delete_secret(self, secret, ignore_missing=True):
        self.stored.remove(secret)


def test_the_munge_key_is_stored_once_in_barbican_and_a_new_one_replaces_it():
    key_manager = FakeKeyManager()
    store = openstack_driver.MungeKeyStore("gxnb-unit-munge-key", connection=SimpleNamespace(key_manager=key_manager))

    assert store.get() is None
    assert store.put(b"k" * 64) is True
    assert store.put(b"k" * 64) is False
    assert store.get() == b"k" * 64
    assert store.put(b"n" * 64) is True  # a new key is a new secret; the old one goes
    assert [base64.b64decode(secret.payload) for secret in key_manager.stored] == [b"n" * 64]
    assert store.get() == b"n" * 64
    assert key_manager.stored[0].payload_content_type == "text/plain"
