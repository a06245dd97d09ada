"""Terraform: core and inventory_file modules under `terraform test`; the AWS module and example offline
with a mock provider (provider from this machine's filesystem mirror, the registry elsewhere); the OpenStack
module with fmt, python-hcl2 structure checks, its variables' validation and checkov; the examples' shared
inventory wiring; the generated inventory with Ansible."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import hcl2
import pytest

from tests.conftest import REPO

TF = REPO / "terraform"
MIRROR_CANDIDATES = [os.environ.get("GXNB_TF_MIRROR", ""), "/opt/tf-plugins",
                     str(pathlib.Path.home() / ".terraform.d" / "plugins"), "/usr/share/terraform/plugins"]
BIN = pathlib.Path(sys.executable).parent

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not installed")


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


def init_and_test(env: dict, module: pathlib.Path, *test_args: str) -> str:
    init = terraform(env, module, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
    test = terraform(env, module, "test", *test_args)
    assert test.returncode == 0, test.stdout[-6000:] + test.stderr[-3000:]
    return test.stdout


def test_fmt(tf_env):
    result = terraform(tf_env, TF, "fmt", "-check", "-recursive", "-diff")
    assert result.returncode == 0, result.stdout


def test_core_module(tf_env):
    out = init_and_test(tf_env, TF / "modules" / "gpu_nodes")
    for run in ("inventory_has_site_groups_and_gpu_counts", "user_data_holds_no_secret", "zero_gpus_is_refused",
                "ssh_open_to_the_world_is_refused", "private_key_instead_of_public_is_refused"):
        assert f'run "{run}"... pass' in out, out


def test_aws_module_offline_with_mock_provider(tf_env):
    out = init_and_test(tf_env, TF / "modules" / "aws_gpu_nodes")
    for run in ("nodes_are_locked_down", "non_gpu_instance_type_is_refused", "ssh_open_to_the_world_is_refused",
                "zero_gpus_is_refused"):
        assert f'run "{run}"... pass' in out, out


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
    path = tmp_path_factory.mktemp("inventory") / "aws.yml"
    init_and_test(tf_env, TF / "examples" / "aws", f"-var=inventory_path={path}")
    assert path.exists(), "terraform apply did not write the inventory"
    return path


def test_apply_writes_an_inventory_ansible_reads(generated_inventory):
    result = subprocess.run([BIN / "ansible-inventory", "-i", generated_inventory, "--list"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    assert inventory["gpu_nodes"]["hosts"] == ["gpu-1"]
    assert inventory["job_nodes"]["hosts"] == ["gpu-1"]
    assert inventory["galaxy_servers"]["hosts"] == ["galaxy"]
    assert inventory["_meta"]["hostvars"]["gpu-1"]["gxnb_gpu_count"] == 1


def test_site_yml_groups_resolve_on_the_generated_inventory(generated_inventory):
    result = subprocess.run([BIN / "ansible-playbook", "-i", generated_inventory, "--list-hosts", "ansible/site.yml"],
                            cwd=REPO, capture_output=True, text=True,
                            env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg")))
    assert result.returncode == 0, result.stdout + result.stderr
    plays = result.stdout.split("play #")[1:]
    hosts_of = {p.splitlines()[0]: p for p in plays}
    gpu_play = next(p for title, p in hosts_of.items() if "GPU nodes" in title)
    galaxy_play = next(p for title, p in hosts_of.items() if "Galaxy servers" in title)
    job_play = next(p for title, p in hosts_of.items() if "Job nodes" in title)
    assert "gpu-1" in gpu_play and "gpu-1" in job_play
    assert "galaxy" in galaxy_play and "gpu-1" not in galaxy_play


def unquote(value):
    """python-hcl2 8 keeps HCL's quotes on names and strings: drop them."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_hcl(module: str) -> dict:
    merged: dict = {}
    for tf_file in sorted((TF / "modules" / module).glob("*.tf")):
        with tf_file.open() as fh:
            for key, value in unquote(hcl2.load(fh)).items():
                merged.setdefault(key, []).extend(value)
    return merged


def resources(doc: dict) -> dict:
    found = {}
    for block in doc.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                found[f"{rtype}.{name}"] = body
    return found


def variables(doc: dict) -> dict:
    return {name: body for block in doc.get("variable", []) for name, body in block.items()}


def test_openstack_module_structure():
    doc = load_hcl("openstack_gpu_nodes")
    res = resources(doc)
    for needed in ("openstack_compute_instance_v2.node", "openstack_networking_secgroup_v2.node",
                   "openstack_networking_secgroup_rule_v2.ssh", "openstack_blockstorage_volume_v3.scratch",
                   "openstack_compute_volume_attach_v2.scratch", "openstack_compute_keypair_v2.ansible"):
        assert needed in res, sorted(res)
    ssh = res["openstack_networking_secgroup_rule_v2.ssh"]
    assert ssh["port_range_min"] == 22 and ssh["port_range_max"] == 22
    assert "var.ssh_allowed_cidrs" in ssh["for_each"]
    instance = res["openstack_compute_instance_v2.node"]
    assert "module.core.user_data" in instance["user_data"]
    core = doc["module"][0]["core"]
    assert core["source"] == "../gpu_nodes"
    variable = variables(doc)
    validations = json.dumps(variable["ssh_allowed_cidrs"]["validation"]) + json.dumps(variable["nodes"]["validation"])
    assert "0.0.0.0/0" in validations and "gpu_count" in validations


def test_openstack_interactive_tool_ports_are_the_aws_modules(tf_env, tmp_path):
    """The rule opens var.interactive_tool_ports, declared as in the AWS module; the variables' validation runs
    for real on variables.tf alone (no OpenStack provider needed), on the OpenStack example's node spec."""
    rule = resources(load_hcl("openstack_gpu_nodes"))["openstack_networking_secgroup_rule_v2.interactive_tools"]
    assert "var.interactive_tool_ports.from" in rule["port_range_min"]
    assert "var.interactive_tool_ports.to" in rule["port_range_max"]
    declared = {m: variables(load_hcl(m))["interactive_tool_ports"] for m in ("aws_gpu_nodes", "openstack_gpu_nodes")}
    assert declared["openstack_gpu_nodes"] == declared["aws_gpu_nodes"]
    assert declared["openstack_gpu_nodes"]["validation"]

    # The variables alone, given the OpenStack example's literal arguments: they pass, bad port ranges do not.
    shutil.copy(TF / "modules" / "openstack_gpu_nodes" / "variables.tf", tmp_path)
    call = {n: body for block in example("openstack")["module"] for n, body in block.items()}["gpu_nodes"]
    literal = {k: json.loads(f'"{v}"') if isinstance(v, str) else v for k, v in call.items()
               if k not in ("source", "__is_block__") and not (isinstance(v, str) and v.startswith("${"))}
    assert "nodes" in literal, call
    (tmp_path / "example.auto.tfvars.json").write_text(json.dumps({
        "network_name": "net", "ssh_public_key": "ssh-ed25519 AAAA ansible", "ssh_allowed_cidrs": ["203.0.113.10/32"],
        **literal}))
    init = terraform(tf_env, tmp_path, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stdout + init.stderr
    plan = terraform(tf_env, tmp_path, "plan", "-input=false", "-var=interactive_tool_ports={from = 40000, to = 40999}")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    for bad in ("{from = 60999, to = 32768}", "{from = 22, to = 60999}", "{from = 32768, to = 70000}",
                "{from = 32768.5, to = 60999}"):
        plan = terraform(tf_env, tmp_path, "plan", "-input=false", f"-var=interactive_tool_ports={bad}")
        message = " ".join((plan.stdout + plan.stderr).split())
        assert plan.returncode != 0 and "interactive_tool_ports: need whole port numbers" in message, (bad, message)


def example(name: str) -> dict:
    """An example root module, its common.tf included."""
    merged: dict = {}
    for tf_file in sorted((TF / "examples" / name).glob("*.tf")):
        with tf_file.open() as fh:
            for key, value in unquote(hcl2.load(fh)).items():
                merged.setdefault(key, []).extend(value)
    return merged


@pytest.mark.parametrize("name", ["aws", "openstack"])
def test_examples_write_the_inventory_with_the_shared_module(name):
    common = TF / "examples" / name / "common.tf"
    assert common.read_text() == (TF / "examples" / "aws" / "common.tf").read_text(), "the examples' common.tf differ"
    doc = example(name)
    assert not [r for r in resources(doc) if r.startswith("terraform_data.")], "the inventory_file module writes it"
    called = {n: body for block in doc["module"] for n, body in block.items()}
    assert called["inventory_file"]["source"] == "../../modules/inventory_file"
    assert "module.gpu_nodes.inventory_yaml" in called["inventory_file"]["inventory_yaml"]
    assert called["gpu_nodes"]["source"] == f"../../modules/{name}_gpu_nodes"


def test_no_ingress_open_to_the_world_in_any_module():
    for module in ("aws_gpu_nodes", "openstack_gpu_nodes"):
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
