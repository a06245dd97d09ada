"""The local cluster's driver: the job nodes are containers on the machine that runs the local
cluster (scripts/start-local-cluster.sh), and slurmctld runs in one of them. It asks the host's
node helper (scripts/local-nodes-helper.py) over a Unix socket mounted into the head to start or
stop a node's container: the head never holds the host's Docker socket, which would give anyone
who reached slurmctld's host the whole machine. The helper takes only "resume"/"suspend" of
the local cluster's own job nodes, from slurmctld's user.

Settings: {"socket": "/run/gxnb-local-nodes/helper.sock", "timeout_s": 120}
"""

from __future__ import annotations

import json
import socket
from typing import Any

from . import DriverError

DEFAULT_SOCKET = "/run/gxnb-local-nodes/helper.sock"


class Driver:
    # The helper serves each request in a thread of its own, one change at a time per node.
    parallel_resumes = 4

    def __init__(self, settings: dict[str, Any], nodes: dict[str, Any]):
        self.socket_path = str(settings.get("socket") or DEFAULT_SOCKET)
        self.timeout_s = float(settings.get("timeout_s") or 120)
        self.nodes = nodes

    def ask(self, action: str, node: str = "") -> dict[str, Any]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(self.timeout_s)
                connection.connect(self.socket_path)
                connection.sendall(json.dumps({"action": action, "node": node}).encode() + b"\n")
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
        except OSError as error:
            raise DriverError(f"{node or action}: the local node helper at {self.socket_path} does not answer "
                              f"({error}); start it with scripts/local-nodes-helper.py start") from None  # fmt: skip
        try:
            answer = json.loads(reply)
        except ValueError:
            raise DriverError(f"{node or action}: the local node helper answered {reply[:200]!r}") from None
        if not answer.get("ok"):
            raise DriverError(f"{node or action}: {answer.get('message', 'the local node helper refused')}")
        return answer

    def check(self) -> str:
        return self.ask("ping")["message"]

    def resume(self, node: str) -> str:
        return self.ask("resume", node)["message"]

    def suspend(self, node: str) -> str:
        return self.ask("suspend", node)["message"]
