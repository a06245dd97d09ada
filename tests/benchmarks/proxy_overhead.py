#!/usr/bin/env python3
"""What nginx and gx-it-proxy add to a notebook session's requests: small GETs (JupyterLab's
api/status) and kernel websocket round trips (an execute_request of `pass` to its execute_reply),
through the public route (TLS, nginx, gx-it-proxy) and straight to the session's container, in
one run, interleaved, from the Galaxy server (the only host the job nodes' firewall lets reach a
container). Prints p50 and p99 of each path and their difference.

    .venv/bin/python tests/benchmarks/proxy_overhead.py [-n 500]

Needs the local deployment (make deploy-local). Goal: a p99 overhead of 5 ms or less.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.support import galaxy_it, local_cluster  # noqa: E402

# Runs on the Galaxy server with Galaxy's virtualenv (requests, websocket-client). *.localhost
# names the public route's sessions: resolved to the loopback, where nginx listens.
MEASURE = r'''
import json, socket, statistics, sys, time, uuid
import requests, websocket

args = json.loads(sys.stdin.readline())
real_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *rest, **kw):
    return real_getaddrinfo("127.0.0.1" if str(host).endswith(".localhost") else host, *rest, **kw)
socket.getaddrinfo = getaddrinfo
CA = "/etc/ssl/certs/ca-certificates.crt"

# A session answers only through its route: the direct path names the route's host as the
# proxy does, and both send the route's origin as a browser would.
HEADERS = {"proxied": {}, "direct": {"Host": args["route_host"]}}

def ws_connect(name, base):
    ws_base = base.replace("https://", "wss://").replace("http://", "ws://")
    return websocket.create_connection(ws_base + "api/kernels/" + args["kernel"] + "/channels",
                                       sslopt={"ca_certs": CA}, timeout=30, origin=args["origin"],
                                       **({"host": HEADERS[name]["Host"]} if HEADERS[name] else {}))

def round_trip(ws):
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({"header": {"msg_id": msg_id, "username": "bench", "session": "bench",
                                   "msg_type": "execute_request", "version": "5.3"},
                        "parent_header": {}, "metadata": {}, "channel": "shell",
                        "content": {"code": "pass", "silent": False, "store_history": False,
                                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
    while True:
        msg = json.loads(ws.recv())
        if msg["header"]["msg_type"] == "execute_reply" and msg["parent_header"].get("msg_id") == msg_id:
            return

paths = {"proxied": args["proxied"], "direct": args["direct"]}
http = {name: requests.Session() for name in paths}
sockets = {name: ws_connect(name, base) for name, base in paths.items()}
times = {(kind, name): [] for kind in ("get", "ws") for name in paths}
for name in paths:  # warm up: connections, TLS sessions, the kernel
    for _ in range(20):
        http[name].get(paths[name] + "api/status", verify=CA, headers=HEADERS[name]).raise_for_status()
        round_trip(sockets[name])
for _ in range(args["n"]):
    for name in paths:
        start = time.perf_counter()
        http[name].get(paths[name] + "api/status", verify=CA, headers=HEADERS[name]).raise_for_status()
        times[("get", name)].append(time.perf_counter() - start)
        start = time.perf_counter()
        round_trip(sockets[name])
        times[("ws", name)].append(time.perf_counter() - start)
print(json.dumps({f"{kind} {name}": values for (kind, name), values in times.items()}))
'''


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="requests of each kind on each path")
    args = parser.parse_args()

    session = galaxy_it.new_users_session()
    try:
        galaxy_it.wait_for_http_200(session.url + "api/status")
        kernel = session.api("POST", "api/kernels", json={"name": "python3"}).json()["id"]
        key, _token = session.key_and_token
        head = local_cluster.head()
        row = local_cluster.run(head, "runuser", "-u", "postgres", "--", "psql", "-XAtq", "-d", "galaxy_it_map",
                                "-c", f"SELECT host, port FROM gxitproxy WHERE key = '{key}'").strip()  # fmt: skip
        host, port = row.split("|")
        direct = f"http://{host}:{port}{session.path}"
        print(f"session {session.url} -> container {direct}; {args.n} of each, interleaved, from {head}",
              flush=True)
        request = json.dumps({"proxied": session.url, "direct": direct, "kernel": kernel, "n": args.n,
                              "route_host": session.origin.split("://", 1)[1], "origin": session.origin})
        out = local_cluster.run(head, "/srv/galaxy/venv/bin/python", "-c", MEASURE, stdin=request + "\n",
                                timeout=1800)  # fmt: skip
        times = json.loads(out.strip().splitlines()[-1])
    finally:
        session.galaxy.jobs.cancel_job(session.job_id)

    worst = 0.0
    for kind, label in (("get", "small GET (api/status)"), ("ws", "kernel websocket round trip")):
        proxied, direct = times[f"{kind} proxied"], times[f"{kind} direct"]
        p50 = (percentile(proxied, 50) - percentile(direct, 50)) * 1000
        p99 = (percentile(proxied, 99) - percentile(direct, 99)) * 1000
        worst = max(worst, p99)
        ms = {name: (percentile(values, 50) * 1000, percentile(values, 99) * 1000)
              for name, values in (("proxied", proxied), ("direct", direct))}
        print(f"{label}: proxied p50 {ms['proxied'][0]:.2f} ms p99 {ms['proxied'][1]:.2f} ms;"
              f" direct p50 {ms['direct'][0]:.2f} ms p99 {ms['direct'][1]:.2f} ms;"
              f" overhead p50 {p50:.2f} ms p99 {p99:.2f} ms")  # fmt: skip
    print(f"largest p99 overhead {worst:.2f} ms (goal <= 5 ms): {'met' if worst <= 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
