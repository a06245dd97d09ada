"""The local cluster `make deploy-local` makes (scripts/start-local-cluster.sh): its containers,
read from the inventory's facts, and commands run in them."""

from __future__ import annotations

import functools
import subprocess

from scripts import service_facts


@functools.cache
def facts() -> dict[str, str]:
    return service_facts.load()


@functools.cache
def containers() -> dict[str, dict]:
    """name -> {address, gpus, kind ('head' or 'node')}, as the inventory defines them."""
    result = {}
    for entry in facts()["local_containers"].split():
        name, address, gpus, kind = entry.split(":")
        result[name] = {"address": address, "gpus": int(gpus), "kind": kind}
    return result


def head() -> str:
    return next(name for name, c in containers().items() if c["kind"] == "head")


def job_nodes() -> list[str]:
    return sorted(name for name, c in containers().items() if c["kind"] == "node")


def run(host: str, *command: str, timeout: int = 120, check: bool = True) -> str:
    """Run a command in one of the cluster's containers (as root); its stdout."""
    result = subprocess.run(["docker", "exec", host, *command], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{host}: {' '.join(command)}: {result.stderr[-2000:]}"
    return result.stdout


def slurm(*command: str) -> str:
    """A Slurm client command on the head (slurmctld's host)."""
    return run(head(), *command)


def job_containers(host: str) -> dict[str, str]:
    """Containers on a job node's engine that carry a Slurm job id: container name -> job id."""
    label = facts()["job_container_label"]
    out = run(host, "docker", "ps", "-a", "--filter", f"label={label}",
              "--format", f'{{{{.Names}}}} {{{{.Label "{label}"}}}}')  # fmt: skip
    return dict(line.split() for line in out.splitlines() if line.strip())
