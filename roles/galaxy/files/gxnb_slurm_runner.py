"""Galaxy's CLI Slurm runner, telling the user why Slurm ended a job that Galaxy sees as failed.

Galaxy's own runner (galaxy.jobs.runners.cli.ShellJobRunner with the Slurm plugin) names only
out-of-memory and walltime, and only where Slurm accounting (sacct) is on; a job whose node was
lost fails as "Job failed". Before a job is failed, this runner asks slurmctld for the job's
state (`scontrol -o show job`: no accounting needed, kept for MinJobAge after the end) and gives
Galaxy a message that says what happened. Installed into Galaxy's virtualenv by the galaxy role;
job_conf.yml loads it as the `slurm` runner.
"""

from __future__ import annotations

import logging
import shlex

from galaxy.jobs.runners.cli import ShellJobRunner

log = logging.getLogger(__name__)

__all__ = ("SlurmShellJobRunner", "failure_message", "parse_scontrol")


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


class SlurmShellJobRunner(ShellJobRunner):
    runner_name = "SlurmShellRunner"

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
        shell_params, job_params = self.parse_destination_params(job_state.job_destination.params)
        shell, _job_interface = self.get_cli_plugins(shell_params, job_params)
        result = shell.execute(f"scontrol -o show job {shlex.quote(str(job_state.job_id))}")
        if result.returncode != 0 or not result.stdout.strip():
            return None
        return failure_message(parse_scontrol(result.stdout.splitlines()[0]))
