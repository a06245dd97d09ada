"""The galaxy role's Slurm runner (roles/galaxy/files/gxnb_slurm_runner.py) inside Galaxy's own
runner classes: what a user is told when Slurm ends a job that Galaxy sees as failed. The
local cluster's node-loss test (tests/e2e/test_cluster.py) runs it for real."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

pytest.importorskip("galaxy.jobs.runners.cli")
spec = importlib.util.spec_from_file_location("gxnb_slurm_runner", REPO / "roles/galaxy/files/gxnb_slurm_runner.py")
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)

# What Slurm 22.05's `scontrol -o show job` printed for a job whose node was stopped.
NODE_FAIL_LINE = (
    "JobId=57 JobName=g12_run_jupyter_job_admin_example_org UserId=galaxy(999) GroupId=galaxy(999) "
    "Priority=1 Account=(null) QOS=(null) JobState=NODE_FAIL Reason=None Dependency=(null) Requeue=0 "
    "Restarts=0 BatchFlag=1 ExitCode=0:0 RunTime=00:01:13 TimeLimit=12:00:00 NodeList=gxnb-local-node2 "
    "BatchHost=gxnb-local-node2 NumNodes=1 NumCPUs=2 TRES=cpu=2,mem=4G,node=1,billing=2,gres/gpu=1"
)


def test_a_lost_node_is_named_in_words_a_user_understands():
    job = runner.parse_scontrol(NODE_FAIL_LINE)
    assert (job["JobState"], job["NodeList"]) == ("NODE_FAIL", "gxnb-local-node2")
    message = runner.failure_message(job)
    assert message.startswith("The job node gxnb-local-node2 stopped answering while this job ran"), message
    assert "Run it again" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [({"JobState": "TIMEOUT", "TimeLimit": "12:00:00"}, "longer than its time limit (12:00:00)"),
     ({"JobState": "OUT_OF_MEMORY"}, "more memory than it asked for"),
     ({"JobState": "CANCELLED", "Reason": "None"}, "cancelled in Slurm, outside Galaxy"),
     ({"JobState": "FAILED"}, None), ({}, None)],
)  # fmt: skip
def test_other_endings_get_their_own_words_or_galaxys(fields, expected):
    message = runner.failure_message(fields)
    assert (message is None) if expected is None else (expected in message), message


class FakeShell:
    def __init__(self, stdout: str, returncode: int = 0):
        self.stdout, self.returncode, self.commands = stdout, returncode, []

    def execute(self, command):
        self.commands.append(command)
        return SimpleNamespace(stdout=self.stdout, stderr="", returncode=self.returncode)


def failed_job(monkeypatch, shell: FakeShell, fail_message=None, runner_instance=None):
    """mark_as_failed of the runner on a job in Slurm; returns the state handed to Galaxy's own."""
    handed = []
    monkeypatch.setattr(runner.ShellJobRunner, "mark_as_failed", lambda self, state: handed.append(state))
    instance = runner_instance or object.__new__(runner.SlurmShellJobRunner)
    instance.parse_destination_params = lambda params: ({}, {})
    instance.get_cli_plugins = lambda shell_params, job_params: (shell, None)
    state = SimpleNamespace(job_id="57", job_destination=SimpleNamespace(params={}))
    if fail_message is not None:
        state.fail_message = fail_message
    instance.mark_as_failed(state)
    assert handed == [state]
    return state


def test_galaxy_fails_the_job_with_slurms_reason(monkeypatch):
    shell = FakeShell(NODE_FAIL_LINE + "\n")
    state = failed_job(monkeypatch, shell)
    assert shell.commands == ["scontrol -o show job 57"]
    assert state.fail_message.startswith("The job node gxnb-local-node2 stopped answering")


def test_a_reason_galaxy_already_has_is_kept_and_a_silent_slurm_changes_nothing(monkeypatch):
    kept = failed_job(monkeypatch, FakeShell(NODE_FAIL_LINE), fail_message="Tool failed due to insufficient memory.")
    assert kept.fail_message == "Tool failed due to insufficient memory."
    gone = failed_job(monkeypatch, FakeShell("slurm_load_jobs error: Invalid job id specified", returncode=1))
    assert not hasattr(gone, "fail_message")


@pytest.mark.parametrize(
    ("scontrol", "expected"),
    [(NODE_FAIL_LINE, "error"), ("JobId=5 JobState=COMPLETED ExitCode=0:0", "ok"),
     ("JobId=5 JobState=TIMEOUT", "error"), ("JobId=5 JobState=CANCELLED", "error"),
     ("JobId=5 JobState=RUNNING", "running"), ("JobId=5 JobState=PENDING Reason=Resources", "queued")],
)  # fmt: skip
def test_a_job_that_left_squeues_list_gets_its_state_from_scontrol(scontrol, expected):
    """squeue lists pending and running jobs only; without accounting Galaxy took every other
    job as finished well, a lost node's job included."""
    plugin = runner.ScontrolStatus(SimpleNamespace(parse_single_status=lambda *a: pytest.fail("Galaxy's guess")))
    shell = FakeShell(scontrol + "\n")
    assert plugin.parse_single_status("JOBID ST\n", "5", shell) == expected
    assert shell.commands == ["scontrol -o show job 5"]


def test_a_job_in_squeues_list_and_one_slurm_forgot_keep_galaxys_answer():
    plugin = runner.ScontrolStatus(SimpleNamespace(parse_single_status=lambda status, job_id, shell: "galaxy's"))
    assert plugin.parse_single_status("JOBID ST\n5 R\n", "5", FakeShell("")) == "galaxy's"
    forgotten = FakeShell("", returncode=1)
    forgotten.stdout = "slurm_load_jobs error: Invalid job id specified"
    assert plugin.parse_single_status("JOBID ST\n", "5", forgotten) == "galaxy's"
    unreachable = FakeShell("", returncode=1)  # slurmctld did not answer: ask again later
    assert plugin.parse_single_status("JOBID ST\n", "5", unreachable) == "running"


def test_a_failure_the_status_check_found_is_explained_without_asking_slurm_again(monkeypatch):
    shell = FakeShell(NODE_FAIL_LINE + "\n")
    instance = object.__new__(runner.SlurmShellJobRunner)
    status = runner.ScontrolStatus(SimpleNamespace(), instance._slurm_ended_jobs)
    assert status.parse_single_status("JOBID ST\n", "57", shell) == "error"
    state = failed_job(monkeypatch, shell, runner_instance=instance)
    assert shell.commands == ["scontrol -o show job 57"]  # once, by the status check
    assert state.fail_message.startswith("The job node gxnb-local-node2 stopped answering")
    assert instance._slurm_ended_jobs == {}  # nothing kept once the job is failed
