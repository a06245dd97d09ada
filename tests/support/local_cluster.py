"""The local cluster `make deploy-local` makes (scripts/start-local-cluster.sh): its containers,
read from the inventory's facts, and commands run in them."""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time

from scripts import service_facts


@functools.cache
def facts() -> dict[str, str | list[dict]]:
    return service_facts.load()


@functools.cache
def containers() -> dict[str, dict]:
    """name -> {address, gpus, kind ('head' or 'node')}, as the inventory defines them."""
    return {c["name"]: {"address": c["address"], "gpus": int(c["gpus"]), "kind": c["kind"]}
            for c in facts()["local_containers"]}


def head() -> str:
    return next(name for name, c in containers().items() if c["kind"] == "head")


def job_nodes() -> list[str]:
    return sorted(name for name, c in containers().items() if c["kind"] == "node")


def run(host: str, *command: str, timeout: int = 120, check: bool = True, stdin: str | None = None) -> str:
    """Run a command in one of the cluster's containers (as root); its stdout. A secret the command
    needs goes in on stdin, never in an argument."""
    interactive = ["-i"] if stdin is not None else []
    result = subprocess.run(["docker", "exec", *interactive, host, *command], capture_output=True, text=True,
                            timeout=timeout, input=stdin)  # fmt: skip
    if check:
        assert result.returncode == 0, f"{host}: {' '.join(command)}: {result.stderr[-2000:]}"
    return result.stdout


def slurm(*command: str) -> str:
    """A Slurm client command on the head (slurmctld's host)."""
    return run(head(), *command)


def slurm_job_id(galaxy_job_id: str) -> str | None:
    """The Slurm job of a Galaxy job (None: it never reached Slurm), as Galaxy's admins see it."""
    from tests.support import galaxy_it

    return galaxy_it.admin_instance().jobs.show_job(galaxy_job_id, full_details=True).get("external_id") or None


def allocated_gpu(slurm_job_id: str) -> tuple[str, str] | None:
    """(node, GPU index) Slurm gave a running job, a GPU or shards of one (scontrol's
    GRES=gpu:1(IDX:N), GRES=shard:1(IDX:N)); None for a job without one."""
    detail = slurm("scontrol", "show", "job", "-d", slurm_job_id)
    if "(IDX:" not in detail:
        return None
    return detail.split(" Nodes=")[1].split()[0], detail.split("(IDX:")[1].split(")")[0]


def job_containers(host: str) -> dict[str, str]:
    """Containers on a job node's engine that carry a Slurm job id: container name -> job id."""
    label = facts()["job_container_label"]
    out = run(host, "docker", "ps", "-a", "--filter", f"label={label}",
              "--format", f'{{{{.Names}}}} {{{{.Label "{label}"}}}}')  # fmt: skip
    return dict(line.split() for line in out.splitlines() if line.strip())


def node_of(admin, galaxy_job_id: str, timeout: float = 120) -> str:
    """The job node Slurm runs a Galaxy job on (its external id is the Slurm job id), once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        slurm_id = admin.jobs.show_job(galaxy_job_id, full_details=True).get("external_id")
        if slurm_id:
            line = slurm("squeue", "-h", "-j", slurm_id, "-o", "%T %N").split()
            if line and line[0] == "RUNNING":
                return line[1]
        time.sleep(1)
    raise TimeoutError(f"Galaxy job {galaxy_job_id} not running in Slurm after {timeout} s")


def node_and_container(admin, galaxy_job_id: str) -> tuple[str, str]:
    """The job node a running Galaxy job is on, and the name of its container there."""
    node = node_of(admin, galaxy_job_id)
    slurm_id = admin.jobs.show_job(galaxy_job_id, full_details=True)["external_id"]
    names = [name for name, job in job_containers(node).items() if job == slurm_id]
    assert len(names) == 1, (node, job_containers(node))
    return node, names[0]


@contextlib.contextmanager
def drained(node: str):
    """Slurm starts no new job on the node meanwhile (running ones carry on)."""
    slurm("scontrol", "update", f"NodeName={node}", "State=DRAIN", "Reason=end-to-end test places jobs")
    try:
        yield
    finally:
        slurm("scontrol", "update", f"NodeName={node}", "State=RESUME")


def node_state(node: str) -> str:
    """Slurm's state of a node, as sinfo prints it (idle, mixed, down*, ...)."""
    return slurm("sinfo", "-h", "-n", node, "-o", "%T").strip()


def wait_for_node_state(node: str, accepted: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (state := node_state(node)) not in accepted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{node} still '{state}' after {timeout} s (waited for {sorted(accepted)})")
        time.sleep(2)
    return state


def docker(*args: str) -> str:
    """A command of the host's Docker engine (where the cluster's containers run); its stdout."""
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=60).stdout


def kill_node(node: str) -> str:
    """Lose a job node at once, as a power cut would: its container (engine, jobs, slurmd) dies
    and stays down (Docker's restart policy, returned for restore_node, is set to 'no')."""
    policy = docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", node).strip() or "no"
    docker("update", "--restart", "no", node)
    docker("kill", node)
    return policy


def slurm_node_states(node: str) -> set[str]:
    """The flags of a node's State in slurmctld (e.g. {'DOWN', 'NOT_RESPONDING'})."""
    line = slurm("scontrol", "-o", "show", "node", node)
    state = next(part.split("=", 1)[1] for part in line.split() if part.startswith("State="))
    return set(state.replace("*", "+NOT_RESPONDING").split("+"))


def restore_node(node: str, restart_policy: str, timeout: float = 240) -> None:
    """Start a killed job node again and wait until Slurm takes it back (ReturnToService=2)."""
    docker("start", node)
    docker("update", "--restart", restart_policy, node)
    wait_for_node_state(node, {"idle", "mixed", "allocated"}, timeout)


# Job nodes made on demand (Slurm's power saving, gxnb-nodes' local driver): sinfo's state of a
# node that is off ends in ~, one being started in #, one being removed in %.
POWERED_DOWN, POWERING_UP, POWERING_DOWN = "~", "#", "%"


def nodes_on_demand() -> list[str]:
    return str(facts().get("nodes_on_demand") or "").split() if facts().get("node_driver") != "none" else []


def container_running(node: str) -> bool:
    return docker("inspect", "-f", "{{.State.Running}}", node).strip() == "true"


def power_up(node: str, timeout: float = 180) -> None:
    """Start a node made on demand that Slurm has switched off (or is switching off), and wait until
    it takes jobs; a node that is up is left alone."""
    deadline = time.monotonic() + timeout
    while (state := node_state(node))[-1:] in (POWERED_DOWN, POWERING_UP, POWERING_DOWN):
        if state.startswith("down"):  # it did not start before: returned to service (off)
            slurm("scontrol", "update", f"NodeName={node}", "State=RESUME")
        elif state.endswith(POWERED_DOWN) and not state.startswith("drain"):
            slurm("scontrol", "update", f"NodeName={node}", "State=POWER_UP")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{node} still '{state}' after {timeout} s of starting it")
        time.sleep(2)


def power_down(node: str, timeout: float = 120) -> None:
    """Have Slurm switch a node made on demand off now (its SuspendProgram: the container stops; a
    job still on it is lost)."""
    if not node_state(node).endswith(POWERED_DOWN):
        slurm("scontrol", "update", f"NodeName={node}", "State=POWER_DOWN")
    deadline = time.monotonic() + timeout
    while not (state := node_state(node)).endswith(POWERED_DOWN) or state.startswith("down"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{node} still '{state}' after {timeout} s of switching it off")
        time.sleep(2)


def wait_until_no_job_on(node: str, timeout: float = 180) -> None:
    """Until Slurm has no job on the node (switched off with a job on it, the job would be lost)."""
    deadline = time.monotonic() + timeout
    while slurm("squeue", "-h", "-w", node, "-o", "%i").strip():
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs still on {node} after {timeout} s")
        time.sleep(0.5)


def restart_galaxy() -> None:
    """Restart every Galaxy process on the head (as a configuration change does) and wait for its API."""
    from tests.support import galaxy_it  # the deployment's endpoints: only where one runs

    run(head(), "systemctl", "restart", "galaxy.target", timeout=300)
    galaxy_it.wait_for_http_200(galaxy_it.load_endpoints()["galaxy_url"] + "/api/version", timeout=240)


def all_nodes_up() -> None:
    """Every job node made on demand started (tests that place jobs on given nodes need them)."""
    for node in nodes_on_demand():
        power_up(node)
