"""gxnb-nodes: Slurm's ResumeProgram, SuspendProgram and ResumeFailProgram for job nodes made
on demand (Slurm's power saving), one program for every cloud with a driver per cloud.

slurmctld runs it as its SlurmUser with a Slurm host list:

    gxnb-nodes resume gxnb-node[2-4]      # make the nodes (jobs wait for them)
    gxnb-nodes suspend gxnb-node3         # remove a node idle for SuspendTime
    gxnb-nodes resume-fail gxnb-node4     # a node that did not join within ResumeTimeout
    gxnb-nodes check                      # the settings and the driver's reach, for operators
    gxnb-nodes resume-pending             # slurmctld (re)started: start again the nodes it was
                                          # starting (their program cut by its stop, or never run)
    gxnb-nodes share-munge-key            # (root) put the munge key where a cloud's new nodes
                                          # fetch it at boot (gxnb-node-join; a cloud's secret store)

The settings file (/etc/slurm/gxnb-nodes.json, written by the slurm role) names the driver,
its settings and the nodes it may make; it holds no secret: a driver's credentials come from
the cloud's own mechanisms (an instance profile, an application credential in clouds.yaml).

A driver is a class with resume(node) and suspend(node), each returning a line for the log;
resume may return the node's new address too ({"message", "address"}), which slurmctld is
told where the node's address is not known beforehand (State=CLOUD nodes). A driver's
parallel_resumes says how many nodes of one host list it starts at once (1 where not said).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import fcntl
import importlib
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

SETTINGS_FILE = "/etc/slurm/gxnb-nodes.json"
# One program at a time acts on a node (settings: lock_dir; the slurm role makes it SlurmUser's).
LOCK_DIR = "/var/lib/gxnb-nodes/locks"
DRIVERS = ("local", "aws", "openstack")


class DriverError(Exception):
    """A node could not be made or removed; the message says why and names the node."""


# Key names that hold a secret (aws_access_key_id, application_credential_secret, password, ...).
CREDENTIAL_KEY = re.compile(r"access_key|secret|token|password|passwd|credential|private_key|api_key", re.IGNORECASE)


def refuse_credentials(settings: dict[str, Any], where: str, credentials_from: str) -> None:
    """A credential in the settings file would be readable by everyone who can read slurm's
    configuration and land in backups; refuse it rather than pass it on."""
    for key, value in settings.items():
        if CREDENTIAL_KEY.search(str(key)):
            raise DriverError(f"{where}: {key!r} looks like a credential; credentials never go in "
                              f"the settings: {credentials_from}")  # fmt: skip
        if isinstance(value, dict):
            refuse_credentials(value, f"{where}.{key}", credentials_from)


def check_cloud_settings(driver: str, settings: dict[str, Any], nodes: dict[str, Any], required: tuple[str, ...],
                         credentials_from: str) -> None:  # fmt: skip
    """A cloud driver's settings and its nodes' hold no credential and every required setting."""
    refuse_credentials(settings, f"{driver} settings", credentials_from)
    for node, node_settings in nodes.items():
        refuse_credentials(node_settings or {}, f"node {node}", credentials_from)
    missing = [key for key in required if not settings.get(key)]
    if missing:
        raise DriverError(f"{driver} settings lack {', '.join(missing)} (required: {', '.join(required)})")


def user_data(node: str, settings: dict[str, Any]) -> str:
    """What a cloud node's boot unit (gxnb-node-join) needs to join the cluster (JSON): where the
    munge key is kept, never the key."""
    data = {"gxnb_node": node, "slurm_controller": settings["controller_address"], "cluster": settings["cluster_name"]}
    data.update({key: str(settings[key]) for key in ("munge_key_store", "region") if settings.get(key)})
    return json.dumps(data)


MUNGE_KEY_FILE = "/etc/munge/munge.key"


def munge_key_store(cloud: str, name: str, region: str | None = None, endpoint_url: str | None = None,
                    openstack_cloud: str | None = None):  # fmt: skip
    """Where a cloud keeps the cluster's munge key (<cloud>.MungeKeyStore): the controller stores
    it there (share_munge_key), a node made on demand reads it at boot (join)."""
    module = importlib.import_module(f"{__name__}.{cloud}")
    if cloud == "aws":
        return module.MungeKeyStore(name, region=region, endpoint_url=endpoint_url)
    return module.MungeKeyStore(name, cloud=openstack_cloud)


def share_munge_key(settings: dict[str, Any], key_file: str = MUNGE_KEY_FILE) -> str:
    """Put the controller's munge key where the nodes a cloud makes fetch it at boot (the
    driver's munge_key_store); run as root by the slurm role. Says "stored" or "unchanged"."""
    driver = settings["driver"]
    cloud_settings = settings.get(driver) or {}
    if driver not in ("aws", "openstack"):
        raise DriverError(f"driver {driver}: its nodes are made from this cluster's own disks; no key to share")
    if not cloud_settings.get("munge_key_store"):
        raise DriverError(f"the {driver} settings lack munge_key_store (the secret Terraform makes for the key)")
    try:
        with open(key_file, "rb") as key:
            content = key.read()
    except OSError as error:
        raise DriverError(f"cannot read the munge key {key_file}: {error}") from None
    store = munge_key_store(driver, cloud_settings["munge_key_store"], region=cloud_settings.get("region"),
                            endpoint_url=cloud_settings.get("endpoint_url"),
                            openstack_cloud=cloud_settings.get("cloud"))  # fmt: skip
    stored = store.put(content)
    return f"{'stored' if stored else 'unchanged'}: the munge key in {cloud_settings['munge_key_store']}"


def expand_hostlist(hostlist: str) -> list[str]:
    """Slurm's host list (node[1-3,5],other) as names, in Slurm's own order where scontrol is
    there, else by the same rules (ranges with their zero padding, several lists by commas)."""
    try:
        result = subprocess.run(["scontrol", "show", "hostnames", hostlist], capture_output=True, text=True,
                                timeout=30, check=False)  # fmt: skip
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        pass
    names: list[str] = []
    for match in re.finditer(r"([^,\[]+)(?:\[([^\]]+)\])?([^,\[]*)", hostlist):
        prefix, ranges, suffix = match.groups()
        if not ranges:
            names.append(prefix + suffix)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            for number in range(int(low), int(high or low) + 1):
                names.append(f"{prefix}{number:0{len(low)}d}{suffix}")
    return names


def load_settings(path: str = SETTINGS_FILE) -> dict[str, Any]:
    try:
        with open(path) as settings_file:
            settings = json.load(settings_file)
    except (OSError, ValueError) as error:
        raise DriverError(f"cannot read the settings {path}: {error}") from None
    driver = settings.get("driver")
    if driver not in DRIVERS:
        raise DriverError(f"{path}: driver is {driver!r}; allowed: {', '.join(DRIVERS)}")
    nodes = settings.get("nodes")
    if isinstance(nodes, list):  # names only: no settings of their own
        settings["nodes"] = nodes = {str(name): {} for name in nodes}
    if not isinstance(nodes, dict) or not nodes:
        raise DriverError(f"{path}: no nodes to make on demand (nodes: [names] or {{name: settings}})")
    return settings


def make_driver(settings: dict[str, Any]):
    """The driver the settings name, from this package (gxnb_nodes.<driver>.Driver)."""
    module = importlib.import_module(f"{__name__}.{settings['driver']}")
    return module.Driver(settings.get(settings["driver"]) or {}, settings["nodes"])


def scontrol_update(node: str, **fields: str) -> None:
    """Tell slurmctld about a node (its address, or down with a reason); a failure is logged only."""
    command = ["scontrol", "update", f"NodeName={node}"] + [f"{key}={value}" for key, value in fields.items()]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log(f"scontrol update {node}: {error}")
        return
    if result.returncode != 0:
        log(f"scontrol update {node}: {(result.stderr or result.stdout).strip()}")


_log_file: str | None = None


def log(line: str) -> None:
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    text = f"{stamp} gxnb-nodes[{os.getpid()}] {line}\n"
    if _log_file:
        try:
            with open(_log_file, "a") as log_file:
                log_file.write(text)
        except OSError:
            pass
    if sys.stderr is not None:  # slurmctld runs its programs without one
        sys.stderr.write(text)


def mark_not_started(node: str, error: Exception) -> None:
    """slurmctld marks the node down with the reason, so its jobs go elsewhere at once."""
    scontrol_update(node, State="DOWN", Reason=f'"gxnb-nodes could not start it: {str(error)[:150]}"')


@contextlib.contextmanager
def node_lock(node: str, lock_dir: str):
    """Held while a program acts on the node. slurmctld's resume, a resume-pending after its
    restart and an operator's run may act on one node at once: each looks for the node's
    instance, finds none and launches one, and the cloud bills two machines for one node."""
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(lock_dir, f"{node}.lock"), "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes, or the program ends
        yield


def write_metrics_targets(node: str, address: str | None, targets: dict[str, Any] | None) -> None:
    """Prometheus scrapes a node a cloud made at the address it got (file_sd_configs: one file per
    exporter kind and node, <dir>/<kind>-<node>.json, in the one folder Prometheus watches);
    without an address (suspended, or never made) its files go, so no exporter is missed for a
    node switched off on purpose."""
    if not targets or not targets.get("dir"):
        return
    for kind, port in sorted((targets.get("ports") or {}).items()):
        path = os.path.join(str(targets["dir"]), f"{kind}-{node}.json")
        try:
            if not address:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                continue
            temporary = f"{path}.new"
            with open(temporary, "w") as target_file:  # replaced whole: Prometheus never reads half
                json.dump([{"targets": [f"{address}:{port}"], "labels": {"node": node}}], target_file)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except OSError as error:
            log(f"metrics targets of {node}: {error}")


def act_on(action: str, node: str, driver, lock_dir: str, targets: dict[str, Any] | None = None) -> bool:
    """One node's resume, suspend or resume-fail, logged; True where it went wrong (a node that
    could not be made is marked down with the driver's reason, so its jobs go elsewhere)."""
    try:
        with node_lock(node, lock_dir):
            return act_on_locked(action, node, driver, targets)
    except OSError as error:
        log(f"{action} {node}: cannot take its lock in {lock_dir}: {error}")
        if action == "resume":
            mark_not_started(node, error)
        return True


def act_on_locked(action: str, node: str, driver, targets: dict[str, Any] | None = None) -> bool:
    try:
        if action == "resume":
            outcome = driver.resume(node)
            if isinstance(outcome, dict):
                if outcome.get("address"):
                    scontrol_update(node, NodeAddr=outcome["address"], NodeHostname=node)
                    write_metrics_targets(node, outcome["address"], targets)
                outcome = outcome.get("message", "")
            log(f"resume {node}: {outcome}")
        elif action == "suspend":
            write_metrics_targets(node, None, targets)
            log(f"suspend {node}: {driver.suspend(node)}")
        elif action == "resume-fail":
            # ResumeTimeout passed: slurmctld marked it down and requeued its jobs. Remove
            # what was made, so a later resume starts clean and nothing bills meanwhile.
            write_metrics_targets(node, None, targets)
            log(f"resume-fail {node}: did not join Slurm in time; {driver.suspend(node)}")
    except DriverError as error:
        log(f"{action} {node}: failed: {error}")
        if action == "resume":
            mark_not_started(node, error)
        return True
    return False


def run(action: str, nodes: list[str], settings: dict[str, Any], driver=None) -> int:
    """Do the action on each node; 0 when all went well, 1 otherwise (each failure logged and,
    for a node that could not be made, marked down with the reason so its jobs go elsewhere)."""
    unknown = [node for node in nodes if node not in settings["nodes"]]
    if unknown:
        log(f"{action}: {', '.join(unknown)} not made on demand here (the settings name "
            f"{', '.join(sorted(settings['nodes']))}); left alone")  # fmt: skip
    nodes = [node for node in nodes if node in settings["nodes"]]
    if driver is None:
        try:
            driver = make_driver(settings)
        except (DriverError, ImportError) as error:  # bad settings, the cloud's SDK missing
            log(f"{action}: the {settings['driver']} driver cannot start: {error}")
            for node in nodes if action == "resume" else []:
                mark_not_started(node, error)
            return 1
    # Nodes asked for together start together: one after another, the last of ten cloud nodes
    # would wait for nine boots and could pass ResumeTimeout. A driver says how many at once.
    workers = min(len(nodes), max(1, int(getattr(driver, "parallel_resumes", 1)))) if action == "resume" else 1
    lock_dir = str(settings.get("lock_dir") or LOCK_DIR)
    targets = settings.get("metrics_targets")
    if workers > 1:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            went_wrong = list(pool.map(lambda node: act_on(action, node, driver, lock_dir, targets), nodes))
    else:
        went_wrong = [act_on(action, node, driver, lock_dir, targets) for node in nodes]
    failed = bool(unknown) or any(went_wrong)
    return 1 if failed else 0


def nodes_being_started(scontrol_nodes: str) -> list[str]:
    """The nodes `scontrol -o show node` shows as being started (State ...+POWERING_UP)."""
    names = []
    for line in scontrol_nodes.splitlines():
        fields: dict[str, str] = {}
        for pair in line.split():
            key, sep, value = pair.partition("=")
            if sep:
                fields.setdefault(key, value)
        if "POWERING_UP" in fields.get("State", "").split("+") and fields.get("NodeName"):
            names.append(fields["NodeName"])
    return names


def resume_pending(settings: dict[str, Any], wait_s: float = 60, driver=None) -> int:
    """Start again the nodes slurmctld shows as being started, once it answers. Run when slurmctld
    starts: a node's start that its stop cut (or that it had decided and not run yet) would leave
    the node "being started" with nothing starting it, and its jobs waiting for ResumeTimeout, or
    for good. The drivers take a node that exists (or runs) as made."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            result = subprocess.run(["scontrol", "-o", "show", "node"], capture_output=True, text=True, timeout=30,
                                    check=False)  # fmt: skip
            if result.returncode == 0:
                break
            why = (result.stderr or result.stdout).strip()
        except (OSError, subprocess.TimeoutExpired) as error:
            why = str(error)
        if time.monotonic() > deadline:
            log(f"resume-pending: slurmctld did not answer within {wait_s:.0f} s ({why[:200]})")
            return 1
        time.sleep(1)
    pending = [node for node in nodes_being_started(result.stdout) if node in settings["nodes"]]
    if not pending:
        log("resume-pending: slurmctld is starting no node made on demand")
        return 0
    log(f"resume-pending: slurmctld (re)started while starting {', '.join(pending)}: starting again")
    return run("resume", pending, settings, driver)


def main(argv: list[str] | None = None) -> int:
    global _log_file
    argv = sys.argv[1:] if argv is None else argv
    # slurmctld runs its programs with Slurm's variables only: scontrol needs a PATH.
    os.environ.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    # slurmctld runs a program by its path alone: gxnb-nodes-resume is `gxnb-nodes resume`.
    called_as = os.path.basename(sys.argv[0])
    for action in ("resume-fail", "resume", "suspend"):
        if called_as.endswith(f"gxnb-nodes-{action}"):
            argv = [action, *argv]
            break
    parser = argparse.ArgumentParser(prog="gxnb-nodes", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["resume", "suspend", "resume-fail", "check", "resume-pending",
                                           "share-munge-key"])
    parser.add_argument("hostlist", nargs="?", default="", help="Slurm host list (node[1-3])")
    parser.add_argument("--settings", default=os.environ.get("GXNB_NODES_SETTINGS", SETTINGS_FILE))
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.settings)
    except DriverError as error:
        log(str(error))
        return 2
    _log_file = settings.get("log_file")
    if args.action == "check":
        try:
            print(f"driver {settings['driver']}: {make_driver(settings).check()}")
        except (DriverError, ImportError) as error:
            log(f"check: the {settings['driver']} driver: {error}")
            return 2
        print("nodes made on demand: " + ", ".join(sorted(settings["nodes"])))
        return 0
    if args.action == "share-munge-key":
        try:
            print(share_munge_key(settings))
        except DriverError as error:
            log(f"share-munge-key: {error}")
            return 2
        return 0
    if args.action == "resume-pending":
        return resume_pending(settings)
    if not args.hostlist:
        parser.error(f"{args.action} needs a Slurm host list")
    return run(args.action, expand_hostlist(args.hostlist), settings)
