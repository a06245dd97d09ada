#!/usr/bin/env python3
"""The peer, side by side: JupyterHub with batchspawner's SlurmSpawner and configurable-http-proxy
on the head of the local cluster, spawning the same notebook image through the same node wrapper
(slurm-job-docker) with the same Slurm request as a Galaxy session; launches through Galaxy and
through the hub, interleaved in one run: one at a time, then N at once, launch call to
JupyterLab's 200 from this machine, medians, p95s and the ratios.

    .venv/bin/python tests/benchmarks/peer_jupyterhub.py [-n 5] [--at-once 4 [8]] [--keep]

Needs the local deployment (make deploy-local). Installs the hub (PyPI) and the proxy (npm) in
/opt/gxnb-peer-jupyterhub on the head, runs them as a transient unit, and removes all of it at the
end (--keep: leave it for the next run). It is a benchmark, not part of the service or of
`make test`.

What the peer does not do that a Galaxy session does: the session's route login (its JupyterLab
here takes a token), the history, the job's secrets and outputs, the per-user limits. Both run
the container with the same flags, cores, memory and Slurm partition.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import secrets
import shlex
import statistics
import sys
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.benchmarks.cluster_scaling import p95  # noqa: E402
from tests.benchmarks.time_to_notebook import open_session  # noqa: E402
from tests.support import galaxy_it, local_cluster  # noqa: E402

PEER_DIR = "/opt/gxnb-peer-jupyterhub"
UNIT = "gxnb-peer-jupyterhub"
PUBLIC_PORT, HUB_PORT = 8100, 8181
JUPYTERHUB, BATCHSPAWNER, CHP = "6.1.1", "1.3.0", "4"
HUB_USER = "galaxy"  # a Unix user on the head and the nodes whose jobs may run containers, as Galaxy's

# batchspawner fills {{...}}; the rest is bash. The container as a Galaxy session's (TPV's
# container_base flags), through the node's slurm-job-docker; the published port is told to the hub
# (batchspawner's API) once Docker has it, as the container monitor tells Galaxy's runner.
BATCH_SCRIPT = r"""#!/bin/bash
#SBATCH --output=/tmp/peer-jupyterhub-%j.log
#SBATCH --job-name=peer-jupyterhub
#SBATCH --chdir=/tmp
#SBATCH --export={{keepvars}}
#SBATCH --partition={{partition}}
#SBATCH --time={{runtime}}
#SBATCH --mem={{memory}}
#SBATCH --cpus-per-task={{nprocs}}
{% if options %}#SBATCH {{options}}{% endif %}
set -euo pipefail
name="peer-jupyterhub-$SLURM_JOB_ID"
export GALAXY_GPU_ENABLED=__GPU__  # as TPV's GPU destinations: slurm-job-docker adds the allocated GPUs
/usr/local/bin/slurm-job-docker run --name "$name" --init --cap-drop ALL --security-opt no-new-privileges \
  --pids-limit __PIDS__ --cpus {{nprocs}} --memory {{memory}} -p 8888 \
  -e GXNB_SESSION_AUTH=token -e JUPYTER_TOKEN -e JUPYTER_BASE_URL="$JUPYTERHUB_SERVICE_PREFIX" \
  __IMAGE__ start-notebook.sh &
runner=$!
port=""
until [ -n "$port" ]; do
  kill -0 "$runner" 2>/dev/null || { echo "the container did not start" >&2; exit 1; }
  port=$(docker port "$name" 8888/tcp 2>/dev/null | head -n1 | sed 's/.*://') || true
  [ -n "$port" ] || sleep 0.2
done
python3 -c 'import json, os, sys, urllib.request as u
url, token = os.environ["JUPYTERHUB_API_URL"] + "/batchspawner", os.environ["JUPYTERHUB_API_TOKEN"]
body = json.dumps({"port": int(sys.argv[1])}).encode()
u.urlopen(u.Request(url, data=body, headers={"Authorization": "token " + token}, method="POST"), timeout=30)' "$port"
wait "$runner"
"""

HUB_CONFIG = """# Written by tests/benchmarks/peer_jupyterhub.py: the peer, for the benchmark only.
import json, os
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://0.0.0.0:{public_port}"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:{hub_port}"
c.JupyterHub.hub_connect_url = "http://{head_address}:{hub_port}"
c.JupyterHub.db_url = "sqlite:///{peer_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{peer_dir}/cookie_secret"
c.ConfigurableHTTPProxy.command = ["{peer_dir}/node_modules/.bin/configurable-http-proxy"]
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [{{"name": "benchmark", "api_token": os.environ["PEER_BENCHMARK_TOKEN"]}}]
c.JupyterHub.load_roles = [{{"name": "benchmark", "services": ["benchmark"],
                            "scopes": ["admin:users", "admin:servers", "list:users"]}}]
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.Spawner.start_timeout = 900
c.Spawner.http_timeout = 300
c.Spawner.environment = {{"JUPYTER_TOKEN": os.environ["PEER_LAB_TOKEN"]}}
c.SlurmSpawner.exec_prefix = "/usr/bin/setpriv --reuid={user} --regid={user} --init-groups"
c.SlurmSpawner.batch_submit_cmd = "/usr/bin/sbatch --parsable"
c.SlurmSpawner.req_srun = ""
c.SlurmSpawner.req_partition = {partition!r}
c.SlurmSpawner.req_nprocs = {cpus!r}
c.SlurmSpawner.req_memory = {memory!r}
c.SlurmSpawner.req_runtime = {runtime!r}
c.SlurmSpawner.req_options = {options!r}
c.SlurmSpawner.batch_script = json.loads({batch_script!r})
"""


def head_run(*command: str, timeout: int = 120, stdin: str | None = None, check: bool = True) -> str:
    return local_cluster.run(local_cluster.head(), *command, timeout=timeout, stdin=stdin, check=check)


def galaxy_session_request(admin, galaxy_job_id: str) -> dict[str, str]:
    """What a Galaxy session asked Slurm for (scontrol of its job): partition, CPUs, memory, time
    and GPUs or shards, for the hub's spawner to ask the same."""
    slurm_id = admin.jobs.show_job(galaxy_job_id, full_details=True)["external_id"]
    line = local_cluster.slurm("scontrol", "-o", "show", "job", slurm_id)
    fields = dict(pair.split("=", 1) for pair in line.split() if "=" in pair)
    gres, memory = fields.get("TresPerNode", ""), fields["MinMemoryNode"]
    mebibytes = float(memory[:-1]) * {"M": 1, "G": 1024, "T": 1024 * 1024}[memory[-1]]
    return {
        "partition": fields["Partition"],
        "cpus": fields["NumCPUs"],
        "memory": f"{mebibytes:.0f}M",
        "runtime": fields["TimeLimit"],
        "options": "--no-requeue" + (f" --gres={gres.replace('gres:', '')}" if gres and gres != "(null)" else ""),
    }


def install_peer(request: dict[str, str], image: str, pids_limit: str) -> dict[str, str]:
    """The hub and the proxy on the head, started; returns the tokens (benchmark's, JupyterLab's)."""
    print(f"peer: installing JupyterHub {JUPYTERHUB}, batchspawner {BATCHSPAWNER} (PyPI) and "
          f"configurable-http-proxy {CHP} (npm) in {PEER_DIR} on the head ...", flush=True)  # fmt: skip
    head_run("sh", "-c", f"mkdir -p {PEER_DIR} && test -x {PEER_DIR}/venv/bin/jupyterhub || "
             f"(python3 -m venv {PEER_DIR}/venv && {PEER_DIR}/venv/bin/pip install -q "
             f"jupyterhub=={JUPYTERHUB} batchspawner=={BATCHSPAWNER})", timeout=900)  # fmt: skip
    head_run("sh", "-c", f"test -x {PEER_DIR}/node_modules/.bin/configurable-http-proxy || npm install --prefix "
             f"{PEER_DIR} --no-fund --no-audit configurable-http-proxy@{CHP}", timeout=900)  # fmt: skip
    tokens = {"PEER_BENCHMARK_TOKEN": secrets.token_hex(24), "PEER_LAB_TOKEN": secrets.token_hex(24)}
    head_run("sh", "-c", f"umask 077; cat > {PEER_DIR}/tokens.env",
             stdin="".join(f"{key}={value}\n" for key, value in tokens.items()))  # fmt: skip
    gpu = "true" if "--gres=" in request["options"] else "false"
    script = BATCH_SCRIPT.replace("__IMAGE__", shlex.quote(image)).replace("__PIDS__", pids_limit)
    script = script.replace("__GPU__", gpu)
    config = HUB_CONFIG.format(public_port=PUBLIC_PORT, hub_port=HUB_PORT, peer_dir=PEER_DIR, user=HUB_USER,
                               head_address=local_cluster.containers()[local_cluster.head()]["address"],
                               batch_script=json.dumps(script), **request)  # fmt: skip
    head_run("tee", f"{PEER_DIR}/jupyterhub_config.py", stdin=config)
    head_run("systemctl", "stop", UNIT, check=False)
    head_run("systemctl", "reset-failed", UNIT, check=False)
    head_run("systemd-run", f"--unit={UNIT}", f"--property=EnvironmentFile={PEER_DIR}/tokens.env",
             f"--working-directory={PEER_DIR}", f"{PEER_DIR}/venv/bin/jupyterhub", "-f",
             f"{PEER_DIR}/jupyterhub_config.py")  # fmt: skip
    deadline = time.monotonic() + 120
    while hub_api("GET", "", tokens, timeout=60).status_code != 200:  # the proxy answers 404 until the hub's route
        assert time.monotonic() < deadline, "the hub did not answer within 120 s: journalctl -u " + UNIT
        time.sleep(0.5)
    made = hub_api("POST", f"/users/{HUB_USER}", tokens)
    assert made.status_code in (201, 409), f"the hub's user {HUB_USER}: {made.status_code} {made.text[:300]}"
    print(f"peer: JupyterHub answering at {peer_url()}", flush=True)
    return tokens


def remove_peer() -> None:
    head_run("systemctl", "stop", UNIT, check=False)
    head_run("scancel", "--name=peer-jupyterhub", check=False)
    head_run("rm", "-rf", PEER_DIR)
    print(f"peer: removed ({PEER_DIR}, unit {UNIT}, its Slurm jobs)", flush=True)


def peer_url() -> str:
    return f"http://{local_cluster.containers()[local_cluster.head()]['address']}:{PUBLIC_PORT}"


def hub_api(method: str, path: str, tokens: dict[str, str], timeout: float = 30, body=None) -> requests.Response:
    """The hub's REST API as the benchmark's service (retried while the hub starts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            headers = {"Authorization": f"token {tokens['PEER_BENCHMARK_TOKEN']}"}
            response = requests.request(method, f"{peer_url()}/hub/api{path}", timeout=30, json=body, headers=headers)
            if response.status_code < 500 or time.monotonic() > deadline:
                return response
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def peer_launch(tokens: dict[str, str], name: str) -> float:
    """Seconds from the hub's spawn call to JupyterLab's 200 through the hub's proxy; then stopped."""
    start = time.monotonic()
    started = hub_api("POST", f"/users/{HUB_USER}/servers/{name}", tokens)
    assert started.status_code in (201, 202), f"spawn {name}: {started.status_code} {started.text[:300]}"
    lab = f"{peer_url()}/user/{HUB_USER}/{name}/lab"
    headers = {"Authorization": f"token {tokens['PEER_LAB_TOKEN']}"}
    deadline = start + 900
    while True:
        try:
            # Not following redirects: until its route exists, the hub answers for the server.
            answer = requests.get(lab, headers=headers, timeout=30, allow_redirects=False)
            if answer.status_code == 200 and "jupyter-config-data" in answer.text:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"{name}: no JupyterLab at {lab} after 900 s"
        time.sleep(0.25)
    elapsed = time.monotonic() - start
    stopped = hub_api("DELETE", f"/users/{HUB_USER}/servers/{name}", tokens, body={"remove": True})
    assert stopped.status_code in (202, 204), f"stop {name}: {stopped.status_code} {stopped.text[:300]}"
    return elapsed


def galaxy_launch(endpoints: dict, api_key: str, admin=None) -> tuple[float, dict | None]:
    """Seconds from Galaxy's launch call to JupyterLab's 200 through nginx; then shut down. With an
    admin: also what the session asked Slurm for."""
    elapsed, gi, job_id, session = open_session(endpoints, api_key)
    request = galaxy_session_request(admin, job_id) if admin is not None else None
    session.api("POST", "api/shutdown")
    galaxy_it.wait_for_job(gi, job_id, timeout=120)
    return elapsed, request


def at_once(count: int, launch) -> list[float]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(launch, range(count)))


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.1f} s, p95 {p95(times):.1f} s (n={len(times)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="single launches of each (interleaved)")
    parser.add_argument("--at-once", type=int, nargs="*", default=[4],
                        help="launches at once, of each, one crowd per count (e.g. 4 8; none: no crowd)")
    parser.add_argument("--keep", action="store_true", help="leave the hub installed and running")
    args = parser.parse_args()
    endpoints = galaxy_it.load_endpoints()
    facts = local_cluster.facts()
    local_cluster.all_nodes_up()  # a node started for the first launch would count its boot
    # A user each for the launches at once (Galaxy limits sessions per user; the hub's run as one
    # user's named servers, which it does not limit here).
    keys = [galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])[1]
            for _ in range(max([1, *args.at_once]))]  # fmt: skip
    _warmup, request = galaxy_launch(endpoints, keys[0], galaxy_it.admin_instance())
    print(f"a Galaxy session asks Slurm for {request}; the peer asks the same", flush=True)
    tokens = install_peer(request, endpoints["notebook_image"], str(facts["job_pids_limit"]))
    try:
        peer_launch(tokens, "warmup")  # the hub's first spawn (its user, its proxy routes), as Galaxy's above
        ours, theirs = [], []
        for i in range(args.n):
            ours.append(galaxy_launch(endpoints, keys[0])[0])
            theirs.append(peer_launch(tokens, f"one{i}"))
            print(f"one launch {i + 1}/{args.n}: Galaxy {ours[-1]:.1f} s, JupyterHub {theirs[-1]:.1f} s", flush=True)
        print(f"one launch: Galaxy {summary(ours)}; JupyterHub + SlurmSpawner {summary(theirs)}; "
              f"Galaxy/JupyterHub {statistics.median(ours) / statistics.median(theirs):.2f}x (goal: below 1)")
        for count in args.at_once:
            crowd_ours = at_once(count, lambda i: galaxy_launch(endpoints, keys[i])[0])
            crowd_theirs = at_once(count, lambda i, count=count: peer_launch(tokens, f"crowd{count}-{i}"))
            print(f"{count} at once: Galaxy {summary(crowd_ours)}; JupyterHub {summary(crowd_theirs)}; "
                  f"p95 Galaxy/JupyterHub {p95(crowd_ours) / p95(crowd_theirs):.2f}x; "
                  f"Galaxy's p95 / its one launch {p95(crowd_ours) / statistics.median(ours):.1f}x (goal <= 3x)")
    finally:
        if not args.keep:
            remove_peer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
