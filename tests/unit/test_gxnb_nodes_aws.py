"""gxnb-nodes' EC2 driver against moto's EC2 server (real HTTP, boto3 as in production)."""

from __future__ import annotations

import base64
import concurrent.futures
import http.server
import importlib
import json
import socket
import sys
import threading
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
    # The place of the munge key, as Terraform makes it: a secret without a value.
    secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_url)
    store = secrets.create_secret(Name=f"{CLUSTER}-munge-key", Description="munge key")["ARN"]
    return {
        "region": REGION,
        "launch_template": template["LaunchTemplateId"],
        "cluster_name": CLUSTER,
        "controller_address": CONTROLLER,
        "tags": {"project": "gxnb"},
        "endpoint_url": moto_url,
        "munge_key_store": store,
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


def instance_user_data(ec2, node: str) -> str:
    [instance] = node_instances(ec2, node)
    encoded = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    return base64.b64decode(encoded["UserData"]["Value"]).decode()


def test_user_data_has_only_node_controller_cluster_and_where_the_key_is(ec2, settings):
    aws.Driver(settings, {"gxnb-node1": {}}).resume("gxnb-node1")

    text = instance_user_data(ec2, "gxnb-node1")
    assert json.loads(text) == {"gxnb_node": "gxnb-node1", "slurm_controller": CONTROLLER, "cluster": CLUSTER,
                                "munge_key_store": settings["munge_key_store"], "region": REGION}
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


# --- A node made on demand joins: the controller shares its munge key, EC2 launches the node with
# its user data, and the node's boot unit (gxnb-node-join) reads it from an IMDSv2 service and
# fetches the key from Secrets Manager (moto) ---

join = importlib.import_module("gxnb_nodes.join")
MUNGE_KEY = bytes(range(256)) * 4  # munge's own keys are 1024 random bytes
IMAGE_ADDRESS = "10.20.0.7"  # the builder's address, which the image's files carry


class InstanceMetadata(http.server.BaseHTTPRequestHandler):
    """EC2's instance metadata service as the launch template sets it: IMDSv2 only (a PUT for a
    session token first, every GET with it; 401 without)."""

    user_data: bytes | None = None
    token = "imds-session-token"

    def do_PUT(self):  # noqa: N802 (http.server's name)
        if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.send_error(400)
            return
        self.reply(200, self.token.encode())

    def do_GET(self):  # noqa: N802
        if self.headers.get("X-aws-ec2-metadata-token") != self.token:
            self.send_error(401)
        elif self.path != "/latest/user-data" or self.user_data is None:
            self.send_error(404)
        else:
            self.reply(200, self.user_data)

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def metadata_service():
    InstanceMetadata.user_data = None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), InstanceMetadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield InstanceMetadata, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def image(tmp_path) -> dict:
    """A job-node image's files, as the roles left them on the machine it was made from."""
    root = tmp_path / "root"
    (root / "etc/docker").mkdir(parents=True)
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/docker/daemon.json").write_text(json.dumps({"ip": IMAGE_ADDRESS, "dns": ["10.20.0.70"]}))
    (root / "etc/default/prometheus-node-exporter").write_text(f'ARGS="--web.listen-address={IMAGE_ADDRESS}:9100"\n')
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tbuilder\n")
    return {"root": root, "address_files": ["/etc/docker/daemon.json", "/etc/default/prometheus-node-exporter"]}


def join_settings(tmp_path, image, metadata_url, settings) -> str:
    path = tmp_path / "gxnb-node-join.json"
    path.write_text(json.dumps({"cloud": "aws", "metadata_url": metadata_url, "metadata_wait_s": 3,
                                "endpoint_url": settings["endpoint_url"], "image_address": IMAGE_ADDRESS,
                                "address_files": image["address_files"]}))  # fmt: skip
    return str(path)


def controller_shares_its_key(settings, tmp_path) -> str:
    key_file = tmp_path / "munge.key"
    key_file.write_bytes(MUNGE_KEY)
    return gxnb_nodes.share_munge_key({"driver": "aws", "aws": settings, "nodes": {}}, str(key_file))


def test_the_controller_stores_its_munge_key_once(ec2, settings, tmp_path):
    assert controller_shares_its_key(settings, tmp_path).startswith("stored")
    assert controller_shares_its_key(settings, tmp_path).startswith("unchanged")
    assert aws.MungeKeyStore(settings["munge_key_store"], REGION, settings["endpoint_url"]).get() == MUNGE_KEY


def test_a_node_made_on_demand_joins_with_its_user_data_and_the_stored_key(
    ec2, settings, tmp_path, metadata_service, image, capsys
):
    service, metadata_url = metadata_service
    controller_shares_its_key(settings, tmp_path)
    aws.Driver(settings | {"controller_address": "127.0.0.1"}, {"gxnb-node3": {}}).resume("gxnb-node3")
    user_data = instance_user_data(ec2, "gxnb-node3")
    service.user_data = user_data.encode()
    assert "munge_key_store" in user_data and MUNGE_KEY.hex() not in user_data

    join_args = ["--settings", join_settings(tmp_path, image, metadata_url, settings), "--root",
                 str(image["root"]), "--no-host"]  # fmt: skip
    assert join.main(join_args) == 0

    root = image["root"]
    assert (root / "etc/hostname").read_text() == "gxnb-node3\n"
    assert (root / "etc/hosts").read_text().splitlines() == ["127.0.0.1\tlocalhost", "127.0.1.1\tgxnb-node3"]
    # The route to the controller (127.0.0.1 here) gives the address; other addresses stay.
    assert json.loads((root / "etc/docker/daemon.json").read_text()) == {"ip": "127.0.0.1", "dns": ["10.20.0.70"]}
    assert "--web.listen-address=127.0.0.1:9100" in (root / "etc/default/prometheus-node-exporter").read_text()
    key = root / "etc/munge/munge.key"
    assert key.read_bytes() == MUNGE_KEY and oct(key.stat().st_mode & 0o777) == "0o400"
    assert 'SLURMD_OPTIONS="-N gxnb-node3 --conf-server 127.0.0.1"' in (root / "etc/default/slurmd").read_text()
    output = capsys.readouterr().out
    assert "node gxnb-node3 of cluster gxnb-unit" in output and "(1024 bytes)" in output
    assert MUNGE_KEY[:64].hex() not in output

    # A second boot of the same instance changes nothing.
    assert join.main(join_args) == 0
    assert "changed: nothing (joined before)" in capsys.readouterr().out


def test_a_node_booted_before_the_key_was_stored_says_so_and_writes_nothing(
    ec2, settings, tmp_path, metadata_service, image, capsys
):
    service, metadata_url = metadata_service
    aws.Driver(settings, {"gxnb-node3": {}}).resume("gxnb-node3")
    service.user_data = instance_user_data(ec2, "gxnb-node3").encode()

    settings_file = join_settings(tmp_path, image, metadata_url, settings)
    assert join.main(["--settings", settings_file, "--root", str(image["root"]), "--no-host"]) == 1

    output = capsys.readouterr().out
    assert f"cannot join: {settings['munge_key_store']} holds no munge key yet" in output
    assert "gxnb-nodes share-munge-key" in output
    assert not (image["root"] / "etc/munge/munge.key").exists()
    assert (image["root"] / "etc/hostname").exists() is False


@pytest.mark.parametrize(
    ("user_data", "message"),
    [
        (None, "the instance has no user data"),
        (b"#cloud-config\n", "is not gxnb-nodes' JSON"),
        (b'{"gxnb_node": "n1", "slurm_controller": "10.0.0.5", "cluster": "c"}', "lacks munge_key_store"),
        (b'{"gxnb_node": "n1;reboot", "slurm_controller": "10.0.0.5", "cluster": "c", "munge_key_store": "s"}',
         "gxnb_node is 'n1;reboot': a Slurm node name"),
    ],
)
def test_an_instance_with_wrong_user_data_is_told_what_is_wrong(
    ec2, settings, tmp_path, metadata_service, image, capsys, user_data, message
):
    service, metadata_url = metadata_service
    service.user_data = user_data
    settings_file = join_settings(tmp_path, image, metadata_url, settings)

    assert join.main(["--settings", settings_file, "--root", str(image["root"]), "--no-host"]) == 1
    assert message in capsys.readouterr().out
    assert not (image["root"] / "etc/default/slurmd").exists()


def test_no_metadata_service_is_named_after_the_wait(tmp_path, image, capsys):
    settings_file = join_settings(tmp_path, image, f"http://127.0.0.1:{free_port()}", {"endpoint_url": None})

    assert join.main(["--settings", settings_file, "--root", str(image["root"]), "--no-host"]) == 1
    assert "did not answer in 3 s" in capsys.readouterr().out
