"""Ansible from the tests, one way: this virtualenv's commands, the repository's ansible.cfg,
no colours, run from the repository root (where the inventories' relative paths start)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Every host of an inventory is this machine, with this Python (preflight-style runs).
LOCAL_CONNECTION = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def ansible_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **extra)


def _extra_vars_args(extra_vars: Mapping | Sequence[str] | None) -> list[str]:
    """A mapping goes as one JSON -e (types kept); strings as given (key=value, @file, JSON)."""
    if not extra_vars:
        return []
    if isinstance(extra_vars, Mapping):
        return ["-e", json.dumps(dict(extra_vars))]
    return [arg for item in extra_vars for arg in ("-e", item)]


def ansible_playbook(
    playbook: str | os.PathLike,
    *args: str,
    inventory: str | os.PathLike = "inventory/local",
    extra_vars: Mapping | Sequence[str] | None = None,
    timeout: int = 300,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """ansible-playbook -i INVENTORY PLAYBOOK [-e ...] ARGS; the result, never raised."""
    command = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *_extra_vars_args(extra_vars), *args]
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=ansible_env(**(env or {}))
    )


def ansible_adhoc(
    pattern: str, *args: str, inventory: str | os.PathLike = "inventory/local", timeout: int = 120
) -> subprocess.CompletedProcess:
    """ansible -i INVENTORY PATTERN ARGS, with the playbooks' folder (group_vars, plugins) in view."""
    command = [str(BIN / "ansible"), "-i", str(inventory), pattern, "--playbook-dir", "ansible", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=ansible_env())


# Secrets good enough for site.yml's preflight (none of them a real one).
PREFLIGHT_SECRETS = {
    "galaxy_admin_password": "a-good-password",
    "galaxy_bootstrap_admin_api_key": "0123456789abcdef0123",
    "galaxy_id_secret": "0123456789abcdef0123456789abcdef",
    "gxnb_slurm_munge_key": "a-munge-key-of-at-least-32-characters",
    "gxnb_database_password": "a-database-password-0123",
    "gxnb_broker_password": "a-broker-password-0123",
}


def site_preflight(*extra: str, inventory: str | os.PathLike = "inventory/local",
                   secrets: Mapping[str, str] = PREFLIGHT_SECRETS) -> subprocess.CompletedProcess:
    """site.yml's preflight play, every host of INVENTORY being this machine (preflight gathers the
    cluster's facts with this Python), with SECRETS; each of EXTRA is one more -e, after them (it wins)."""
    extra_args = [arg for item in extra for arg in ("-e", item)]
    return ansible_playbook("ansible/site.yml", "--tags", "preflight", *extra_args, inventory=inventory,
                            extra_vars={**LOCAL_CONNECTION, **secrets})


def filter_plugin(name: str):
    """One of ansible/filter_plugins/ as a Python module (its functions are plain Python)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "ansible" / "filter_plugins" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def output(result: subprocess.CompletedProcess, tail: int = 3000) -> str:
    """Standard output and error together, the end of it (for assertion messages)."""
    return (result.stdout + result.stderr)[-tail:]
