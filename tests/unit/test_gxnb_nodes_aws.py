"""gxnb-nodes' EC2 driver against moto's EC2 server (real HTTP, boto3 as in production)."""

from __future__ import annotations

import base64
import concurrent.futures
import importlib
import json
import socket
import sys
import time

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests.conftest import REPO

# The package is installed by the slurm role, not into .venv: import it from the role.
sys.path.insert(0, str(REPO / "roles/slurm/files"))
gxnb_nodes = importlib.import_module("gxnb_nodes")
aws = importlib.import_module("gxnb_nodes.aws")

REGION = "eu-west-1"
CLUSTER = "gxnb-unit"
CONTROLLER = "10.0.0.5"
FAKE_MUNGE_KEY = "fake-munge-key-must-never-reach-user-data"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def ec2(moto_url, monkeypatch):
    """A client of the fresh moto EC2, with fake credentials and no proxy for 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("MUNGE_KEY", FAKE_MUNGE_KEY)
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto_url)


@pytest.fixture
def settings(ec2, moto_url) -> dict:
    # One of moto's AMIs; filtered, as listing all of them takes a second.
    amazon_linux = [{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}]
    image = ec2.describe_images(Owners=["amazon"], Filters=amazon_linux)["Images"][0]["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="gxnb-job-node", LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]
    return {
        "region": REGION,
        "launch_template": template["LaunchTemplateId"],
        "cluster_name": CLUSTER,
        "controller_address": CONTROLLER,
        "tags": {"project": "gxnb"},
        "endpoint_url": moto_url,
    }


def node_instances(ec2, node: str, states=("pending", "running")) -> list[dict]:
    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag:gxnb:node", "Values": [node]}, {"Name": "instance-state-name", "Values": list(states)}]
    )["Reservations"]
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def test_resume_makes_one_tagged_instance_and_returns_its_address(ec2, settings):
    outcome = aws.Driver(settings, {"gxnb-node1": {}}).resume("gxnb-node1")

    [instance] = node_instances(ec2, "gxnb-node1")
    assert instance["State"]["Name"] == "running"
    assert outcome["address"] == instance["PrivateIpAddress"]
    assert instance["InstanceId"] in outcome["message"] and "launched" in outcome["message"]
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags["Name"] == tags["gxnb:node"] == "gxnb-node1"
    assert tags["gxnb:cluster"] == CLUSTER
    assert tags["project"] == "gxnb"
    assert instance["InstanceType"] == "t3.micro"  # the launch template's


def test_resume_again_reuses_the_instance(ec2, settings):
    driver = aws.Driver(settings, {"gxnb-node1": {}})
    first = driver.resume("gxnb-node1")
    second = driver.resume("gxnb-node1")

    assert len(node_instances(ec2, "gxnb-node1")) == 1
    assert second["address"] == first["address"]
    assert second["message"].startswith("reused")


def test_user_data_has_only_node_controller_and_cluster(ec2, settings):
    aws.Driver(settings, {"gxnb-node1": {}}).resume("gxnb-node1")

    [instance] = node_instances(ec2, "gxnb-node1")
    encoded = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    text = base64.b64decode(encoded["UserData"]["Value"]).decode()
    assert json.loads(text) == {"gxnb_node": "gxnb-node1", "slurm_controller": CONTROLLER, "cluster": CLUSTER}
    assert FAKE_MUNGE_KEY not in text
    assert "testing" not in text  # the credentials boto3 used


def test_an_instance_without_an_address_in_time_is_terminated(ec2, settings, monkeypatch):
    driver = aws.Driver(settings, {"gxnb-node1": {}})
    launch = driver.launch
    # moto gives an address at once: drop it from run_instances' answer, and wait no time.
    monkeypatch.setattr(driver, "launch", lambda node: {"InstanceId": launch(node)["InstanceId"]})
    driver.address_wait_s = -1

    with pytest.raises(gxnb_nodes.DriverError, match=r"^gxnb-node1: i-\w+ had no private address .*terminated"):
        driver.resume("gxnb-node1")
    assert node_instances(ec2, "gxnb-node1") == []


def test_two_programs_resuming_one_node_at_once_make_one_instance(ec2, settings, monkeypatch, tmp_path):
    # slurmctld's resume and a resume-pending after its restart, say: each its own driver.
    launch = aws.Driver.launch

    def slow_launch(self, node):
        time.sleep(1)  # EC2 answers in about a second: the other program looks meanwhile
        return launch(self, node)

    monkeypatch.setattr(aws.Driver, "launch", slow_launch)
    monkeypatch.setattr(gxnb_nodes, "scontrol_update", lambda node, **fields: None)
    all_settings = {"driver": "aws", "aws": settings, "nodes": {"gxnb-node1": {}}, "lock_dir": str(tmp_path)}

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: gxnb_nodes.run("resume", ["gxnb-node1"], all_settings,
                                                         aws.Driver(settings, all_settings["nodes"])), range(2)))

    assert results == [0, 0]
    assert len(node_instances(ec2, "gxnb-node1")) == 1


def test_suspend_terminates_and_a_later_resume_makes_a_new_one(ec2, settings):
    driver = aws.Driver(settings, {"gxnb-node1": {}})
    driver.resume("gxnb-node1")
    [instance] = node_instances(ec2, "gxnb-node1")

    message = driver.suspend("gxnb-node1")

    assert instance["InstanceId"] in message
    assert node_instances(ec2, "gxnb-node1", states=("pending", "running", "stopping", "stopped")) == []
    driver.resume("gxnb-node1")
    [new_instance] = node_instances(ec2, "gxnb-node1")
    assert new_instance["InstanceId"] != instance["InstanceId"]


def test_suspend_without_an_instance_says_so_and_leaves_others_alone(ec2, settings):
    aws.Driver(settings, {"gxnb-node1": {}, "gxnb-node2": {}}).resume("gxnb-node2")
    aws.Driver(settings, {"gxnb-node1": {}}).resume("gxnb-node1")
    # The same node name in another cluster (another deployment in the same account).
    driver = aws.Driver({**settings, "cluster_name": "other-cluster"}, {"gxnb-node1": {}})

    message = driver.suspend("gxnb-node1")

    assert message == "no instance of gxnb-node1 in cluster other-cluster; nothing to remove"
    assert len(node_instances(ec2, "gxnb-node1")) == 1
    assert len(node_instances(ec2, "gxnb-node2")) == 1


def test_check_names_region_template_and_count(ec2, settings):
    driver = aws.Driver(settings, {"gxnb-node1": {}})
    driver.resume("gxnb-node1")

    line = driver.check()

    assert REGION in line and "gxnb-job-node" in line and f"1 instance(s) of cluster {CLUSTER}" in line


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("settings", "aws_access_key_id"),
        ("settings", "aws_secret_access_key"),
        ("settings", "aws_session_token"),
        ("node", "password"),
        ("tags", "secret"),
    ],
)
def test_credentials_in_settings_are_refused(settings, where, key):
    nodes = {"gxnb-node1": {}}
    if where == "settings":
        settings[key] = "AKIA-not-a-real-one"
    elif where == "node":
        nodes["gxnb-node1"][key] = "hunter2"
    else:
        settings["tags"][key] = "s3cret"

    with pytest.raises(gxnb_nodes.DriverError) as refused:
        aws.Driver(settings, nodes)

    assert repr(key) in str(refused.value)
    assert "instance profile" in str(refused.value)


def test_missing_settings_are_named(settings):
    del settings["controller_address"]

    with pytest.raises(gxnb_nodes.DriverError, match="lack controller_address"):
        aws.Driver(settings, {"gxnb-node1": {}})


def test_main_resumes_a_host_list(ec2, settings, tmp_path):
    log_file = tmp_path / "gxnb-nodes.log"
    settings_file = tmp_path / "gxnb-nodes.json"
    settings_file.write_text(json.dumps({
        "driver": "aws",
        "nodes": {"node1": {}, "node2": {"instance_type": "t3.large"}},
        "aws": settings,
        "log_file": str(log_file),
    }))  # fmt: skip

    assert gxnb_nodes.main(["resume", "node[1-2]", "--settings", str(settings_file)]) == 0

    [node1] = node_instances(ec2, "node1")
    [node2] = node_instances(ec2, "node2")
    assert node2["InstanceType"] == "t3.large"  # the node's own setting over the template's
    log = log_file.read_text()
    assert f"resume node1: launched {node1['InstanceId']}" in log
    assert f"resume node2: launched {node2['InstanceId']}" in log
