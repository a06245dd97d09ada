"""Each role's Molecule scenario (create, converge, idempotence, testinfra verify, destroy)
on the systemd Debian image, driven by the real Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# (role, scenario) for every roles/<role>/molecule/<scenario>/molecule.yml
SCENARIOS = sorted((p.parents[2].name, p.parent.name) for p in (REPO / "roles").glob("*/molecule/*/molecule.yml"))
LOGS = REPO / ".deploy-local" / "test-results"


@pytest.mark.docker
@pytest.mark.parametrize(("role", "scenario"), SCENARIOS, ids=[f"{r}-{s}" for r, s in SCENARIOS])
def test_molecule_scenario(role, scenario):
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
               ANSIBLE_NOCOLOR="1", NO_COLOR="1", PY_COLORS="0", ANSIBLE_FORCE_COLOR="0")
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"molecule-{role}-{scenario}.log"
    with log.open("w") as out:
        result = subprocess.run([f"{os.path.dirname(sys.executable)}/molecule", "test", "-s", scenario],
                                cwd=REPO / "roles" / role, stdout=out, stderr=subprocess.STDOUT,
                                env=env, timeout=2400)
    failure = f"molecule test -s {scenario} for {role} failed; log: {log}\n"
    assert result.returncode == 0, failure + log.read_text()[-5000:]


def test_every_role_has_a_scenario():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks").is_dir())
    missing = [r for r in roles if r not in {role for role, _ in SCENARIOS}]
    # notebook_image is converged, re-run for idempotence and verified end to end by the local
    # deployment in the same test command; its own scenario is still to come.
    assert set(missing) <= {"notebook_image"}, missing
