"""gxnb-node-join: the boot unit of a job node a cloud makes on demand, an instance of the job-node
image. Before munge, Docker, slurmd and the exporters start, it makes the image the node Slurm
asked for:

1. reads the instance's user data, which gxnb-nodes' driver launched it with: the node's Slurm
   name, the controller's address, the cluster, where the munge key is kept (nothing secret);
2. sets the host name to the node's name;
3. finds the address it reaches the controller from and puts it where the image has the address
   of the machine it was made from (Docker's publish address, the exporters' listen address);
4. fetches the munge key from the cloud's secret store with the instance's own identity (AWS
   Secrets Manager through the instance profile; OpenStack Barbican through clouds.yaml's
   application credential) and writes it for munge only;
5. has slurmd register under the node's name and take its configuration from the controller
   (configless: a node made months after its image still gets today's slurm.conf).

    gxnb-node-join                          # at boot (gxnb-node-join.service)
    gxnb-node-join --root /tmp/x --no-host  # write under /tmp/x, change nothing of this host

Settings (/etc/gxnb-node-join.json, written by the slurm role into the image): cloud ("aws" or
"openstack"), image_address (the builder's internal address), address_files (where that address
is replaced), metadata_url and endpoint_url (optional), openstack_cloud (clouds.yaml entry).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import DriverError, munge_key_store

SETTINGS_FILE = "/etc/gxnb-node-join.json"
METADATA_URL = "http://169.254.169.254"
CLOUDS = ("aws", "openstack")
NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
SLURMCTLD_PORT = 6817
# munge refuses keys shorter than this (mungekey(8): 32 to 1024 bytes).
MUNGE_KEY_MIN_BYTES = 32


class JoinError(Exception):
    """The node cannot join; the message names what is missing or wrong."""


def say(line: str) -> None:
    # The journal keeps it (the unit's output); never a secret in it.
    print(f"gxnb-node-join: {line}", flush=True)


def _open(request: urllib.request.Request, timeout: float) -> bytes:
    # The metadata service is link-local: never through a proxy the image may set.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        return response.read()


def read_user_data(cloud: str, metadata_url: str = METADATA_URL, wait_s: float = 120) -> str:
    """The instance's user data from its cloud's metadata service (AWS: IMDSv2 with a session
    token, the only kind the launch template allows; OpenStack: its metadata service). The
    service may answer a few seconds after the network is up: asked again until wait_s."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if cloud == "aws":
                token = _open(urllib.request.Request(f"{metadata_url}/latest/api/token", method="PUT",
                                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}), 5)
                data = _open(urllib.request.Request(f"{metadata_url}/latest/user-data",
                                                    headers={"X-aws-ec2-metadata-token": token.decode()}), 5)
            else:
                data = _open(urllib.request.Request(f"{metadata_url}/openstack/latest/user_data"), 5)
            return data.decode()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise JoinError(f"the instance has no user data ({metadata_url}): it was not made by "
                                "gxnb-nodes, which launches job nodes with their name and controller") from None
            problem = f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            problem = str(error)
        if time.monotonic() > deadline:
            raise JoinError(f"the metadata service at {metadata_url} did not answer in {wait_s:.0f} s: {problem}")
        say(f"waiting for the metadata service at {metadata_url} ({problem})")
        time.sleep(2)


def parse_user_data(text: str) -> dict[str, str]:
    """gxnb-nodes' user data (gxnb_nodes.user_data), checked: each value named when wrong."""
    try:
        data = json.loads(text)
    except ValueError:
        raise JoinError(f"the user data is not gxnb-nodes' JSON: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise JoinError(f"the user data is not gxnb-nodes' JSON object: {text[:80]!r}")
    missing = [key for key in ("gxnb_node", "slurm_controller", "cluster", "munge_key_store") if not data.get(key)]
    if missing:
        raise JoinError(f"the user data lacks {', '.join(missing)} (gxnb-nodes' driver settings name the "
                        "munge key's store as munge_key_store; Terraform's modules set it)")
    if not NODE_NAME.match(str(data["gxnb_node"])):
        raise JoinError(f"gxnb_node is {data['gxnb_node']!r}: a Slurm node name (letters, digits, '-') is allowed")
    if not HOST_NAME.match(str(data["slurm_controller"])):
        raise JoinError(f"slurm_controller is {data['slurm_controller']!r}: a host name or an address is allowed")
    return {key: str(value) for key, value in data.items()}


def address_towards(controller: str, port: int = SLURMCTLD_PORT) -> str:
    """This host's address on the way to the controller (the kernel's route; nothing is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((controller, port))
            return probe.getsockname()[0]
    except OSError as error:
        raise JoinError(f"no route to the controller {controller}: {error}") from None


def fetch_munge_key(cloud: str, user_data: dict[str, str], settings: dict[str, Any]) -> bytes:
    """The cluster's munge key from the store the user data names, with this instance's identity."""
    store = munge_key_store(cloud, user_data["munge_key_store"],
                            region=user_data.get("region") or settings.get("region"),
                            endpoint_url=settings.get("endpoint_url"),
                            openstack_cloud=settings.get("openstack_cloud") or "gxnb-node")  # fmt: skip
    key = store.get()
    if key is None:
        raise JoinError(f"{user_data['munge_key_store']} holds no munge key yet: run site.yml, whose slurm "
                        "role stores the controller's key there (gxnb-nodes share-munge-key)")
    if len(key) < MUNGE_KEY_MIN_BYTES:
        raise JoinError(f"{user_data['munge_key_store']} holds {len(key)} bytes; munge needs "
                        f"{MUNGE_KEY_MIN_BYTES} or more")
    return key


def write(path: Path, content: bytes, mode: int, owner: str | None = None) -> bool:
    """Write the file if its content differs (atomically, with that mode); True if it changed."""
    try:
        if path.read_bytes() == content and (path.stat().st_mode & 0o7777) == mode:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.gxnb-node-join")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(descriptor, mode)
        if owner:
            account = pwd.getpwnam(owner)
            os.fchown(descriptor, account.pw_uid, account.pw_gid)
        os.write(descriptor, content)
    finally:
        os.close(descriptor)
    try:
        os.replace(temporary, path)
    except OSError as error:
        if error.errno not in (errno.EBUSY, errno.EXDEV):
            raise
        # A file the container runtime mounts over (/etc/hosts, /etc/hostname): written in place.
        os.unlink(temporary)
        with open(path, "wb") as target:
            target.write(content)
    return True


def replace_address(text: str, old: str, new: str) -> str:
    """Every whole occurrence of the old address (not 10.0.0.1 inside 10.0.0.12)."""
    return re.sub(rf"(?<![0-9.]){re.escape(old)}(?![0-9])", new, text)


def join(settings: dict[str, Any], user_data: dict[str, str], address: str, munge_key: bytes,
         root: Path = Path("/"), own_files: bool = True) -> list[str]:  # fmt: skip
    """Write what makes this host the node; returns what changed, by file."""
    node, controller = user_data["gxnb_node"], user_data["slurm_controller"]
    ipaddress.ip_address(address)  # the kernel's answer; a wrong one would be written everywhere
    changed = []

    def put(name: str, content: bytes, mode: int = 0o644, owner: str | None = None) -> None:
        if write(root / name.lstrip("/"), content, mode, owner if own_files else None):
            changed.append(name)

    put("/etc/hostname", f"{node}\n".encode())
    hosts = root / "etc/hosts"
    lines = [line for line in (hosts.read_text().splitlines() if hosts.exists() else ["127.0.0.1\tlocalhost"])
             if not line.startswith("127.0.1.1")]
    put("/etc/hosts", ("\n".join(lines + [f"127.0.1.1\t{node}"]) + "\n").encode())
    image_address = str(settings.get("image_address") or "")
    for name in settings.get("address_files") or []:
        path = root / str(name).lstrip("/")
        if image_address and path.exists():
            text = path.read_text()
            put(str(name), replace_address(text, image_address, address).encode(), path.stat().st_mode & 0o7777)
    put("/etc/munge/munge.key", munge_key, 0o400, "munge")
    put("/etc/default/slurmd", (
        "# Written by gxnb-node-join at boot: the node Slurm asked for, its configuration from the\n"
        "# controller (configless), its address told when it registers (cloud_reg_addrs).\n"
        f'SLURMD_OPTIONS="-N {node} --conf-server {controller}"\n').encode())  # fmt: skip
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gxnb-node-join", description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", default=SETTINGS_FILE)
    parser.add_argument("--root", default="/", help="write the node's files under this folder")
    parser.add_argument("--no-host", action="store_true",
                        help="change nothing of this host: no host name, no file owners")
    args = parser.parse_args(argv)
    try:
        try:
            settings = json.loads(Path(args.settings).read_text())
        except (OSError, ValueError) as error:
            raise JoinError(f"cannot read the settings {args.settings}: {error}") from None
        cloud = settings.get("cloud")
        if cloud not in CLOUDS:
            raise JoinError(f"{args.settings}: cloud is {cloud!r}; allowed: {', '.join(CLOUDS)}")
        metadata_url = str(settings.get("metadata_url") or METADATA_URL)
        user_data = parse_user_data(read_user_data(cloud, metadata_url, float(settings.get("metadata_wait_s", 120))))
        node = user_data["gxnb_node"]
        controller = user_data["slurm_controller"]
        say(f"this instance is node {node} of cluster {user_data['cluster']}, controller {controller}")
        address = address_towards(controller)
        say(f"its address towards the controller: {address}")
        munge_key = fetch_munge_key(cloud, user_data, settings)
        say(f"munge key fetched from {user_data['munge_key_store']} ({len(munge_key)} bytes)")
        changed = join(settings, user_data, address, munge_key, Path(args.root), own_files=not args.no_host)
        if not args.no_host:
            # Slurm knows the node by -N whatever the host name: a host that may not set it goes on.
            named = subprocess.run(["hostname", node], capture_output=True, text=True, timeout=30, check=False)
            if named.returncode != 0:
                say(f"could not set the host name to {node} ({named.stderr.strip()}); /etc/hostname has it")
        say("changed: " + (", ".join(changed) or "nothing (joined before)"))
    except (JoinError, DriverError, OSError) as error:
        say(f"cannot join: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
