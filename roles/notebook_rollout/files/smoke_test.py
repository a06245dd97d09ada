#!/usr/bin/env python3
"""Launch the notebook tool once through Galaxy's public route and check it runs IMAGE.

    smoke_test.py --galaxy-url URL --tool-id ID --image REF [--timeout S]   (API key in GALAXY_API_KEY)

Steps, each printed as it happens: new history, tool run, entry point active, JupyterLab
answering 200 through nginx and gx-it-proxy, session shut down, the job's container
(Galaxy's job metrics) is REF, history purged. Last line: a JSON summary. Exit 1 with the
reason (and the job's stderr tail) on any failure. Standard library only: any python3 runs it.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request


class SmokeTestFailed(Exception):
    pass


def localhost_subdomains_resolve_to_the_loopback() -> None:
    """Sessions routed by subdomain live at <key>-<token>.ep.interactivetool.<host>: browsers
    resolve every *.localhost name to the loopback (RFC 6761), glibc does not; do as they do
    (in this process; the end-to-end tests' helpers use this too)."""
    if getattr(socket.getaddrinfo, "localhost_subdomains", False):
        return
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return original(host, *args, **kwargs)

    getaddrinfo.localhost_subdomains = True
    socket.getaddrinfo = getaddrinfo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxy-url", required=True)
    parser.add_argument("--tool-id", required=True)
    parser.add_argument("--image", required=True, help="the container reference the job must run")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    key = os.environ.get("GALAXY_API_KEY", "")
    if not key:
        print("smoke test: GALAXY_API_KEY is not set", file=sys.stderr)
        return 2
    localhost_subdomains_resolve_to_the_loopback()
    smoke = SmokeTest(args.galaxy_url.rstrip("/"), key, args.timeout)
    try:
        summary = smoke.run(args.tool_id, args.image)
    except SmokeTestFailed as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        smoke.clean_up()
    print(json.dumps(summary))
    return 0


class SmokeTest:
    def __init__(self, galaxy_url: str, key: str, timeout: float):
        self.galaxy_url, self.key, self.timeout = galaxy_url, key, timeout
        self.start = time.monotonic()
        self.history_id = self.job_id = self.session_url = None
        # The session's cookies (JupyterLab's XSRF cookie, set by its first page).
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def step(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f} s] {message}", flush=True)

    def request(self, method: str, url: str, body: dict | None = None, api: bool = True) -> tuple[int, str]:
        data = json.dumps(body).encode() if body is not None else None
        # Galaxy's API takes the key; a session's JupyterLab checks XSRF: its cookie's value as a header.
        xsrf = next((cookie.value for cookie in self.cookies if cookie.name == "_xsrf"), "")
        headers = {"x-api-key": self.key, "content-type": "application/json"} if api else {"X-XSRFToken": xsrf}
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=30) as answer:
                return answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc)

    def api(self, method: str, path: str, body: dict | None = None):
        status, text = self.request(method, f"{self.galaxy_url}/api/{path}", body)
        if status >= 300 or status == 0:
            raise SmokeTestFailed(f"{method} /api/{path} answered {status}: {text[:300]}")
        return json.loads(text) if text else None

    def remaining(self) -> float:
        return self.timeout - (time.monotonic() - self.start)

    def job_failure(self, state: str) -> SmokeTestFailed:
        # The container's own stderr says why it stopped; the job's adds the runner's noise.
        # Galaxy may show the final state a moment before it has stored them: wait a little.
        deadline = time.monotonic() + 15
        while True:
            job = self.api("GET", f"jobs/{self.job_id}?full=true")
            tail = (job.get("tool_stderr") or job.get("stderr") or "")[-1500:]
            if tail.strip() or time.monotonic() > deadline:
                break
            time.sleep(1)
        tail = tail or "(Galaxy recorded none)"
        return SmokeTestFailed(
            f"job {self.job_id} ended in state '{state}' before JupyterLab answered; stderr:\n{tail}"
        )

    def run(self, tool_id: str, image: str) -> dict:
        self.history_id = self.api("POST", "histories", {"name": f"rollout smoke test {time.strftime('%F %T')}"})["id"]
        launched = time.monotonic()
        run = self.api("POST", "tools", {"tool_id": tool_id, "history_id": self.history_id,
                                         "inputs": {"mode|mode_select": "fresh"}})  # fmt: skip
        self.job_id = run["jobs"][0]["id"]
        self.step(f"launched {tool_id}: job {self.job_id}")
        last_state = None
        while True:
            eps = self.api("GET", f"entry_points?job_id={self.job_id}")
            if eps and eps[0].get("active"):
                break
            state = self.api("GET", f"jobs/{self.job_id}")["state"]
            if state in ("error", "failed", "deleted", "deleting", "ok"):
                raise self.job_failure(state)
            if state != last_state:
                self.step(f"job {state}")
                last_state = state
            if self.remaining() <= 0:
                raise SmokeTestFailed(f"entry point of job {self.job_id} not active after {self.timeout:.0f} s")
            time.sleep(0.5)
        target = self.api("GET", f"entry_points/{eps[0]['id']}/access")["target"]
        # Subdomain routing: a full URL of its own; path routing: a path on Galaxy's URL.
        self.session_url = (target if "://" in target else self.galaxy_url + target).rstrip("/") + "/"
        self.step(f"entry point active: {self.session_url}")
        while True:
            status, text = self.request("GET", f"{self.session_url}lab", api=False)
            if status == 200 and "JupyterLab" in text:
                break
            state = self.api("GET", f"jobs/{self.job_id}")["state"]
            if state in ("error", "failed", "deleted", "deleting", "ok"):
                raise self.job_failure(state)
            if self.remaining() <= 0:
                raise SmokeTestFailed(f"JupyterLab did not answer through {self.session_url} within "
                                      f"{self.timeout:.0f} s (last answer {status}: {text[:200]})")  # fmt: skip
            time.sleep(0.5)
        seconds = time.monotonic() - launched
        self.step(f"JupyterLab answered through the route in {seconds:.1f} s")
        # Galaxy records the container a job ran (job metrics, core plugin) when the job ends:
        # shut the session down the way a user does, then read it.
        self.request("POST", f"{self.session_url}api/shutdown", {}, api=False)
        self.session_url = None
        state = self.wait_for_end(60)
        metrics = {m["name"]: m["raw_value"] for m in self.api("GET", f"jobs/{self.job_id}?full=true")["job_metrics"]}
        ran = metrics.get("container_id")
        if ran is None:
            raise SmokeTestFailed(f"job {self.job_id} ({state}) has no container_id job metric: enable Galaxy's core "
                                  "job metrics plugin (it records the container a job ran)")  # fmt: skip
        if ran != image:
            raise SmokeTestFailed(f"job {self.job_id} ran {ran}, not {image}: Galaxy still runs the previous image")
        self.step(f"session shut down ({state}); the job's container was {image}")
        return {"job_id": self.job_id, "image": image, "seconds_to_jupyterlab": round(seconds, 1)}

    def wait_for_end(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.api("GET", f"jobs/{self.job_id}")["state"]
            if state in ("ok", "error", "failed", "deleted"):
                return state
            if time.monotonic() > deadline:
                raise SmokeTestFailed(f"job {self.job_id} still '{state}' {timeout:.0f} s after its session shut down")
            time.sleep(1)

    def clean_up(self) -> None:
        """Shut the smoke session down (or cancel its job) and purge its history; never raises."""
        try:
            if self.session_url:
                self.request("POST", f"{self.session_url}api/shutdown", {}, api=False)
            if self.job_id:
                status, text = self.request("GET", f"{self.galaxy_url}/api/jobs/{self.job_id}")
                if status == 200 and json.loads(text)["state"] not in ("ok", "error", "failed", "deleted"):
                    self.request("DELETE", f"{self.galaxy_url}/api/jobs/{self.job_id}")
            if self.history_id:
                self.request("DELETE", f"{self.galaxy_url}/api/histories/{self.history_id}?purge=true")
            self.step("smoke session shut down, history purged")
        except Exception as exc:  # cleaning up must not hide the result
            self.step(f"clean-up incomplete: {exc}")


if __name__ == "__main__":
    sys.exit(main())
