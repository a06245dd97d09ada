#!/usr/bin/env python3
"""The local cluster's node helper: starts and stops the job nodes' containers for Slurm's power
saving (gxnb-nodes' local driver, in the head container, asks it over a Unix socket).

Why a helper and not the Docker socket in the head: whoever reaches slurmctld's host (a session
that escaped its container onto the head, say) would own this machine through the Docker
socket. Through this socket they can only start or stop the cluster's own job nodes. Only the
head's slurm user (slurmctld runs the programs as it) and root may ask (the peer's uid, as the
kernel reports it).

    scripts/local-nodes-helper.py start --socket-dir DIR --head NAME --node NAME [--node NAME ...]
    scripts/local-nodes-helper.py stop --socket-dir DIR
    scripts/local-nodes-helper.py serve ...      (in the foreground)

A suspended node's container is stopped, not removed: its disk (the deployed node: slurmd,
munge, its Docker engine and the notebook image) stays, as a stopped cloud instance's volume
does, and starting it again boots that node in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time

SOCKET_NAME = "helper.sock"
PID_NAME = "helper.pid"
LOG_NAME = "helper.log"
SYSTEMD_WAIT_S = 90


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def container_state(name: str) -> str:
    result = docker("inspect", "-f", "{{.State.Status}}", name, timeout=30)
    return result.stdout.strip() if result.returncode == 0 else "missing"


def log(line: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}", flush=True)


class Helper:
    def __init__(self, head: str, nodes: list[str]):
        self.head = head
        self.nodes = nodes
        self.locks = {node: threading.Lock() for node in nodes}  # one change at a time per node
        self._slurm_uid: int | None = None

    def slurm_uid(self) -> int | None:
        """The uid slurmctld's programs run as in the head (its slurm user)."""
        if self._slurm_uid is None:
            result = docker("exec", self.head, "id", "-u", "slurm", timeout=30)
            if result.returncode == 0 and result.stdout.strip().isdigit():
                self._slurm_uid = int(result.stdout.strip())
        return self._slurm_uid

    def allowed(self, uid: int) -> bool:
        return uid == 0 or uid == self.slurm_uid()

    def answer(self, request: dict) -> dict:
        action, node = request.get("action"), request.get("node", "")
        if action == "ping":
            states = ", ".join(f"{name} ({container_state(name)})" for name in self.nodes)
            return {"ok": True, "message": f"local node helper (pid {os.getpid()}): job nodes {states}"}
        if action not in ("resume", "suspend"):
            return {"ok": False, "message": f"action {action!r} is not one of ping, resume, suspend"}
        if node not in self.nodes:
            return {"ok": False, "message": f"{node!r} is not a job node of the local cluster "
                                            f"({', '.join(self.nodes)})"}  # fmt: skip
        with self.locks[node]:
            return self.resume(node) if action == "resume" else self.suspend(node)

    def resume(self, node: str) -> dict:
        state = container_state(node)
        if state == "missing":
            return {"ok": False, "message": f"{node}: its container is gone; make it again with make deploy-local"}
        if state != "running":
            started = docker("start", node)
            if started.returncode != 0:
                return {"ok": False, "message": f"{node}: docker start failed: {started.stderr.strip()[:300]}"}
        begun = time.monotonic()
        while time.monotonic() - begun < SYSTEMD_WAIT_S:
            status = docker("exec", node, "systemctl", "is-system-running", timeout=30).stdout.strip()
            if status in ("running", "degraded"):
                what = "was running" if state == "running" else "started"
                return {"ok": True, "message": f"{node}: container {what}, systemd {status} after "
                                               f"{time.monotonic() - begun:.1f}s"}  # fmt: skip
            time.sleep(0.5)
        return {"ok": False, "message": f"{node}: started, but systemd did not come up within {SYSTEMD_WAIT_S}s"}

    def suspend(self, node: str) -> dict:
        state = container_state(node)
        if state in ("missing", "exited", "created"):
            return {"ok": True, "message": f"{node}: container already {state}"}
        stopped = docker("stop", "--time", "30", node)
        if stopped.returncode != 0:
            return {"ok": False, "message": f"{node}: docker stop failed: {stopped.stderr.strip()[:300]}"}
        return {"ok": True, "message": f"{node}: container stopped"}


def serve(socket_dir: str, helper: Helper) -> None:
    path = os.path.join(socket_dir, SOCKET_NAME)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            pid, uid, _gid = struct.unpack("3i", self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                         struct.calcsize("3i")))  # fmt: skip
            try:
                request = json.loads(self.rfile.readline(4096) or b"{}")
            except ValueError:
                request = {}
            if not helper.allowed(uid):
                reply = {"ok": False, "message": f"uid {uid} may not start or stop nodes (only slurmctld's user)"}
            else:
                reply = helper.answer(request)
            log(f"uid {uid} pid {pid}: {request.get('action')} {request.get('node', '')}: {reply['message']}")
            self.wfile.write(json.dumps(reply).encode() + b"\n")

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    if os.path.exists(path):
        os.unlink(path)
    server = Server(path, Handler)
    # The head's slurm user connects through the bind mount; the uid check above decides.
    os.chmod(path, 0o666)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log(f"serving {path} for the job nodes {', '.join(helper.nodes)} (head {helper.head})")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if os.path.exists(path):
            os.unlink(path)


def ping(socket_dir: str, timeout: float = 5) -> str | None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(os.path.join(socket_dir, SOCKET_NAME))
            connection.sendall(b'{"action": "ping"}\n')
            return json.loads(connection.makefile().readline()).get("message")
    except (OSError, ValueError):
        return None


def running_pid(socket_dir: str) -> int | None:
    try:
        pid = int(open(os.path.join(socket_dir, PID_NAME)).read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start(args) -> int:
    os.makedirs(args.socket_dir, mode=0o755, exist_ok=True)
    pid = running_pid(args.socket_dir)
    wanted = {"head": args.head, "nodes": args.node}
    settings_file = os.path.join(args.socket_dir, "helper.settings")
    same = os.path.exists(settings_file) and open(settings_file).read() == json.dumps(wanted)
    if pid and same and ping(args.socket_dir):
        print(f"local node helper: running (pid {pid})")
        return 0
    if pid:
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
    with open(settings_file, "w") as settings:
        settings.write(json.dumps(wanted))
    command = [sys.executable, os.path.abspath(__file__), "serve", "--socket-dir", args.socket_dir, "--head", args.head]
    for node in args.node:
        command += ["--node", node]
    with open(os.path.join(args.socket_dir, LOG_NAME), "a") as log_file:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    with open(os.path.join(args.socket_dir, PID_NAME), "w") as pid_file:
        pid_file.write(str(process.pid))
    for _ in range(50):
        if ping(args.socket_dir):
            print(f"local node helper: started (pid {process.pid}, socket {args.socket_dir}/{SOCKET_NAME})")
            return 0
        time.sleep(0.2)
    print(f"local node helper: did not answer; see {args.socket_dir}/{LOG_NAME}", file=sys.stderr)
    return 1


def stop(args) -> int:
    pid = running_pid(args.socket_dir)
    if pid:
        os.kill(pid, signal.SIGTERM)
        print(f"local node helper: stopped (pid {pid})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "serve"])
    parser.add_argument("--socket-dir", required=True)
    parser.add_argument("--head", default="")
    parser.add_argument("--node", action="append", default=[])
    args = parser.parse_args()
    if args.command == "stop":
        return stop(args)
    if not args.head or not args.node:
        parser.error("--head and at least one --node are needed")
    if args.command == "start":
        return start(args)
    serve(args.socket_dir, Helper(args.head, args.node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
