"""Terraform: core module under `terraform test`; the AWS module and example offline with a mock
provider (provider from this machine's filesystem mirror, the registry elsewhere); the OpenStack
module with fmt, python-hcl2 structure checks and checkov; the generated inventory with Ansible."""

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


def test_no_ingress_open_to_the_world_in_any_module():
    for module in ("aws_gpu_nodes", "openstack_gpu_nodes"):
        for name, body in resources(load_hcl(module)).items():
            if "ingress" in name or "secgroup_rule" in name:
                assert "0.0.0.0/0" not in json.dumps(body), f"{module}: {name} opens to the world"


@pytest.mark.parametrize("module", ["gpu_nodes", "aws_gpu_nodes", "openstack_gpu_nodes"])
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
