#!/usr/bin/env python3
"""Many users at once: N notebook sessions (one per new user) open together, each running a cell
every second for a minute over its kernel websocket through the public route (TLS, nginx,
gx-it-proxy, PostgreSQL's map). Prints the errors (goal: 0) and the cells' round trips (p50, p95,
max).

    .venv/bin/python tests/benchmarks/concurrent_sessions.py [-n 10] [--seconds 60]

Needs the local deployment (make deploy-local). Its two job nodes hold 8 sessions at once (a
session takes a shard of a fake GPU and 2 of its node's 8 cores: the cores run out first): more
wait, queued, and are reported as such.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import statistics
import sys
import time
import uuid

import websocket

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.support import galaxy_it  # noqa: E402


def cell(ws: websocket.WebSocket, code: str) -> None:
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({"header": {"msg_id": msg_id, "username": "bench", "session": "bench",
                                   "msg_type": "execute_request", "version": "5.3"},
                        "parent_header": {}, "metadata": {}, "channel": "shell",
                        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                    "allow_stdin": False, "stop_on_error": True}}))  # fmt: skip
    while True:
        msg = json.loads(ws.recv())
        if msg["header"]["msg_type"] == "execute_reply" and msg["parent_header"].get("msg_id") == msg_id:
            if msg["content"]["status"] != "ok":
                raise RuntimeError(f"cell ended {msg['content']['status']}")
            return


def idle_until(ws: websocket.WebSocket, moment: float) -> None:
    """Wait, reading the socket as a browser does: it answers the server's pings on the way (Jupyter
    closes a kernel socket that has not answered its pings for about 90 s)."""
    while (left := moment - time.monotonic()) > 0:
        ws.settimeout(min(left, 5.0))
        try:
            ws.recv()  # a ping is answered inside recv; kernel messages nobody waits for are dropped
        except websocket.WebSocketTimeoutException:
            pass
    ws.settimeout(30)


def one_user(seconds: int, start_together: float) -> dict:
    """One user's session: cells every second until `seconds` have passed; round trips and errors."""
    endpoints = galaxy_it.load_endpoints()
    gi, history_id, job_id = galaxy_it.launch_notebook(endpoints["galaxy_url"], galaxy_it.new_user().key)
    try:
        entry_point = galaxy_it.wait_for_entry_point(gi, job_id, timeout=max(30.0, start_together - time.monotonic()),
                                                     progress=None)  # fmt: skip
    except TimeoutError as error:  # still queued: the cluster is full
        gi.jobs.cancel_job(job_id)
        return {"times": [], "errors": [], "not_opened": str(error)}
    session = galaxy_it.NotebookSession(gi, endpoints["galaxy_url"], history_id, job_id, entry_point)
    times: list[float] = []
    errors: list[str] = []
    try:
        galaxy_it.wait_for_http_200(session.url + "api/status", timeout=600)
        kernel = session.api("POST", "api/kernels", json={"name": "python3"}).json()["id"]
        ws_url = session.kernel_channels_url(kernel)
        ws = websocket.create_connection(ws_url, timeout=30, origin=session.origin)
        cell(ws, "counter = 0")
        # Wait for the others, so that the minute of cells runs with every session open.
        idle_until(ws, start_together)
        for second in range(seconds):
            idle_until(ws, start_together + second)
            begin = time.perf_counter()
            try:
                cell(ws, "counter += 1; sum(range(10000))")
                times.append(time.perf_counter() - begin)
            except Exception as error:  # noqa: BLE001 - every failure counts as an error
                errors.append(f"{type(error).__name__}: {error}")
                ws = websocket.create_connection(ws_url, timeout=30, origin=session.origin)
        ws.close()
    finally:
        session.galaxy.jobs.cancel_job(session.job_id)
    return {"times": times, "errors": errors, "not_opened": ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10, help="sessions open at once")
    parser.add_argument("--seconds", type=int, default=60, help="cells per session, one a second")
    parser.add_argument("--launch-allowance", type=float, default=240,
                        help="seconds allowed for every session to open before the cells start")
    args = parser.parse_args()
    start_together = time.monotonic() + args.launch_allowance
    print(f"{args.n} sessions, one per user; cells start together in {args.launch_allowance:.0f} s", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.n) as pool:
        results = list(pool.map(lambda _: one_user(args.seconds, start_together), range(args.n)))
    times = sorted(t for r in results for t in r["times"])
    errors = [e for r in results for e in r["errors"]]
    queued = [r["not_opened"] for r in results if r["not_opened"]]
    if queued:
        print(f"{len(queued)} of {args.n} sessions did not open within {args.launch_allowance:.0f} s "
              f"(queued: the cluster is full); measured the {args.n - len(queued)} open ones")
    if times:
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"{len(times)} cells in {args.n - len(queued)} sessions: "
              f"round trip p50 {statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
              f"max {times[-1] * 1000:.1f} ms")  # fmt: skip
    print(f"errors: {len(errors)} (goal 0){': ' + '; '.join(sorted(set(errors))[:5]) if errors else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
