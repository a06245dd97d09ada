"""Terraform: the core and inventory_file modules under `terraform test`; the AWS module and example offline
with a mock provider (provider from this machine's filesystem mirror, the registry elsewhere), and the core's
refusals of bad shared settings reaching through the AWS module; the OpenStack module with fmt, python-hcl2
structure checks, its own variables' validation and checkov; the shared settings declared once (the core's `site`);
the examples as one module call each; the generated inventory with Ansible."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import hcl2
import pytest

from tests.conftest import REPO
from tests.support.ansible_run import BIN, ansible_adhoc, ansible_env, ansible_playbook, output, site_preflight

TF = REPO / "terraform"
MIRROR_CANDIDATES = [os.environ.get("GXNB_TF_MIRROR", ""), "/opt/tf-plugins",
                     str(pathlib.Path.home() / ".terraform.d" / "plugins"), "/usr/share/terraform/plugins"]

pytestmark = [
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not installed"),
    pytest.mark.xdist_group("terraform"),  # one worker where it can; folder_lock guards the shared folders
]


@pytest.fixture(scope="session")
def tf_env(tmp_path_factory) -> dict:
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", NO_COLOR="1")
    mirror = next((m for m in MIRROR_CANDIDATES if m and (pathlib.Path(m) / "registry.terraform.io").is_dir()), None)
    if mirror:
        config = tmp_path_factory.mktemp("tfcli") / "terraformrc"
        config.write_text((TF / "provider-mirror.tfrc.tpl").read_text().replace("MIRROR_DIR", mirror))
        env["TF_CLI_CONFIG_FILE"] = str(config)
    return env


def terraform(env: dict, cwd: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["terraform", *args, "-no-color"], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600)
    return result


@contextlib.contextmanager
def folder_lock(module: pathlib.Path):
    """One `terraform init`/`test` at a time in a module folder, whichever pytest-xdist worker
    runs it (they share .terraform/ and the files a test writes there)."""
    name = hashlib.sha256(str(module.resolve()).encode()).hexdigest()[:16]
    with open(pathlib.Path(tempfile.gettempdir()) / f"gxnb-terraform-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def init_and_test(env: dict, module: pathlib.Path, *test_args: str, locked: bool = False) -> str:
    """`terraform init` then `terraform test` in module (locked: the caller holds folder_lock)."""
    with contextlib.nullcontext() if locked else folder_lock(module):
        init = terraform(env, module, "init", "-backend=false", "-input=false")
        assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
        test = terraform(env, module, "test", *test_args)
        assert test.returncode == 0, test.stdout[-6000:] + test.stderr[-3000:]
        return test.stdout


def test_fmt(tf_env):
    result = terraform(tf_env, TF, "fmt", "-check", "-recursive", "-diff")
    assert result.returncode == 0, result.stdout


def test_core_module(tf_env):
    module = TF / "modules" / "gpu_nodes"
    shutil.rmtree(module / ".terraform" / "tftest", ignore_errors=True)
    out = init_and_test(tf_env, module)
    for run in ("inventory_has_site_groups_and_gpu_counts", "cloud_init_is_rendered_per_node",
                "user_data_holds_no_secret", "firewall_opens_slurmd_and_tools_to_the_galaxy_server_only",
                "galaxy_server_cidrs_replace_the_servers_address", "apply_writes_the_inventory_file",
                "zero_gpus_is_refused", "tiny_root_disk_is_refused", "ssh_open_to_the_world_is_refused",
                "galaxy_networks_open_to_the_world_are_refused", "host_bits_in_a_cidr_are_refused",
                "no_galaxy_network_is_refused", "private_key_instead_of_public_is_refused",
                "reversed_interactive_tool_ports_are_refused", "privileged_interactive_tool_ports_are_refused",
                "slurmd_port_inside_the_tool_range_is_refused"):
        assert f'run "{run}"... pass' in out, out
    written = module / ".terraform" / "tftest" / "generated" / "core.yml"  # the test's site.inventory_path
    assert written.exists(), "the core did not write the inventory"


def test_aws_module_offline_with_mock_provider(tf_env):
    out = init_and_test(tf_env, TF / "modules" / "aws_gpu_nodes")
    for run in ("nodes_are_locked_down", "security_group_rules_are_the_cores_firewall_rules",
                "interactive_tool_ports_are_configurable", "non_gpu_instance_type_is_refused"):
        assert f'run "{run}"... pass' in out, out


AWS_TEST_VARIABLES = {
    "vpc_id": "vpc-0abc", "subnet_id": "subnet-0abc",
    "nodes": {"gpu-a": {"instance_type": "g5.2xlarge", "gpu_count": 1}},
    "site": {"ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqv2G3dVw0Jmx8rj6RRX3zOP4HVo3Ea2t6mT5j4a7nZ",
             "ssh_allowed_cidrs": ["203.0.113.10/32"], "galaxy_server": {"name": "galaxy", "address": "10.20.0.2"}},
}
# Bad shared settings given to the AWS module, and what the core's refusal says (the bad value, what is allowed).
REFUSALS = {
    "ssh_open_to_the_world": ({"site": {"ssh_allowed_cidrs": ["0.0.0.0/0"]}},
                              ["ingress open to the world", '["0.0.0.0/0"]']),
    "ssh_from_a_host_inside_a_network": ({"site": {"ssh_allowed_cidrs": ["203.0.113.10/24"]}},
                                         ["network address", '["203.0.113.10/24"]']),
    "zero_gpus": ({"nodes": {"gpu-a": {"instance_type": "g5.2xlarge", "gpu_count": 0}}},
                  ["gpu_count must be a whole number of at least 1", '"gpu-a":0']),
    "reversed_interactive_tool_ports": ({"site": {"interactive_tool_ports": {"from": 60999, "to": 32768}}},
                                        ["interactive_tool_ports: need whole port numbers", "from = 60999"]),
    "privileged_interactive_tool_ports": ({"site": {"interactive_tool_ports": {"from": 22, "to": 60999}}},
                                          ["interactive_tool_ports: need whole port numbers", "from = 22"]),
    "interactive_tool_ports_beyond_65535": ({"site": {"interactive_tool_ports": {"from": 32768, "to": 70000}}},
                                            ["interactive_tool_ports: need whole port numbers", "to = 70000"]),
    "fractional_interactive_tool_port": ({"site": {"interactive_tool_ports": {"from": 32768.5, "to": 60999}}},
                                         ["interactive_tool_ports: need whole port numbers", "from = 32768.5"]),
    "private_key_instead_of_public": (
        {"site": {"ssh_public_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"}},
        ["site.ssh_public_key: must be one OpenSSH public key line", "got a private key"]),
    "no_network_of_the_galaxy_server": ({"site": {"galaxy_server": None}},
                                        ["give galaxy_server with an IPv4 address", "or galaxy_server_cidrs"]),
    "missing_ssh_public_key": ({"site": {"ssh_public_key": "DROP"}}, ['attribute "ssh_public_key" is required']),
}


def test_aws_module_refuses_bad_shared_settings_through_the_core(tf_env):
    """The core declares and checks the shared settings once; the AWS module hands `site` over as it is. One test
    file per bad setting (a failed run skips the ones after it), written where git ignores it, each run expected to
    fail with the core's message."""
    module = TF / "modules" / "aws_gpu_nodes"
    cases = module / ".terraform" / "refusals"
    shutil.rmtree(cases, ignore_errors=True)
    cases.mkdir(parents=True)
    for name, (change, _) in REFUSALS.items():
        given = json.loads(json.dumps(AWS_TEST_VARIABLES))
        for key, value in change.items():
            given[key] = {**given[key], **value} if key == "site" else value
        given["site"] = {k: v for k, v in given["site"].items() if v != "DROP"}
        # JSON is valid HCL for these values (no "${" in them).
        body = "\n".join(f"    {k} = {json.dumps(v)}" for k, v in given.items())
        (cases / f"{name}.tftest.hcl").write_text(
            f'mock_provider "aws" {{}}\n\nrun "{name}" {{\n  command = plan\n  variables {{\n{body}\n  }}\n}}\n')
    init = terraform(tf_env, module, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
    test = terraform(tf_env, module, "test", "-json", "-test-directory=.terraform/refusals")
    status: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for line in test.stdout.splitlines():
        event = json.loads(line) if line.startswith("{") else {}
        run = event.get("@testrun")
        if event.get("type") == "test_run" and event["test_run"].get("progress") == "complete":
            status[run] = event["test_run"]["status"]
        elif event.get("type") == "diagnostic" and run and event["diagnostic"]["severity"] == "error":
            errors.setdefault(run, []).append(" ".join(event["diagnostic"]["detail"].split()))
    assert sorted(status) == sorted(REFUSALS), test.stdout[-3000:] + test.stderr[-3000:]
    for name, (_, expected) in REFUSALS.items():
        assert status[name] == "error", (name, status[name])
        said = " | ".join(errors.get(name, []))
        for fragment in expected:
            assert fragment in said, (name, fragment, said)
        assert "../gpu_nodes/variables.tf" in said, f"{name}: refused by the core, not by the AWS module: {said}"
    assert test.returncode != 0


def test_inventory_file_module_writes_the_file(tf_env):
    module = TF / "modules" / "inventory_file"
    written = module / ".terraform" / "tftest" / "generated"  # the test file's path (ignored by git)
    shutil.rmtree(written, ignore_errors=True)
    path = written / "inventory.yml"
    out = init_and_test(tf_env, module)
    for run in ("writes_the_inventory_file", "rewrites_the_file_when_the_inventory_changes",
                "shell_characters_are_written_verbatim", "empty_inventory_is_refused",
                "non_mapping_inventory_is_refused", "folder_as_path_is_refused"):
        assert f'run "{run}"... pass' in out, out
    assert path.exists(), "terraform test did not write the inventory file"


@pytest.fixture(scope="module")
def generated_inventory(tf_env, tmp_path_factory) -> pathlib.Path:
    example_dir = TF / "examples" / "aws"
    path = example_dir / ".terraform" / "tftest" / "generated" / "aws.yml"  # the test's site.inventory_path
    with folder_lock(example_dir):  # from the removal to the check
        path.unlink(missing_ok=True)
        out = init_and_test(tf_env, example_dir, locked=True)
        for run in ("apply_writes_the_inventory", "default_inventory_path_is_named_after_the_example"):
            assert f'run "{run}"... pass' in out, out
        assert path.exists(), "terraform apply did not write the inventory"
        # A copy of this run's file: another worker's run may write the example's folder next.
        copy = tmp_path_factory.mktemp("generated") / "aws.yml"
        shutil.copyfile(path, copy)
    return copy


def test_apply_writes_an_inventory_ansible_reads(generated_inventory):
    result = subprocess.run([BIN / "ansible-inventory", "-i", generated_inventory, "--list"],
                            capture_output=True, text=True, env=ansible_env())
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    # gpu-2 is made on demand (the example's test sets on_demand_nodes = 1).
    assert inventory["gpu_nodes"]["hosts"] == ["gpu-1", "gpu-2"]
    assert inventory["job_nodes"]["hosts"] == ["gpu-1", "gpu-2"]
    assert inventory["cloud_job_nodes"]["hosts"] == ["gpu-2"]
    assert inventory["galaxy_servers"]["hosts"] == ["galaxy"]
    hostvars = inventory["_meta"]["hostvars"]
    assert hostvars["gpu-1"]["gxnb_gpu_count"] == 1
    # slurm.conf's NodeAddr and SlurmctldHost come from gxnb_internal_address: the private addresses.
    assert hostvars["gpu-1"]["gxnb_internal_address"] == hostvars["gpu-1"]["ansible_host"] == "10.20.0.15"
    assert hostvars["galaxy"]["gxnb_internal_address"] == "10.20.0.2"


def test_the_ports_terraform_opens_reach_slurm_and_docker(generated_inventory):
    """slurm.conf's SlurmdPort and the range Docker publishes sessions on are the ones the firewall opens."""
    result = ansible_adhoc("gpu-1", "-m", "ansible.builtin.debug", "-o",
                           "-a", "msg={{ [slurm_slurmd_port, docker_engine_published_ports] | to_json }}",
                           inventory=generated_inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    port, published = json.loads(json.loads(result.stdout.split(" => ", 1)[1])["msg"])
    assert int(port) == 6818
    assert published == {"from": 32768, "to": 60999}


def test_site_yml_groups_resolve_on_the_generated_inventory(generated_inventory):
    result = ansible_playbook("ansible/site.yml", "--list-hosts", inventory=generated_inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    plays = result.stdout.split("play #")[1:]
    # A play is known by its name's start: "Shared storage - Galaxy's folder on the Galaxy servers ..." is not
    # the "Galaxy servers - ..." play.
    plays_by_name = {p.split(": ", 1)[1].split(" - ")[0].split("\t")[0].strip(): p for p in plays}
    gpu_play = plays_by_name["GPU nodes"]
    galaxy_play = plays_by_name["Galaxy servers"]
    job_play = plays_by_name["Job nodes"]
    assert "gpu-1" in gpu_play and "gpu-1" in job_play
    assert "galaxy" in galaxy_play and "gpu-1" not in galaxy_play
    # The node made on demand does not exist yet: only the preflight play lists it (and ends there).
    assert [name for name, play in plays_by_name.items() if "gpu-2" in play] == ["Preflight"]


MUNGE_KEY_SECRET = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:gxnb-munge-key-AbCdEf"  # the mock's


def test_a_node_made_on_demand_is_a_cloud_node_slurm_makes_with_the_launch_template(generated_inventory):
    """The generated inventory passes site.yml's preflight without reaching gpu-2 (it does not
    exist), and gives slurmctld a State=CLOUD node line, gxnb-nodes its driver settings and the node
    its instance type, and NFS the nodes' network."""
    result = site_preflight('{"ansible_become": false, "galaxy_admin_email": "admin@example.org"}',
                            inventory=generated_inventory)
    assert result.returncode == 0, output(result, 6000)
    assert re.search(r"^gpu-2 +: ok=2 +changed=0 +unreachable=0 +failed=0", result.stdout, re.M), result.stdout[-2000:]
    shape = ansible_adhoc("galaxy", "-m", "ansible.builtin.debug", "-o", "-a",
                          "msg={{ [slurm_nodes, slurm_power_save_nodes, slurm_power_save_driver_settings, "
                          "nfs_exports[0].clients, slurm_power_save_metrics_targets, metrics_cloud_targets_dir] "
                          "| to_json }}", inventory=generated_inventory)  # fmt: skip
    assert shape.returncode == 0, output(shape)
    shown = json.loads(json.loads(shape.stdout.split(" => ", 1)[1])["msg"])
    nodes, made, settings, nfs_clients, targets, scraped = shown
    # gxnb-nodes writes where Prometheus looks for the made nodes' exporters.
    assert targets == {"dir": scraped, "ports": {"node": 9100, "gpu": 9835}} and scraped.startswith("/var/lib/")
    assert nodes[1] == {"name": "gpu-2", "CPUs": 48, "RealMemory": 176947, "State": "CLOUD", "Gres": "gpu:4"}
    assert nodes[0]["State"] == "UNKNOWN" and nodes[0]["NodeAddr"] == "10.20.0.15"
    assert made == {"gpu-2": {"instance_type": "g5.12xlarge"}}  # gpu-1, made by terraform, stays on
    assert settings == {"region": "eu-central-1", "launch_template": "lt-0123456789abcdef0", "cluster_name": "gxnb",
                        "subnet_id": "subnet-0abc", "controller_address": "10.20.0.2",
                        "munge_key_store": MUNGE_KEY_SECRET}
    assert nfs_clients == ["10.20.0.15", "10.20.0.0/24"]


def unquote(value):
    """python-hcl2 8 keeps HCL's quotes on names and strings: drop them."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_folder(folder: pathlib.Path) -> dict:
    """All the .tf files of a module folder, merged by block kind."""
    merged: dict = {}
    for tf_file in sorted(folder.glob("*.tf")):
        with tf_file.open() as fh:
            for key, value in unquote(hcl2.load(fh)).items():
                merged.setdefault(key, []).extend(value)
    return merged


def load_hcl(module: str) -> dict:
    return load_folder(TF / "modules" / module)


def resources(doc: dict) -> dict:
    found = {}
    for block in doc.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                found[f"{rtype}.{name}"] = body
    return found


def variables(doc: dict) -> dict:
    return {name: body for block in doc.get("variable", []) for name, body in block.items()}


CLOUD_MODULES = ("aws_gpu_nodes", "openstack_gpu_nodes")
# The shared settings: attributes of the core's `site`, never variables of a cloud module or an example.
SHARED_SETTINGS = {"ssh_public_key", "ssh_allowed_cidrs", "galaxy_server", "galaxy_server_cidrs", "slurmd_port",
                   "interactive_tool_ports", "extra_ca_certificates", "admin_user", "scratch_mount_point",
                   "name_prefix", "inventory_path"}


def test_shared_settings_are_declared_once():
    core = variables(load_hcl("gpu_nodes"))
    site_type = core["site"]["type"]
    for setting in SHARED_SETTINGS:
        assert re.search(rf"\b{setting}\s*=", site_type), f"{setting} is not an attribute of the core's site"
    for module in CLOUD_MODULES:
        doc = load_hcl(module)
        assert not SHARED_SETTINGS & set(variables(doc)), f"{module} declares a shared setting itself"
        assert variables(doc)["site"]["type"] in ("any", "${any}"), f"{module}: site is the core's to type and check"
        core_call = doc["module"][0]["core"]
        assert core_call["source"] == "../gpu_nodes" and core_call["site"] == "${var.site}", core_call
    for name in ("aws", "openstack"):
        assert not SHARED_SETTINGS & set(variables(example(name))), f"example {name} declares a shared setting"


@pytest.mark.parametrize(("module", "rule", "fields"), [
    ("aws_gpu_nodes", "aws_vpc_security_group_ingress_rule.node",
     {"cidr_ipv4": "cidr", "ip_protocol": "protocol", "from_port": "from_port", "to_port": "to_port"}),
    ("openstack_gpu_nodes", "openstack_networking_secgroup_rule_v2.node",
     {"remote_ip_prefix": "cidr", "protocol": "protocol", "port_range_min": "from_port", "port_range_max": "to_port"}),
])
def test_cloud_modules_open_the_cores_firewall_rules_only(module, rule, fields):
    """The one list of ingress rules is the core's; each cloud makes one rule of each entry, and no other."""
    res = resources(load_hcl(module))
    ingress = [r for r, body in res.items()
               if "ingress" in r or ("secgroup_rule" in r and body.get("direction") != "egress")]
    assert ingress == [rule], ingress
    body = res[rule]
    assert body["for_each"] == "${module.core.firewall_rules}"
    for attribute, field in fields.items():
        assert body[attribute] == f"${{each.value.{field}}}", (attribute, body[attribute])
    assert body.get("direction", "ingress") == "ingress"


def test_openstack_module_structure():
    doc = load_hcl("openstack_gpu_nodes")
    res = resources(doc)
    for needed in ("openstack_compute_instance_v2.node", "openstack_networking_secgroup_v2.node",
                   "openstack_networking_secgroup_rule_v2.node", "openstack_blockstorage_volume_v3.scratch",
                   "openstack_compute_volume_attach_v2.scratch", "openstack_compute_keypair_v2.ansible"):
        assert needed in res, sorted(res)
    instance = res["openstack_compute_instance_v2.node"]
    assert "module.core.user_data" in instance["user_data"]
    # Instances (and their scratch volumes) of the core's checked node specs, but for the nodes
    # made on demand: gxnb-nodes' openstack driver makes those.
    for name in ("openstack_compute_instance_v2.node", "openstack_blockstorage_volume_v3.scratch"):
        assert "module.core.nodes" in res[name]["for_each"] and "!n.on_demand" in res[name]["for_each"], name
    assert "module.core.site.ssh_public_key" in res["openstack_compute_keypair_v2.ansible"]["public_key"]
    core = doc["module"][0]["core"]
    assert "openstack_compute_instance_v2.node" in core["instances"], "the core gets the instances' addresses"
    on_demand = core["on_demand"]
    for needed in ('driver = "openstack"', "cloud = var.cloud_name", "image = var.node_image",
                   "network = var.network_name", "cluster_name = local.name_prefix",
                   'munge_key_store = "${local.name_prefix}-munge-key"',
                   "data.openstack_networking_subnet_v2.nodes"):
        assert needed in " ".join(on_demand.replace("'", '"').split()), (needed, on_demand)
    assert "data.openstack_compute_flavor_v2.on_demand" in json.dumps(core["nodes"]), "cores and memory of the flavor"
    assert "gpu_flavor_pattern" in json.dumps(variables(doc)["nodes"]["validation"])


def test_openstack_node_validation_on_the_example(tf_env, tmp_path):
    """The OpenStack module's own check (GPU flavors) runs for real on its variables.tf alone (no OpenStack
    provider needed), on the OpenStack example's node spec: it passes, a non-GPU flavor does not."""
    shutil.copy(TF / "modules" / "openstack_gpu_nodes" / "variables.tf", tmp_path)
    call = {n: body for block in example("openstack")["module"] for n, body in block.items()}["gpu_nodes"]
    literal = {k: json.loads(f'"{v}"') if isinstance(v, str) else v for k, v in call.items()
               if k not in ("source", "__is_block__") and not (isinstance(v, str) and v.startswith("${"))}
    assert {"nodes", "gpu_flavor_pattern"} <= set(literal), call
    (tmp_path / "example.auto.tfvars.json").write_text(json.dumps({"network_name": "net", "site": {}, **literal}))
    init = terraform(tf_env, tmp_path, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stdout + init.stderr
    plan = terraform(tf_env, tmp_path, "plan", "-input=false")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    bad = '{gpu-1 = {flavor = "m1.large", gpu_count = 1, image = "Debian 12"}}'
    plan = terraform(tf_env, tmp_path, "plan", "-input=false", f"-var=nodes={bad}")
    message = " ".join((plan.stdout + plan.stderr).split())
    assert plan.returncode != 0, message
    assert "nodes: every flavor must be a GPU flavor" in message and "gpu-1=m1.large" in message, message


def example(name: str) -> dict:
    """An example root module (all its .tf files)."""
    return load_folder(TF / "examples" / name)


@pytest.mark.parametrize("name", ["aws", "openstack"])
def test_examples_are_one_module_call_that_writes_the_inventory(name):
    """Provider, cloud-specific inputs, one `site`, one call of the cloud module (whose core writes the inventory
    file through modules/inventory_file), the inventory path out. No shared file to keep in step."""
    folder = TF / "examples" / name
    assert sorted(p.name for p in folder.glob("*.tf")) == ["main.tf"], "an example is its main.tf"
    doc = example(name)
    assert not resources(doc), "the modules make everything"
    called = {n: body for block in doc["module"] for n, body in block.items()}
    assert list(called) == ["gpu_nodes"] and called["gpu_nodes"]["source"] == f"../../modules/{name}_gpu_nodes"
    site = called["gpu_nodes"]["site"]
    assert "var.site" in site and f"../../../inventory/generated/{name}.yml" in site, site
    outputs = {n: body for block in doc["output"] for n, body in block.items()}
    assert outputs["inventory_path"]["value"] == "${module.gpu_nodes.core.inventory_path}"
    core = {n: body for block in load_hcl("gpu_nodes")["module"] for n, body in block.items()}
    assert core["inventory_file"]["source"] == "../inventory_file"
    assert "var.site.inventory_path" in core["inventory_file"]["count"]


def test_no_ingress_open_to_the_world_in_any_module():
    for module in CLOUD_MODULES:
        for name, body in resources(load_hcl(module)).items():
            if "ingress" in name or "secgroup_rule" in name:
                assert "0.0.0.0/0" not in json.dumps(body), f"{module}: {name} opens to the world"


@pytest.mark.parametrize("module", ["gpu_nodes", "aws_gpu_nodes", "openstack_gpu_nodes", "inventory_file"])
def test_checkov(module):
    checkov = REPO / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.skip("checkov not installed (scripts/host-setup.sh with the test extras installs it)")
    result = subprocess.run([checkov, "-d", TF / "modules" / module, "--framework", "terraform", "--compact",
                             "--quiet", "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=600)
    report = json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else {}
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert not failed, [(c["check_id"], c["resource"]) for c in failed]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
