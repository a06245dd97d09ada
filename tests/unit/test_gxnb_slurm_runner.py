"""The galaxy role's Slurm runner (roles/galaxy/files/gxnb_slurm_runner.py) inside Galaxy's own
runner classes: what a user is told when Slurm ends a job that Galaxy sees as failed. The
local cluster's node-loss test (tests/e2e/test_cluster.py) runs it for real."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
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
    # The job, then its node: one that was up (not one power saving could not start).
    assert shell.commands == ["scontrol -o show job 57", "scontrol -o show node gxnb-local-node2"]
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
    assert shell.commands.count("scontrol -o show job 57") == 1  # once, by the status check
    assert state.fail_message.startswith("The job node gxnb-local-node2 stopped answering")
    assert instance._slurm_ended_jobs == {}  # nothing kept once the job is failed


def test_a_job_whose_node_is_being_started_waits_and_its_user_is_told_so_until_it_runs():
    """squeue's CF (Slurm's power saving starts the job's node): Galaxy's own plugin raises on it."""
    galaxys = runner.ScontrolStatus(SimpleNamespace(parse_status=lambda status, ids: {
        line.split()[0]: {"PD": "queued", "R": "running"}[line.split()[1]] for line in status.splitlines()[1:]}))
    instance = object.__new__(runner.SlurmShellJobRunner)
    status = runner.ScontrolStatus(galaxys, instance._slurm_ended_jobs, instance._slurm_squeue_states)
    squeue = "JOBID ST\n7 CF\n8 PD\n9 R\n"
    assert status.parse_status(squeue, ["7", "8", "9"]) == {"7": "queued", "8": "queued", "9": "running"}

    committed = []
    output = SimpleNamespace(dataset=SimpleNamespace(info=None))
    job = SimpleNamespace(id=70, info=None, output_datasets=[output])
    session = SimpleNamespace(add=lambda item: None, commit=lambda: committed.append(job.info))
    wrapper = SimpleNamespace(get_job=lambda: job, sa_session=session)
    job_state = SimpleNamespace(job_id="7", job_wrapper=wrapper, job_destination=SimpleNamespace(params={}))
    instance.watched = [job_state]
    instance.parse_destination_params = lambda params: ({}, {})
    shell = ScriptedShell({
        "scontrol -o show job 7": "JobId=7 JobState=CONFIGURING NodeList=gxnb-local-node2\n",
        "scontrol -o show node gxnb-local-node2": "NodeName=gxnb-local-node2 State=DOWN+POWERED_DOWN "
                                                  "Reason=gxnb-nodes could not start it: no helper [slurm@T]\n"})
    instance.get_cli_plugins = lambda shell_params, job_params: (shell, None)
    instance.tell_who_waits_for_a_node()
    instance.tell_who_waits_for_a_node()  # said once
    assert committed == [output.dataset.info] and output.dataset.info.startswith(
        "Waiting for the job node gxnb-local-node2 to start")
    status.parse_status("JOBID ST\n7 PD\n", ["7"])  # the node did not come: Slurm requeued the job
    instance.tell_who_waits_for_a_node()
    assert output.dataset.info == ("The job node gxnb-local-node2 did not start (gxnb-nodes could not start it: "
                                   "no helper [slurm@T]). The job waits for another node, or for this one to be "
                                   "started again.")  # fmt: skip
    status.parse_status("JOBID ST\n7 R\n", ["7"])  # a node took it
    instance.tell_who_waits_for_a_node()
    assert (job.info, output.dataset.info, len(committed)) == (None, None, 3)


def test_a_job_whose_node_made_for_it_never_joined_fails_saying_so_with_the_nodes_reason(monkeypatch):
    """Jobs are not requeued (--no-requeue): a node Slurm's power saving could not start ends the job."""
    job_line = NODE_FAIL_LINE.replace("RunTime=00:01:13", "RunTime=00:00:01")  # counted from its allocation
    shell = ScriptedShell({
        "scontrol -o show job 57": job_line + "\n",
        "scontrol -o show node gxnb-local-node2": (
            "NodeName=gxnb-local-node2 State=DOWN+POWERED_DOWN "
            "Reason=gxnb-nodes could not start it: the local node helper does not answer [slurm@T]\n")})
    state = failed_job(monkeypatch, shell)
    assert state.fail_message == (
        "The job node gxnb-local-node2 was to be started for this job but did not join the cluster (gxnb-nodes could "
        "not start it: the local node helper does not answer [slurm@T]), so the job could not run. Run it again: "
        "Slurm sends new jobs to the nodes that are up or can be started.")  # fmt: skip


# Secrets, entry points and the working folder's limit: what the runner adds to keep users' job
# containers away from what they must not reach (tests/e2e/test_session_takeover.py runs it for real).


class ScriptedShell:
    """A shell whose commands answer from a table (command -> stdout); others fail."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.commands = answers, []

    def execute(self, command):
        self.commands.append(command)
        out = self.answers.get(command)
        return SimpleNamespace(stdout=out or "", stderr="", returncode=0 if out is not None else 1)


def test_secrets_are_files_only_galaxys_user_reads_and_go_when_the_job_ends(tmp_path):
    folder = runner.write_job_secrets(str(tmp_path), {"api_key": "k" * 32, "session_url": "https://a-b.ep.x/"})
    assert (tmp_path / "gxnb-secrets" / "api_key").read_text() == "k" * 32
    assert oct((tmp_path / "gxnb-secrets").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "gxnb-secrets" / "api_key").stat().st_mode & 0o777) == "0o600"
    assert folder == str(tmp_path / "gxnb-secrets")
    runner.remove_job_secrets(str(tmp_path))
    assert not (tmp_path / "gxnb-secrets").exists()
    assert runner.write_job_secrets(str(tmp_path), {}, "other") == str(tmp_path / "other")  # mounted even when empty


@pytest.mark.parametrize("accounting", ["answers", "fails"])
def test_a_gpu_session_gets_its_users_gpu_use_and_a_failing_accounting_never_stops_the_launch(monkeypatch, accounting):
    asked = []

    def usage_summary(user, gres):
        asked.append((user.id, gres))
        if accounting == "fails":
            raise RuntimeError("slurmdbd is down")
        return {"used_gpu_hours": 1.5, "quota_gpu_hours": 5.0, "job_gpus": 0.25}

    monkeypatch.setitem(__import__("sys").modules, "gxnb_accounting", SimpleNamespace(usage_summary=usage_summary))
    job = SimpleNamespace(user=SimpleNamespace(id=4), interactivetool_entry_points=[])
    wrapper = SimpleNamespace(get_job=lambda: job, job_destination=SimpleNamespace(
        params={"gxnb_job_secrets": "gpu_usage", "job_--gres": "shard:1"}))  # fmt: skip
    secrets = object.__new__(runner.SlurmShellJobRunner).job_secrets(wrapper)
    assert asked == [(4, "shard:1")]
    if accounting == "answers":
        assert json.loads(secrets[runner.GPU_USAGE_FILE]) == {"used_gpu_hours": 1.5, "quota_gpu_hours": 5.0,
                                                              "job_gpus": 0.25}  # fmt: skip
    else:
        assert secrets == {}
    # A job without GPUs (no gres) gets no usage file, and accounting is not asked.
    wrapper.job_destination.params["job_--gres"] = ""
    assert object.__new__(runner.SlurmShellJobRunner).job_secrets(wrapper) == {} and len(asked) == 1


def test_a_secret_is_never_written_through_a_link(tmp_path):
    (tmp_path / "gxnb-secrets").mkdir()
    (tmp_path / "gxnb-secrets" / "api_key").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        runner.write_job_secrets(str(tmp_path), {"api_key": "k"})
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize(
    ("subdomain", "path", "expected"),
    [("k1-t1.ep.interactivetool", "/", "https://k1-t1.ep.interactivetool.localhost:8443/"),
     (None, "/interactivetool/ep/k1/t1/", "https://localhost:8443/interactivetool/ep/k1/t1/")],
)  # fmt: skip
def test_a_sessions_url_is_the_one_galaxy_hands_out(subdomain, path, expected):
    assert runner.session_url("https://localhost:8443", subdomain, path) == expected


def session_job(tmp_path, ports: dict | None = None, produces_entry_points: bool = True):
    """A running interactive-tool job whose container monitor wrote `ports` (None: not yet)."""
    if ports is not None:
        (tmp_path / "container_runtime.json").write_text(json.dumps(ports))
    configured = []
    job = SimpleNamespace(id=7, all_entry_points_configured=False)
    wrapper = SimpleNamespace(working_directory=str(tmp_path), get_job=lambda: job,
                              tool=SimpleNamespace(produces_entry_points=produces_entry_points))  # fmt: skip
    instance = object.__new__(runner.SlurmShellJobRunner)
    instance.app = SimpleNamespace(interactivetool_manager=SimpleNamespace(
        configure_entry_points=lambda job, ports: configured.append(json.loads(json.dumps(ports)))))  # fmt: skip
    instance.parse_destination_params = lambda params: ({}, {})
    instance.work_queue = SimpleNamespace(put=lambda item: configured.append(("queued", item[0].__name__)))
    instance.watched = []
    state = SimpleNamespace(job_id="57", job_wrapper=wrapper, job_destination=SimpleNamespace(params={}), running=True)
    return instance, state, configured


SLURM_ANSWERS = {
    "scontrol -o show job 57": "JobId=57 JobState=RUNNING NodeList=gxnb-local-node1 BatchHost=gxnb-local-node1\n",
    "scontrol -o show node gxnb-local-node1": "NodeName=gxnb-local-node1 NodeAddr=172.30.0.11 State=MIXED\n",
}
MONITOR_PORTS = {"8888": {"tool_port": 8888, "host": "172.30.0.11", "port": 32768, "protocol": "tcp"}}


def test_a_session_is_routed_once_to_the_node_slurm_runs_it_on(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="gxnb_slurm_runner")
    claimed = {"8888": {**MONITOR_PORTS["8888"], "host": "172.30.0.10", "port": 5432}}  # whatever the file says
    instance, state, configured = session_job(tmp_path, claimed)
    shell = ScriptedShell(SLURM_ANSWERS)
    instance.get_cli_plugins = lambda shell_params, job_params: (shell, None)
    instance.take_entry_points(state)
    assert configured == [{"8888": {"tool_port": 8888, "host": "172.30.0.11", "port": 5432, "protocol": "tcp"}}]
    assert state.gxnb_entry_points_taken
    # When, for tests/benchmarks/launch_trace.py: Galaxy's job number and Slurm's job id.
    assert f"(7/{state.job_id}) interactive tool routed to 172.30.0.11" in caplog.text
    (tmp_path / "container_runtime.json").write_text(json.dumps(MONITOR_PORTS))
    instance.check_working_folder_size = lambda job_state: None
    instance.watched = [state]
    monkeypatch.setattr(runner.ShellJobRunner, "check_watched_items", lambda self: None)
    instance.check_watched_items()
    assert len(configured) == 1  # once per job


def test_a_session_whose_route_could_not_be_saved_is_routed_on_the_next_look(tmp_path, monkeypatch):
    """The proxy map's database restarted (a restore): Galaxy's first save fails; the job still gets its route."""
    instance, state, configured = session_job(tmp_path, MONITOR_PORTS)
    instance.get_cli_plugins = lambda shell_params, job_params: (ScriptedShell(SLURM_ANSWERS), None)
    rolled_back = []
    instance.app.model = SimpleNamespace(context=SimpleNamespace(rollback=lambda: rolled_back.append(True)))
    save = instance.app.interactivetool_manager.configure_entry_points
    answers = iter([ConnectionError("server closed the connection unexpectedly")])

    def configure_once_the_database_is_back(job, ports):
        failure = next(answers, None)
        if failure:
            raise failure
        save(job, ports)

    instance.app.interactivetool_manager.configure_entry_points = configure_once_the_database_is_back
    instance.check_working_folder_size = lambda job_state: None
    instance.watched = [state]
    monkeypatch.setattr(runner.ShellJobRunner, "check_watched_items", lambda self: None)
    instance.check_watched_items()
    assert configured == [] and rolled_back == [True] and not getattr(state, "gxnb_entry_points_taken", False)
    instance.check_watched_items()
    assert configured == [{"8888": MONITOR_PORTS["8888"]}] and state.gxnb_entry_points_taken


def test_a_session_waits_for_its_port_and_its_node_and_fails_when_its_container_never_published(tmp_path):
    instance, state, configured = session_job(tmp_path)
    instance.get_cli_plugins = lambda shell_params, job_params: (ScriptedShell(SLURM_ANSWERS), None)
    instance.take_entry_points(state)  # no port yet
    (tmp_path / "container_runtime.json").write_text(json.dumps(MONITOR_PORTS))
    instance.get_cli_plugins = lambda shell_params, job_params: (ScriptedShell({}), None)
    instance.take_entry_points(state)  # Slurm did not answer
    assert configured == [] and not getattr(state, "gxnb_entry_points_taken", False)
    (tmp_path / "container_runtime.json").unlink()
    (tmp_path / "container_monitor_exception.txt").write_text("Traceback ...")
    instance.watched = [state]
    instance.take_entry_points(state)
    # The job script is ending too: Galaxy's own finish then records why the container went.
    assert configured == [] and instance.watched == [state]
    state.gxnb_unstarted_since -= runner.UNSTARTED_CONTAINER_GRACE
    instance.take_entry_points(state)
    assert configured == [("queued", "fail_job")]
    assert "never published its port" in state.fail_message and state.stop_job
    assert instance.watched == []  # Slurm's end of the stopped job does not finish it again


def test_a_job_the_runner_stops_keeps_what_its_tool_wrote_before_it_stopped(tmp_path, monkeypatch):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "tool_stderr").write_text("v3 cannot start: no such module\n")
    (tmp_path / "outputs" / "tool_stdout").write_text("starting JupyterLab\n")
    instance, state, _queued = session_job(tmp_path)
    events = []
    state.stop_job = True
    state.job_wrapper.get_job = lambda: SimpleNamespace(state="running", states=SimpleNamespace(NEW="new"))
    state.job_wrapper.job_destination = state.job_destination
    instance.stop_job = lambda job_wrapper: events.append("stopped")
    monkeypatch.setattr(runner.ShellJobRunner, "fail_job",
                        lambda self, job_state, exception=False, message="", full_status=None:
                        events.append((job_state.stop_job, full_status)))  # fmt: skip
    instance.fail_job(state)
    assert events == ["stopped", (False, {"stdout": "starting JupyterLab\n",
                                          "stderr": "v3 cannot start: no such module\n"})]  # fmt: skip


def test_a_job_that_outgrows_its_working_folder_limit_is_stopped_saying_why(tmp_path):
    working = tmp_path / "working"
    (working / "outputs").mkdir(parents=True)
    (working / "outputs" / "big.bin").write_bytes(b"x" * 200_000)
    (working / "outputs" / "link").symlink_to("/usr")  # not followed
    assert 200_000 <= runner.working_folder_bytes(str(working)) < 300_000
    instance, state, queued = session_job(tmp_path)
    state.job_wrapper.tool_working_directory = str(working)
    state.job_destination.params["gxnb_output_limit_bytes"] = 1_000_000
    instance.check_working_folder_size(state)
    assert queued == []
    state.job_destination.params["gxnb_output_limit_bytes"] = 100_000
    instance.check_working_folder_size(state)
    assert queued == []  # measured at most every OUTPUT_SIZE_CHECK_INTERVAL seconds
    state.gxnb_size_checked_at = 0
    instance.check_working_folder_size(state)
    assert queued == [("queued", "fail_job")]
    assert state.stop_job
    assert state.fail_message.startswith("This job wrote 0.2 MB into its working folder, more than the 0.1 MB")


def galaxys_command_line(tmp_path, monitor_command: str) -> str:
    """The job command Galaxy's own code builds for an interactive tool's container: its container
    monitor's start (JobWrapper.container_monitor_command) before the tool's `docker run`."""
    from galaxy.jobs import JobWrapper
    from galaxy.jobs.command_factory import CommandsBuilder

    settings = {"container_monitor_command": monitor_command, "container_monitor_result": "file"}
    job_wrapper = SimpleNamespace(tool=SimpleNamespace(produces_entry_points=True), working_directory=str(tmp_path),
                                  get_destination_configuration=lambda key, default=None: settings.get(key, default),
                                  extra_filenames=[], galaxy_url="http://galaxy.example.org")  # fmt: skip
    container = SimpleNamespace(container_name="c0ffee", container_type="docker", connection_configuration={})
    builder = CommandsBuilder("cd working; slurm-job-docker run --name c0ffee image start-notebook.sh")
    builder.prepend_command(JobWrapper.container_monitor_command(job_wrapper, container))
    return builder.build()


def test_a_session_starts_without_galaxys_second_of_head_start_for_the_nodes_monitor(tmp_path):
    monitor = "/usr/local/bin/gxnb-container-monitor"
    command = galaxys_command_line(tmp_path, monitor)
    assert "sleep 1" in command, command  # what Galaxy writes
    faster = runner.without_monitor_head_start(command, monitor)
    assert faster == f"({monitor} &); cd working; slurm-job-docker run --name c0ffee image start-notebook.sh", faster
    assert subprocess.run(["bash", "-n", "-c", faster]).returncode == 0


def test_galaxys_own_monitor_keeps_its_head_start(tmp_path):
    monitor = "/srv/galaxy/venv/bin/python -m galaxy_ext.container_monitor.monitor"
    command = galaxys_command_line(tmp_path, monitor)
    assert runner.without_monitor_head_start(command, monitor) == command
    assert runner.without_monitor_head_start("cd working; true", None) == "cd working; true"


def test_slurm_is_asked_four_times_a_second_while_a_job_is_launched_and_once_a_second_after(monkeypatch):
    instance = object.__new__(runner.SlurmShellJobRunner)
    instance.app = SimpleNamespace(config=SimpleNamespace(job_runner_monitor_sleep=1))
    clock = [1000.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    queued = SimpleNamespace(running=False)
    instance.watched = [queued]
    assert instance.monitor_sleep_time == 0.25
    queued.running = True  # a session that runs but is not routed yet
    assert instance.monitor_sleep_time == 0.25
    queued.gxnb_entry_points_taken = True
    assert instance.monitor_sleep_time == 1
    waiting = SimpleNamespace(running=False)  # waits in Slurm's queue for a GPU
    instance.watched.append(waiting)
    assert instance.monitor_sleep_time == 0.25
    clock[0] += runner.LAUNCH_WINDOW
    assert instance.monitor_sleep_time == 1  # still waiting a minute later: Galaxy's pace
    instance.watched = []
    assert instance.monitor_sleep_time == 1


def test_a_queued_job_stays_queued_while_slurm_cannot_answer():
    """slurmctld stopped (a restart, an upgrade) while a job waits for its node: Galaxy's own
    runner asks again job by job, and scontrol cannot answer either. No news is no change: the
    job stays queued, not "running" with nothing running."""
    from galaxy.jobs.runners.util.cli.job.slurm import Slurm

    changed = []
    wrapper = SimpleNamespace(get_id_tag=lambda: "92", get_state=lambda: "queued",
                              change_state=lambda state, **kwargs: changed.append(state))  # fmt: skip
    queued = SimpleNamespace(job_id="86", job_wrapper=wrapper, job_destination=SimpleNamespace(id="gpu", params={}),
                             old_state="queued", running=False)  # fmt: skip
    instance = object.__new__(runner.SlurmShellJobRunner)
    instance.watched = [queued]
    instance.parse_destination_params = lambda params: ({}, {})
    shell = ScriptedShell({"squeue -a -o '%A %t'": "JOBID ST\n", "squeue -a -o '%A %t' -j 86": "JOBID ST\n"})
    status = runner.ScontrolStatus(Slurm(), instance._slurm_ended_jobs, instance._slurm_squeue_states,
                                   instance._slurm_known_states)  # fmt: skip
    instance.get_cli_plugins = lambda shell_params, job_params: (shell, status)
    instance.check_watched_items()
    assert "scontrol -o show job 86" in shell.commands  # asked, and Slurm did not answer
    assert changed == [] and not queued.running
    assert instance.watched == [queued]  # watched still: asked again on the next look


@pytest.mark.parametrize(("params", "expected"), [
    ({"embed_metadata_in_job": False}, ["metadata", "finish"]),  # the node is free when the container ends
    ({"embed_metadata_in_job": "false"}, ["metadata", "finish"]),
    ({}, ["finish"]),  # Galaxy's default: the job script set it
])  # fmt: skip
def test_metadata_set_outside_the_job_is_set_before_the_job_is_finished(tmp_path, monkeypatch, params, expected):
    instance, state, _queued = session_job(tmp_path)
    state.job_destination.params.update(params)
    state.job_wrapper.job_destination = state.job_destination
    steps = []
    instance._handle_metadata_externally = lambda job_wrapper, resolve_requirements=False: steps.append("metadata")
    monkeypatch.setattr(runner.ShellJobRunner, "finish_job", lambda self, job_state: steps.append("finish"))
    instance.handle_metadata_externally(state)  # Galaxy's CLI monitor queues this beside the finish
    assert steps == []
    instance.finish_job(state)
    assert steps == expected
