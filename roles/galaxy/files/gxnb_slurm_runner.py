"""Galaxy's CLI Slurm runner, knowing how a job ended without Slurm accounting and saying why.

Galaxy's own Slurm plugin (galaxy.jobs.runners.util.cli.job.slurm) asks `squeue`, which lists
only pending and running jobs; for a job that left the queue it asks `sacct`, and where Slurm
accounting is off it takes the job as finished well. A job whose node was lost (NODE_FAIL)
then ends "ok" in Galaxy. This runner asks slurmctld instead (`scontrol -o show job`: no
accounting needed, kept for MinJobAge after the end): a job that did not complete fails, with
a message that says what happened (node lost, time limit, out of memory, ...). Installed into
Galaxy's virtualenv by the galaxy role; job_conf.yml loads it as the `slurm` runner.
"""

from __future__ import annotations

import logging
import shlex

from galaxy.jobs.runners.cli import ShellJobRunner
from galaxy.jobs.runners.util.cli.job import job_states

log = logging.getLogger(__name__)

__all__ = ("SlurmShellJobRunner", "failure_message", "job_state", "parse_scontrol")

# slurmctld's job states (scontrol's JobState) as Galaxy's; every other one is a failure.
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}


def parse_scontrol(line: str) -> dict[str, str]:
    """`scontrol -o show job` output (Key=Value pairs on one line) as a dict."""
    fields = {}
    for pair in line.split():
        key, sep, value = pair.partition("=")
        if sep and key not in fields:  # the first JobState/Reason/NodeList is the job's own
            fields[key] = value
    return fields


def failure_message(job: dict[str, str]) -> str | None:
    """What to tell the user for a job Slurm ended as it did; None where Galaxy's own words fit."""
    state = job.get("JobState", "")
    nodes = job.get("NodeList") or job.get("BatchHost") or "its node"
    if state in ("NODE_FAIL", "BOOT_FAIL"):
        return (
            f"The job node {nodes} stopped answering while this job ran (Slurm: {state}), so the job was lost. "
            "Run it again: Slurm sends new jobs to the nodes that are up."
        )
    if state == "TIMEOUT":
        return f"This job ran longer than its time limit ({job.get('TimeLimit', 'unknown')}) and Slurm ended it."
    if state == "OUT_OF_MEMORY":
        return "This job used more memory than it asked for and Slurm ended it. Run it with more memory."
    if state == "PREEMPTED":
        return "Slurm preempted this job for a job of higher priority. Run it again."
    if state == "CANCELLED":
        return f"This job was cancelled in Slurm, outside Galaxy (Reason: {job.get('Reason', 'none given')})."
    return None


def job_state(job: dict[str, str]):
    """Galaxy's state for a job as scontrol shows it."""
    state = job.get("JobState", "")
    if state == "COMPLETED":
        return job_states.OK
    if state in WAITING:
        return job_states.QUEUED
    if state in RUNNING:
        return job_states.RUNNING
    return job_states.ERROR


class ScontrolStatus:
    """Galaxy's Slurm plugin, asking scontrol about a job that has left squeue's list."""

    def __init__(self, plugin, ended: dict[str, dict[str, str]] | None = None):
        self._plugin = plugin
        # What scontrol said of each job it found failed, kept for the runner's failure message.
        self._ended = {} if ended is None else ended

    def __getattr__(self, name):
        return getattr(self._plugin, name)

    def parse_single_status(self, status, job_id, shell):
        if len(status.splitlines()) > 1:  # still in squeue's list, with its state
            return self._plugin.parse_single_status(status, job_id, shell)
        result = shell.execute(f"scontrol -o show job {shlex.quote(str(job_id))}")
        if result.returncode == 0 and result.stdout.strip():
            fields = parse_scontrol(result.stdout.splitlines()[0])
            state = job_state(fields)
            if state == job_states.ERROR:
                self._ended[str(job_id)] = fields
            return state
        if "Invalid job id" in (result.stderr or "") + (result.stdout or ""):
            # Gone from slurmctld too (ended more than MinJobAge ago): Galaxy's own answer.
            return self._plugin.parse_single_status(status, job_id, shell)
        log.warning("(%s) scontrol could not tell the job's state (%s): asking again later", job_id,
                    (result.stderr or "").strip()[:200])  # fmt: skip
        return job_states.RUNNING


class SlurmShellJobRunner(ShellJobRunner):
    runner_name = "SlurmShellRunner"

    def get_cli_plugins(self, shell_params, job_params):
        shell, job_interface = super().get_cli_plugins(shell_params, job_params)
        return shell, ScontrolStatus(job_interface, self._slurm_ended_jobs)

    @property
    def _slurm_ended_jobs(self) -> dict[str, dict[str, str]]:
        """scontrol's fields of the failed jobs the status checks found, by Slurm job id."""
        return self.__dict__.setdefault("_ended_jobs", {})

    def mark_as_failed(self, job_state):
        if getattr(job_state, "fail_message", None) is None:
            try:
                message = self.slurm_failure_message(job_state)
            except Exception:  # the generic message is still better than no failure at all
                log.exception("(%s) could not ask Slurm why the job ended", job_state.job_id)
                message = None
            if message:
                log.info("(%s) %s", job_state.job_id, message)
                job_state.fail_message = message
        super().mark_as_failed(job_state)

    def slurm_failure_message(self, job_state) -> str | None:
        seen = self._slurm_ended_jobs.pop(str(job_state.job_id), None)
        if seen is not None:  # the status check just asked scontrol
            return failure_message(seen)
        shell_params, job_params = self.parse_destination_params(job_state.job_destination.params)
        shell, _job_interface = self.get_cli_plugins(shell_params, job_params)
        result = shell.execute(f"scontrol -o show job {shlex.quote(str(job_state.job_id))}")
        if result.returncode != 0 or not result.stdout.strip():
            return None
        return failure_message(parse_scontrol(result.stdout.splitlines()[0]))
