"""Linters over the whole repository: ansible-lint (production profile, offline), yamllint,
ruff (the Python programs without a .py ending too), terraform fmt, shell syntax of the
harness scripts, shellcheck on every shell script (role files and templates included) and
hadolint on every Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO
from tests.support.ansible_run import BIN, ansible_env


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=ansible_env(), **kw)


def test_ansible_lint_production_profile():
    result = run([f"{BIN}/ansible-lint", "--offline", "--profile", "production", "ansible/", "roles/"])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def test_yamllint():
    result = run([f"{BIN}/yamllint", "-s", "."])
    assert result.returncode == 0, result.stdout[-6000:]


def test_ruff():
    result = run([f"{BIN}/ruff", "check", "."])
    assert result.returncode == 0, result.stdout[-6000:]


def test_ruff_reads_the_python_programs_without_a_py_ending():
    listed = set(run([f"{BIN}/ruff", "check", ".", "--show-files"]).stdout.split())
    missing = [name for name in tracked_scripts("python") if str(REPO / name) not in listed]
    assert not missing, f"Python programs ruff does not check (add them to extend-include in pyproject.toml): {missing}"


def tracked_scripts(language: str) -> list[str]:
    """Tracked files in the language ("sh": ending in .sh or with a sh/bash first line; "python": a python
    first line without a .py ending)."""
    names = run(["git", "ls-files"], check=True).stdout.splitlines()
    found = []
    for name in names:
        path = REPO / name
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as handle:
            first_line = handle.readline(200).decode(errors="replace")
        if language == "sh" and (name.endswith(".sh") or re.match(r"#!.*\b(ba)?sh\b", first_line)):
            found.append(name)
        if language == "python" and not name.endswith(".py") and re.match(r"#!.*python", first_line):
            found.append(name)
    return found


def test_shellcheck_on_every_shell_script():
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is not installed (scripts/host-setup.sh installs it with the test extras)")
    scripts = tracked_scripts("sh")
    assert "scripts/run-tests.sh" in scripts and "roles/slurm/files/slurm-job-docker" in scripts
    # SC1091: a sourced file named at run time ("$(dirname "$0")/lib.sh") cannot be followed.
    result = run(["shellcheck", "-e", "SC1091", "-f", "gcc", *scripts])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_hadolint_on_every_dockerfile():
    dockerfiles = sorted(str(p.relative_to(REPO)) for p in (REPO / "container").rglob("Dockerfile*"))
    assert "container/Dockerfile" in dockerfiles and "container/base/Dockerfile.systemd" in dockerfiles
    # .hadolint.yaml: the rules left out, and why; any finding fails (failure-threshold: info).
    result = run([f"{BIN}/hadolint", "--no-color", *dockerfiles])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


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
