"""The repository's Ansible runs its modules through Mitogen (ansible/strategy_plugins/gxnb_linear.py):
one Python interpreter per host for the whole run instead of one per task, which halves a deploy
that changes nothing. Where the mitogen package is missing the same playbooks still run, with
Ansible's own strategy and a warning that says how to get it back."""

from __future__ import annotations

import pathlib

from tests.support.ansible_run import LOCAL_CONNECTION, ansible_playbook, output

# Two tasks that each report the process their command runs under: the module's interpreter.
PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: First task's interpreter
      ansible.builtin.shell: echo $PPID
      register: first
      changed_when: false
    - name: Second task's interpreter
      ansible.builtin.shell: echo $PPID
      register: second
      changed_when: false
    - name: Interpreters
      ansible.builtin.debug:
        msg: "interpreters {{ first.stdout }} {{ second.stdout }}"
"""


def interpreters(tmp_path: pathlib.Path, env: dict | None = None) -> tuple[list[str], str]:
    playbook = tmp_path / "interpreters.yml"
    playbook.write_text(PLAYBOOK)
    result = ansible_playbook(playbook, inventory="localhost,", extra_vars=LOCAL_CONNECTION, env=env, timeout=120)
    assert result.returncode == 0, output(result)
    line = next(line for line in result.stdout.splitlines() if "msg" in line and "interpreters " in line)
    return line.split("interpreters", 1)[1].strip(' "').split(), result.stdout + result.stderr


def test_every_task_of_a_run_runs_in_one_interpreter_per_host(tmp_path):
    pids, text = interpreters(tmp_path)
    assert len(pids) == 2 and pids[0] == pids[1], f"each task started its own interpreter: {pids}\n{text[-2000:]}"
    assert "Mitogen is not installed" not in text


def test_without_mitogen_the_playbooks_run_with_ansibles_strategy_and_say_so(tmp_path):
    # A mitogen package that cannot be imported, ahead of the real one.
    shadow = tmp_path / "shadow" / "ansible_mitogen"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    pids, text = interpreters(tmp_path, env={"PYTHONPATH": str(shadow.parent)})
    assert len(pids) == 2 and pids[0] != pids[1], f"one interpreter for both tasks without Mitogen: {pids}"
    assert "Mitogen is not installed (hidden by the test)" in text, text[-2000:]
