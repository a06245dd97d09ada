"""Galaxy's CLI Slurm runner, knowing how a job ended without Slurm accounting and saying why.

Galaxy's own Slurm plugin (galaxy.jobs.runners.util.cli.job.slurm) asks `squeue`, which lists
only pending and running jobs; for a job that left the queue it asks `sacct`, and where Slurm
accounting is off it takes the job as finished well. A job whose node was lost (NODE_FAIL)
then ends "ok" in Galaxy. This runner asks slurmctld instead (`scontrol -o show job`: no
accounting needed, kept for MinJobAge after the end): a job that did not complete fails, with
a message that says what happened (node lost, time limit, out of memory, ...).

It also keeps what users' job containers can reach of Galaxy to what they need:

- Secrets as files, not arguments. A job's secrets (the user's API key, a notebook session's
  route) are written into the job folder's gxnb-secrets/ (0700), which TPV mounts read-only into
  the container (gxnb_job_secrets names which a tool gets), and removed when the job ends, failed
  or not. Galaxy would put them on the node's `docker run` command line, where `ps` shows them.
- A session's address comes from Slurm, once. The container monitor runs on the node beside the
  container and writes the published port into the job folder (container_monitor_result: file),
  which the container cannot see; the runner takes it once per job, with the address of the node
  Slurm runs the job on, and tells Galaxy's interactive-tool map. No callback URL (and no job key
  that authorises one) is ever handed out.
- No fixed head start for the container monitor. Galaxy starts it and then sleeps a second
  before the container's `docker run` ("(monitor &); sleep 1 ; ..."): a second of every session's
  launch. The job nodes' monitor (gxnb-container-monitor) follows Docker's events from its own
  start, so the container may start first: the sleep is left out of the job script.
- A launch is looked at 4 times a second. Galaxy's runner asks Slurm about its jobs once a
  second; for the first minute of a job, until it runs (and for a session, until it is routed),
  this one asks every 0.25 s.
- A job's working folder has a size limit (gxnb_output_limit_bytes): a job that writes more is
  stopped, and its user told why.
- Outputs' metadata set after the job, before it is finished. Where the job script does not set
  it (embed_metadata_in_job: false, so the node is free when the container ends), Galaxy's CLI
  runner queues the metadata step and the finish as two work items, which two worker threads
  can run at once; here the finish runs the metadata step first.

Installed into Galaxy's virtualenv by the galaxy role; job_conf.yml loads it as the `slurm` runner.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import time

from galaxy.jobs.runners.cli import DEFAULT_EMBED_METADATA_IN_JOB, ShellJobRunner
from galaxy.jobs.runners.util.cli.job import job_states
from galaxy.util import asbool

log = logging.getLogger(__name__)

__all__ = (
    "SlurmShellJobRunner", "failure_message", "job_state", "parse_scontrol", "session_url", "working_folder_bytes",
    "write_job_secrets", "remove_job_secrets", "without_monitor_head_start",
)  # fmt: skip

# In the job folder: the job's secrets, one file each, mounted read-only into its container (TPV's
# docker_volumes); TPV names it (gxnb_job_secrets_folder), this is the galaxy role's default.
JOB_SECRETS_FOLDER = "gxnb-secrets"
# In the secrets folder: the user's GPU use this month and their quota (gxnb_accounting), which
# the session's GPU status item shows with its own time added.
GPU_USAGE_FILE = "gpu_usage.json"
# What the container monitor writes into the job folder (Galaxy's own name for it).
CONTAINER_RUNTIME_FILE = "container_runtime.json"
CONTAINER_MONITOR_FAILURE_FILE = "container_monitor_exception.txt"
# The container monitor that follows Docker's events, so needs no head start (the slurm role's).
MONITOR_WAITING_FOR_THE_CONTAINER = "gxnb-container-monitor"
# How often a running job's working folder is measured against its limit (seconds).
OUTPUT_SIZE_CHECK_INTERVAL = 30
# While a job is being launched (queued, or a session not yet routed), the runner looks at Slurm
# this often (seconds), for at most LAUNCH_WINDOW seconds after it was submitted; otherwise every
# job_runner_monitor_sleep (Galaxy's 1 s), which a launch would wait for half of on average.
LAUNCH_LOOK_INTERVAL = 0.25
LAUNCH_WINDOW = 60
# A session whose container went before publishing its port: its job script is ending too, and when
# it has, Galaxy records the exit code and the container's stderr (why it went). The runner stops
# the job itself only if it still runs this many seconds after the container monitor gave up.
UNSTARTED_CONTAINER_GRACE = 10

# slurmctld's job states (scontrol's JobState) as Galaxy's; every other one is a failure.
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}


def without_monitor_head_start(command_line: str, monitor_command: str | None) -> str:
    """The job's command without the second Galaxy waits after starting the container monitor,
    where the monitor is one that waits for the container itself (gxnb-container-monitor)."""
    if not monitor_command or not monitor_command.endswith(MONITOR_WAITING_FOR_THE_CONTAINER):
        return command_line
    head_start = f"({monitor_command} &); sleep 1 "
    if command_line.count(head_start) != 1:  # another Galaxy writes it otherwise: left as it is
        return command_line
    return command_line.replace(head_start, f"({monitor_command} &)")


def parse_scontrol(line: str) -> dict[str, str]:
    """`scontrol -o show job` output (Key=Value pairs on one line) as a dict."""
    fields = {}
    for pair in line.split():
        key, sep, value = pair.partition("=")
        if sep and key not in fields:  # the first JobState/Reason/NodeList is the job's own
            fields[key] = value
    return fields


def failure_message(job: dict[str, str], node_reason: str = "") -> str | None:
    """What to tell the user for a job Slurm ended as it did; None where Galaxy's own words fit.
    node_reason: why Slurm took the job's node down where that node was being made for the job
    and did not start (node_not_started)."""
    state = job.get("JobState", "")
    nodes = job.get("NodeList") or job.get("BatchHost") or "its node"
    if state in ("NODE_FAIL", "BOOT_FAIL") and node_reason:
        return (
            f"The job node {nodes} was to be started for this job but did not join the cluster "
            f"({node_reason}), so the job could not run. Run it again: Slurm sends new "
            "jobs to the nodes that are up or can be started."
        )
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


def scontrol_show(shell, kind: str, name: str) -> dict[str, str]:
    """`scontrol -o show <kind> <name>` as a dict ({} where Slurm has no answer)."""
    result = shell.execute(f"scontrol -o show {kind} {shlex.quote(name)}")
    if result.returncode != 0 or not result.stdout.strip():
        return {}
    return parse_scontrol(result.stdout.splitlines()[0])


def write_job_secrets(job_directory: str, secrets: dict[str, str], folder_name: str = JOB_SECRETS_FOLDER) -> str:
    """Write each secret into the job folder's secrets folder (only Galaxy's user reads them);
    returns the folder, made even where there is nothing to write (TPV mounts it)."""
    folder = os.path.join(job_directory, folder_name)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    for name, value in secrets.items():
        descriptor = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(value)
    return folder


def gpu_usage(user, gres: str) -> dict | None:
    """The user's GPU use and quota for their session (None where accounting does not answer):
    never a reason for a launch to fail."""
    try:
        import gxnb_accounting

        return gxnb_accounting.usage_summary(user, gres)
    except Exception:  # noqa: BLE001 - a launch goes on without the figure
        log.exception("GPU use of user %s not written for the session", getattr(user, "id", "?"))
        return None


def remove_job_secrets(job_directory: str | None, folder_name: str = JOB_SECRETS_FOLDER) -> None:
    """The job's secrets go when it ends (Galaxy keeps a failed job's folder)."""
    if job_directory:
        shutil.rmtree(os.path.join(job_directory, folder_name), ignore_errors=True)


def secrets_folder(job_wrapper) -> str:
    """The secrets folder's name in the job folder, as TPV names it."""
    return str(job_wrapper.job_destination.params.get("gxnb_job_secrets_folder") or JOB_SECRETS_FOLDER)


def session_url(sessions_url: str, subdomain: str | None, path: str) -> str:
    """An interactive tool's URL as Galaxy hands it out: <subdomain>.<sessions host>/ when it has
    its own subdomain, else <sessions URL><path>; sessions_url is scheme://host[:port]."""
    scheme, _, netloc = sessions_url.rstrip("/").partition("://")
    if subdomain:
        return f"{scheme}://{subdomain}.{netloc}{path}"
    return f"{scheme}://{netloc}{path}"


def working_folder_bytes(folder: str) -> int:
    """Disk space the files under a folder take (blocks, not apparent sizes: sparse files count
    as what they fill), without following links."""
    total = 0
    pending = [folder]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:  # gone or unreadable meanwhile
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


def tool_output(working_directory: str | None, shrink) -> dict[str, str]:
    """The tool's stdout and stderr as the job script captured them (outputs/tool_std*, where
    Galaxy's own finish reads them), each through shrink (Galaxy's size limit for the database)."""
    streams = {}
    for stream in ("stdout", "stderr"):
        for folder in ("outputs", "."):
            path = os.path.join(working_directory or "", folder, f"tool_{stream}")
            try:
                with open(path, "rb") as stream_file:
                    streams[stream] = shrink(stream_file)
                break
            except OSError:
                continue
    return streams


def metadata_in_job(params: dict) -> bool:
    """Whether the job script sets its outputs' metadata (Galaxy's embed_metadata_in_job)."""
    return asbool(params.get("embed_metadata_in_job", DEFAULT_EMBED_METADATA_IN_JOB))


def readable_size(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


# squeue's short states that Galaxy's Slurm plugin does not know (it raises KeyError on them):
# CF is a job whose node is being started for it (Slurm's power saving), the others wait too.
SQUEUE_WAITING = {"CF", "RD", "RF", "RH", "RQ", "SE"}
SQUEUE_RUNNING = {"SI", "SO", "ST"}


def waiting_for_node_message(nodes: str) -> str:
    return (f"Waiting for the job node {nodes} to start: it is made when a job needs it and joins the "
            "cluster in a minute or a few.")  # fmt: skip


def node_failed_message(nodes: str, reason: str) -> str:
    return (f"The job node {nodes} did not start ({reason or 'no reason given'}). The job waits for another "
            "node, or for this one to be started again.")  # fmt: skip


def node_reason(scontrol_line: str) -> str:
    """A node's Reason as `scontrol -o show node` prints it (the last field; it has spaces)."""
    return scontrol_line.partition(" Reason=")[2].strip()


def node_not_started(scontrol_line: str) -> bool:
    """Whether `scontrol -o show node` shows a node that Slurm's power saving could not start (its
    jobs never ran there: a job's RunTime counts from its allocation, not from its start)."""
    state = parse_scontrol(scontrol_line).get("State", "")
    reason = node_reason(scontrol_line)
    return "POWER" in state or reason.startswith(("gxnb-nodes could not start it", "ResumeTimeout"))


class ScontrolStatus:
    """Galaxy's Slurm plugin, asking scontrol about a job that has left squeue's list, and knowing
    every state squeue shows."""

    def __init__(self, plugin, ended: dict[str, dict[str, str]] | None = None,
                 squeue_states: dict[str, str] | None = None,
                 known_states: dict[str, str] | None = None):  # fmt: skip
        self._plugin = plugin
        # What scontrol said of each job it found failed, kept for the runner's failure message.
        self._ended = {} if ended is None else ended
        # squeue's short state of each job at the last look (CF: its node is being started).
        self._squeue_states = {} if squeue_states is None else squeue_states
        # Galaxy's state of each watched job before this look: kept while Slurm cannot answer.
        self._known_states = {} if known_states is None else known_states

    def __getattr__(self, name):
        return getattr(self._plugin, name)

    def parse_status(self, status, job_ids):
        lines = status.splitlines()
        known, states = lines[:1], {}
        for job_id in job_ids:
            self._squeue_states.pop(job_id, None)
        for line in lines[1:]:
            job_id, _, state = line.strip().partition(" ")
            if job_id in job_ids:
                self._squeue_states[job_id] = state
            if state not in SQUEUE_WAITING | SQUEUE_RUNNING:
                known.append(line)
            elif job_id in job_ids:
                states[job_id] = job_states.QUEUED if state in SQUEUE_WAITING else job_states.RUNNING
        return {**self._plugin.parse_status("\n".join(known), job_ids), **states}

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
        # No news is no change: a queued job stays queued (not "running" while its node starts).
        return self._known_states.get(str(job_id)) or job_states.RUNNING


class SlurmShellJobRunner(ShellJobRunner):
    runner_name = "SlurmShellRunner"

    # The job's secrets, written just before its job script (the job folder exists by then).
    def get_job_file(self, job_wrapper, **kwds) -> str:
        write_job_secrets(job_wrapper.working_directory, self.job_secrets(job_wrapper), secrets_folder(job_wrapper))
        monitor_command = job_wrapper.job_destination.params.get("container_monitor_command")
        command = without_monitor_head_start(job_wrapper.runner_command_line, monitor_command)
        return super().get_job_file(job_wrapper, command=command, **kwds)

    def job_secrets(self, job_wrapper) -> dict[str, str]:
        """The secrets the job's tool gets (TPV's gxnb_job_secrets: api_key, session_url, gpu_usage)."""
        params = job_wrapper.job_destination.params
        wanted = set(str(params.get("gxnb_job_secrets") or "").replace(",", " ").split())
        job = job_wrapper.get_job()
        secrets = {}
        if "api_key" in wanted and job.user is not None:
            from galaxy.managers.api_keys import ApiKeyManager

            secrets["api_key"] = ApiKeyManager(self.app).get_or_create_api_key(job.user)
        if "session_url" in wanted and job.interactivetool_entry_points:
            manager = self.app.interactivetool_manager
            entry_point = job.interactivetool_entry_points[0]
            sessions_url = str(params.get("gxnb_sessions_url") or "")
            subdomain = manager.get_entry_point_subdomain(entry_point) if entry_point.requires_domain else None
            secrets["session_url"] = session_url(sessions_url, subdomain, manager.get_entry_point_path(entry_point))
        gres = str(params.get("job_--gres") or "")
        if "gpu_usage" in wanted and job.user is not None and gres:
            usage = gpu_usage(job.user, gres)
            if usage is not None:
                secrets[GPU_USAGE_FILE] = json.dumps(usage)
        return secrets

    # Galaxy queues it beside finish_job (each job Galaxy's CLI monitor finishes gets both):
    # finish_job runs it, in order.
    def handle_metadata_externally(self, ajs):
        pass

    # Whichever way a job ends, its secrets go.
    def finish_job(self, job_state):
        try:
            if not metadata_in_job(job_state.job_destination.params):
                self._handle_metadata_externally(job_state.job_wrapper, resolve_requirements=True)
            super().finish_job(job_state)
        finally:
            remove_job_secrets(job_state.job_wrapper.working_directory, secrets_folder(job_state.job_wrapper))

    # A failed job keeps what its tool wrote (Galaxy's runners other than Pulsar's record nothing):
    # read after the job was stopped, so it holds the last words.
    def fail_job(self, job_state, exception=False, message="Job failed", full_status=None):
        if full_status is None and job_state.stop_job:
            job = job_state.job_wrapper.get_job()
            if job.state != job.states.NEW:
                self.stop_job(job_state.job_wrapper)
            job_state.stop_job = False
        if full_status is None:
            full_status = tool_output(job_state.job_wrapper.working_directory, self._job_io_for_db)
        try:
            super().fail_job(job_state, exception=exception, message=message, full_status=full_status)
        finally:
            remove_job_secrets(job_state.job_wrapper.working_directory, secrets_folder(job_state.job_wrapper))

    def stop_job(self, job_wrapper):
        try:
            super().stop_job(job_wrapper)
        finally:
            remove_job_secrets(job_wrapper.working_directory, secrets_folder(job_wrapper))

    @property
    def monitor_sleep_time(self) -> float:
        """Seconds until the next look at Slurm: shorter while a job is being launched."""
        usual = super().monitor_sleep_time
        now = time.monotonic()
        for job_state in self.watched:
            since = job_state.__dict__.setdefault("gxnb_watched_since", now)
            launching = not job_state.running or not getattr(job_state, "gxnb_entry_points_taken", False)
            if launching and now - since < LAUNCH_WINDOW:
                return min(usual, LAUNCH_LOOK_INTERVAL)
        return usual

    def check_watched_items(self) -> None:
        known = self._slurm_known_states
        known.clear()
        known.update({str(job_state.job_id): job_state.old_state for job_state in self.watched
                      if getattr(job_state, "old_state", None)})  # fmt: skip
        super().check_watched_items()
        try:
            self.tell_who_waits_for_a_node()
        except Exception:
            log.exception("telling the jobs that wait for a node failed; trying again")
        for job_state in self.watched:
            if not job_state.running:
                continue
            try:
                if not getattr(job_state, "gxnb_entry_points_taken", False):
                    self.take_entry_points(job_state)
                self.check_working_folder_size(job_state)
            except Exception:  # e.g. the proxy map's database restarted: tried again on the next look
                log.exception("(%s) checking the running job failed; trying again", job_state.job_id)

    def take_entry_points(self, job_state) -> None:
        """Tell Galaxy where a running interactive tool listens, once: the port the container
        monitor found (in the job folder, out of the container's reach) on the node Slurm runs
        the job on. Galaxy's CLI runner has no such step (only its callback, whose URL the job's
        container could read and post to with any host and port)."""
        job_wrapper = job_state.job_wrapper
        if job_wrapper.tool is None or not job_wrapper.tool.produces_entry_points:
            job_state.gxnb_entry_points_taken = True
            return
        if job_wrapper.get_job().all_entry_points_configured:  # taken before this handler restarted
            job_state.gxnb_entry_points_taken = True
            return
        job_directory = job_wrapper.working_directory
        try:
            with open(os.path.join(job_directory, CONTAINER_RUNTIME_FILE)) as runtime_file:
                ports = json.load(runtime_file)
        except FileNotFoundError:
            if os.path.exists(os.path.join(job_directory, CONTAINER_MONITOR_FAILURE_FILE)):
                now = time.monotonic()
                # Usually the job ends by itself meanwhile, and Galaxy's finish says why (its stderr).
                if now - job_state.__dict__.setdefault("gxnb_unstarted_since", now) >= UNSTARTED_CONTAINER_GRACE:
                    job_state.gxnb_entry_points_taken = True
                    self.stop_and_fail(job_state, "The interactive tool's container never published its port: "
                                                  "it did not start.")  # fmt: skip
            return
        except ValueError:  # being written
            return
        node_address = self.slurm_node_address(job_state)
        if not node_address:
            return  # asked again on the next look
        for port in ports.values():
            if port.get("host") not in (node_address, "0.0.0.0"):
                log.warning("(%s) the container monitor named %s; the job runs on %s (Slurm): %s is used",
                            job_state.job_id, port.get("host"), node_address, node_address)  # fmt: skip
            port["host"] = node_address
        try:
            self.app.interactivetool_manager.configure_entry_points(job_wrapper.get_job(), ports)
        except Exception:
            # Galaxy marks the entry points configured before the proxy map has them: forget
            # that mark, so that the next look configures them again.
            self.app.model.context.rollback()
            raise
        job_state.gxnb_entry_points_taken = True  # only once Galaxy and the proxy map have them
        # tests/benchmarks/launch_trace.py reads when this happened.
        log.info("(%s/%s) interactive tool routed to %s", job_wrapper.get_job().id, job_state.job_id, node_address)

    def slurm_node_address(self, job_state) -> str | None:
        """The address slurmctld reaches the job's node at (its NodeAddr), while the job runs."""
        node = self.slurm_answer(job_state, "job", str(job_state.job_id)).get("BatchHost")
        if not node or node == "(null)":
            return None
        return self.slurm_answer(job_state, "node", node).get("NodeAddr") or None

    def check_working_folder_size(self, job_state) -> None:
        """Stop a job whose working folder outgrew gxnb_output_limit_bytes, and say why."""
        limit = int(job_state.job_destination.params.get("gxnb_output_limit_bytes") or 0)
        now = time.monotonic()
        if limit <= 0 or now < getattr(job_state, "gxnb_size_checked_at", 0) + OUTPUT_SIZE_CHECK_INTERVAL:
            return
        job_state.gxnb_size_checked_at = now
        used = working_folder_bytes(job_state.job_wrapper.tool_working_directory)
        if used > limit and not getattr(job_state, "gxnb_over_limit", False):
            job_state.gxnb_over_limit = True
            self.stop_and_fail(job_state, (
                f"This job wrote {readable_size(used)} into its working folder, more than the {readable_size(limit)} a "
                "job may (gxnb_job_output_limit_gb): it was stopped. Write less, or ask the administrators for more."
            ))

    def stop_and_fail(self, job_state, message: str) -> None:
        """Stop a watched job in Slurm and fail it saying why; it is watched no more, so that Slurm's
        end of it (cancelled) does not finish it a second time."""
        job_state.fail_message = message
        job_state.stop_job = True
        self.watched = [watched for watched in self.watched if watched is not job_state]
        self.work_queue.put((self.fail_job, job_state))

    def get_cli_plugins(self, shell_params, job_params):
        shell, job_interface = super().get_cli_plugins(shell_params, job_params)
        return shell, ScontrolStatus(job_interface, self._slurm_ended_jobs, self._slurm_squeue_states,
                                     self._slurm_known_states)  # fmt: skip

    @property
    def _slurm_known_states(self) -> dict[str, str]:
        """Galaxy's state of each watched job before the current look, by Slurm job id."""
        return self.__dict__.setdefault("_known_states", {})

    @property
    def _slurm_squeue_states(self) -> dict[str, str]:
        """squeue's short state of each watched Slurm job at the last look."""
        return self.__dict__.setdefault("_squeue_states", {})

    def tell_who_waits_for_a_node(self) -> None:
        """Jobs whose node is being made for them (Slurm's power saving) say so in their info and their
        outputs' (what the history shows), and say it when that node did not start, instead of a
        silent queue; the words go once the job runs."""
        for job_state in self.watched:
            squeue_state = self._slurm_squeue_states.get(job_state.job_id)
            told, node = getattr(job_state, "gxnb_node_note", ("", ""))
            message = None
            if squeue_state == "CF" and told != "starting":
                node = self.slurm_answer(job_state, "job", str(job_state.job_id)).get("NodeList") or "for this job"
                told, message = "starting", waiting_for_node_message(node)
            elif squeue_state == "PD" and told == "starting":
                line = self.slurm_answer(job_state, "node", node, parsed=False)
                told, message = "failed", node_failed_message(node, node_reason(line))
            elif squeue_state not in (None, "CF", "PD") and told:
                told, message = "", ""
            if message is None:
                continue
            job_state.gxnb_node_note = (told, node)
            job = job_state.job_wrapper.get_job()
            for output in job.output_datasets:
                output.dataset.info = message or None
            job.info = message or None
            job_state.job_wrapper.sa_session.add(job)
            job_state.job_wrapper.sa_session.commit()
            log.info("(%s/%s) %s", job.id, job_state.job_id, message or "its node is up")

    def slurm_answer(self, job_state, kind: str, name: str, parsed: bool = True):
        """`scontrol -o show <kind> <name>` for a watched job's destination: a dict, or the line."""
        shell_params, job_params = self.parse_destination_params(job_state.job_destination.params)
        shell, _job_interface = self.get_cli_plugins(shell_params, job_params)
        if parsed:
            return scontrol_show(shell, kind, name)
        result = shell.execute(f"scontrol -o show {kind} {shlex.quote(name)}")
        return result.stdout.splitlines()[0] if result.returncode == 0 and result.stdout.strip() else ""

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
        job = self._slurm_ended_jobs.pop(str(job_state.job_id), None)
        if job is None:  # else the status check just asked scontrol
            job = self.slurm_answer(job_state, "job", str(job_state.job_id))
            if not job:
                return None
        reason = ""
        if job.get("JobState") in ("NODE_FAIL", "BOOT_FAIL"):
            line = self.slurm_answer(job_state, "node", job.get("NodeList", ""), parsed=False)
            if node_not_started(line):
                reason = node_reason(line) or "it did not start"
        return failure_message(job, reason)
