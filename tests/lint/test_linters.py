"""Linters over the whole repository: ansible-lint (production profile, offline), yamllint,
ruff, terraform fmt, and shell syntax of the harness scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

BIN = os.path.dirname(sys.executable)


def run(cmd, **kw):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"))
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, **kw)


def test_ansible_lint_production_profile():
    result = run([f"{BIN}/ansible-lint", "--offline", "--profile", "production", "ansible/", "roles/"])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def test_yamllint():
    result = run([f"{BIN}/yamllint", "-s", "."])
    assert result.returncode == 0, result.stdout[-6000:]


def test_ruff():
    result = run([f"{BIN}/ruff", "check", "."])
    assert result.returncode == 0, result.stdout[-6000:]


def test_terraform_fmt():
    if not shutil.which("terraform"):
        pytest.skip("terraform not installed")
    if not any((REPO / "terraform").rglob("*.tf")):
        pytest.skip("no Terraform modules yet")
    result = run(["terraform", "fmt", "-check", "-recursive", "-diff", "terraform"])
    assert result.returncode == 0, result.stdout[-6000:]


@pytest.mark.parametrize("script", sorted((REPO / "scripts").glob("*.sh")) + [REPO / ".ci" / "run"],
                         ids=lambda p: p.name)
def test_shell_scripts_parse(script):
    result = run(["bash", "-n", str(script)])
    assert result.returncode == 0, result.stderr
