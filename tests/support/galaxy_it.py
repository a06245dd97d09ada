"""Launch the notebook interactive tool as a Galaxy user and talk to JupyterLab through nginx.

Used by the end-to-end tests and the time-to-notebook benchmark.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import secrets
import ssl
import time
import uuid
from dataclasses import dataclass, field

import requests
from bioblend.galaxy import GalaxyInstance

REPO = pathlib.Path(__file__).resolve().parents[2]
ENDPOINTS_FILE = REPO / ".deploy-local" / "endpoints.json"
NOTEBOOK_TOOL_ID = "interactive_tool_ml_jupyter_notebook"


def _localhost_subdomains_resolve_to_the_loopback() -> None:
    """Sessions routed by subdomain live at <key>-<token>.ep.interactivetool.localhost locally:
    resolve *.localhost as browsers do, with the rollout smoke test's own helper (one definition)."""
    spec = importlib.util.spec_from_file_location(
        "gxnb_smoke_test", REPO / "roles" / "notebook_rollout" / "files" / "smoke_test.py")
    smoke_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke_test)
    smoke_test.localhost_subdomains_resolve_to_the_loopback()


_localhost_subdomains_resolve_to_the_loopback()


def trust_the_local_ca() -> None:
    """Trust the local deployment's CA as a user told to would (the endpoints file names the copy
    the deploy made): requests, bioblend, tus uploads, urllib and websocket-client then verify
    the certificate against this machine's CAs plus that one."""
    if not ENDPOINTS_FILE.exists() or not (ca_path := load_endpoints().get("ca_certificate")):
        return
    ca = pathlib.Path(ca_path)
    system_cas = pathlib.Path(ssl.get_default_verify_paths().openssl_cafile)  # OpenSSL's own, not the variable
    bundle = ENDPOINTS_FILE.parent / "tls-trust-bundle.pem"
    bundle.write_text((system_cas.read_text() if system_cas.exists() else "") + "\n" + ca.read_text())
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "WEBSOCKET_CLIENT_CA_BUNDLE"):
        os.environ[variable] = str(bundle)


def load_endpoints() -> dict:
    return json.loads(ENDPOINTS_FILE.read_text())


trust_the_local_ca()


def admin_instance() -> GalaxyInstance:
    """Galaxy as the deployment's admin (for job details users do not see: external ids, metrics)."""
    endpoints = load_endpoints()
    return GalaxyInstance(endpoints["galaxy_url"], key=endpoints["admin_api_key"])


def create_user(galaxy_url: str, admin_key: str, gpu_user: bool = True, password: str | None = None,
                prefix: str = "nbuser") -> tuple[str, str]:  # fmt: skip
    """Create a new non-admin user through the API, <prefix>-<random>@example.org, a member of the
    GPU users' group where the deployment has one (unless gpu_user is false), with this password
    (else a random one); return (email, api_key)."""
    admin = GalaxyInstance(galaxy_url, key=admin_key)
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    email = f"{name}@example.org"
    user = admin.users.create_local_user(name, email, password or secrets.token_urlsafe(12))
    key = admin.users.create_user_apikey(user["id"])
    if gpu_user and (group := gpu_users_group(admin)):
        # bioblend raises unless Galaxy answers 200
        admin.make_put_request(f"{admin.base_url}/api/groups/{group}/users/{user['id']}", payload={})
    return email, key


def gpu_users_group(admin: GalaxyInstance) -> str | None:
    """The id of the Galaxy group whose members may run the GPU tools, if the deployment has one."""
    from tests.support import local_cluster

    name = local_cluster.facts()["gpu_users_group"]
    groups = admin.make_get_request(f"{admin.base_url}/api/groups").json()
    return next((g["id"] for g in groups if g["name"] == name), None) if name else None


@dataclass
class NotebookSession:
    galaxy: GalaxyInstance
    galaxy_url: str
    history_id: str
    job_id: str
    entry_point: dict
    kernel_ws_url: str | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        """The session's path: / on its own subdomain, /interactivetool/ep/<key>/<token>/ by path."""
        return self.entry_point["target_path"]

    @property
    def url(self) -> str:
        """The session's URL as Galaxy hands it to the user (ends with /)."""
        return self.entry_point["target_url"]

    @property
    def key_and_token(self) -> tuple[str, str]:
        """The entry point's key and token, from <key>-<token>.ep... or .../ep/<key>/<token>/."""
        if self.path == "/":
            return tuple(self.url.split("://", 1)[1].split(".", 1)[0].split("-", 1))
        return tuple(self.path.rstrip("/").split("/")[-2:])

    http: requests.Session = field(default_factory=requests.Session, repr=False)

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the session's route: what its pages send as Origin."""
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}"

    def api(self, method: str, sub: str, **kw) -> requests.Response:
        """A request through the session's route, as its JupyterLab page makes it: XSRF checks are
        on, so a request that changes something carries the _xsrf cookie's value in a header (a
        first GET of the page sets the cookie)."""
        if method.upper() not in ("GET", "HEAD") and "_xsrf" not in self.http.cookies:
            wait_for_http_200(self.url + "lab", session=self.http)
        headers = {"X-XSRFToken": self.http.cookies.get("_xsrf", ""), **kw.pop("headers", {})}
        return self.http.request(method, self.url + sub.lstrip("/"), timeout=30, headers=headers, **kw)

    def kernel_channels_url(self, kernel_id: str) -> str:
        return self.url.replace("http://", "ws://").replace("https://", "wss://") + f"api/kernels/{kernel_id}/channels"

    def run_code(self, code: str, timeout: float = 60) -> str:
        """Run code in this session's kernel (started on first use) over its websocket; its stdout."""
        from tests.support import jupyter_kernel

        if self.kernel_ws_url is None:
            created = self.api("POST", "api/kernels", json={"name": "python3"})
            assert created.status_code == 201, created.text
            self.kernel_ws_url = self.kernel_channels_url(created.json()["id"])
        result = jupyter_kernel.execute(self.kernel_ws_url, code, timeout=timeout, origin=self.origin)
        assert result["status"] == "ok", result["error"] or result
        return result["stdout"]

    def container_image(self, admin_key: str) -> str:
        """The image the session's job ran, from Galaxy's job metrics (recorded when the job ends,
        shown to admins)."""
        job = GalaxyInstance(self.galaxy_url, key=admin_key).jobs.show_job(self.job_id, full_details=True)
        return {m["name"]: m["raw_value"] for m in job.get("job_metrics") or []}.get("container_id", "")


def launch_notebook(galaxy_url: str, api_key: str, inputs: dict | None = None) -> tuple[GalaxyInstance, str, str]:
    gi = GalaxyInstance(galaxy_url, key=api_key)
    history = gi.histories.create_history(name=f"notebook {time.strftime('%H:%M:%S')}")
    run = gi.tools.run_tool(history["id"], NOTEBOOK_TOOL_ID, inputs or {"mode|mode_select": "fresh"})
    return gi, history["id"], run["jobs"][0]["id"]


def why_the_job_failed(gi: GalaxyInstance, job_id: str) -> str:
    """What Galaxy tells the user of a failed job: the runner's message (the job's info, e.g. why
    Slurm ended it) and the ends of its stderr."""
    job = gi.jobs.show_job(job_id, full_details=True)
    said = [f"{field}: {str(job.get(field) or '')[-1500:]}" for field in ("job_messages", "tool_stderr", "job_stderr")
            if job.get(field)]  # fmt: skip
    if history := what_the_history_says(gi, job_id).strip():
        said.insert(0, f"the history says: {history}")
    return "; ".join(said) or "(Galaxy gives no message and no stderr)"


def wait_for_entry_point(gi: GalaxyInstance, job_id: str, timeout: float = 180, progress=print) -> dict:
    """Poll Galaxy until the job's entry point is active; return it with its target path."""
    deadline = time.monotonic() + timeout
    last_state = None
    while time.monotonic() < deadline:
        eps = gi.make_get_request(f"{gi.base_url}/api/entry_points", params={"job_id": job_id}).json()
        if eps and eps[0].get("active"):
            ep = eps[0]
            target = gi.make_get_request(f"{gi.base_url}/api/entry_points/{ep['id']}/access").json()["target"]
            ep["target_url"] = target if "://" in target else gi.base_url.rstrip("/") + target
            ep["target_url"] += "" if ep["target_url"].endswith("/") else "/"
            ep["target_path"] = "/" + ep["target_url"].split("://", 1)[1].split("/", 1)[1]
            return ep
        state = gi.jobs.show_job(job_id)["state"]
        if state in ("error", "deleted", "failed"):
            raise RuntimeError(f"notebook job {job_id} ended in state {state}: {why_the_job_failed(gi, job_id)}")
        if state != last_state and progress:
            progress(f"job {job_id}: {state}")
            last_state = state
        time.sleep(0.5)
    raise TimeoutError(f"entry point of job {job_id} not active after {timeout} s")


def wait_for_http_200(url: str, timeout: float = 120, session: requests.Session | None = None) -> requests.Response:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = (session or requests).get(url, timeout=10)
            if last.status_code == 200:
                return last
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s (last: {last})")


def wait_for(condition, what: str, timeout: float = 60):
    """condition()'s first true answer, asked every half second; fails naming what it waited for."""
    deadline = time.monotonic() + timeout
    while not (answer := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.5)
    return answer


def start_session(endpoints: dict, api_key: str, inputs: dict | None = None, timeout: float = 240) -> NotebookSession:
    gi, history_id, job_id = launch_notebook(endpoints["galaxy_url"], api_key, inputs)
    try:
        ep = wait_for_entry_point(gi, job_id, timeout=timeout)
    except BaseException:
        gi.jobs.cancel_job(job_id)  # a session that never answered must not hold its node for the next tests
        raise
    return NotebookSession(gi, endpoints["galaxy_url"], history_id, job_id, ep)


def dataset_file(dataset_id: str) -> str:
    """Where Galaxy keeps the dataset's file (shown to admins only)."""
    return admin_instance().datasets.show_dataset(dataset_id)["file_name"]


def new_user() -> GalaxyInstance:
    """Galaxy as a new user (in the GPU users' group where there is one); its .key is the user's API key."""
    endpoints = load_endpoints()
    _email, key = create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    return GalaxyInstance(endpoints["galaxy_url"], key=key)


def new_users_session(inputs: dict | None = None) -> NotebookSession:
    """A notebook session of a new user, answering."""
    return start_session(load_endpoints(), new_user().key, inputs)


TERMINAL_JOB_STATES = ("ok", "error", "deleted", "failed")
TRAINING_TOOL_ID = "run_jupyter_job"
# A training that holds its slot (and GPU) until the test touches /tmp/release in its container
# (it then ends ok) or, at the latest, until a given time; records what the container was given.
HOLDING_SCRIPT = """\
import os, time
with open("gpu.txt", "w") as f:
    f.write(os.environ.get("CUDA_VISIBLE_DEVICES", "") + " " + os.environ.get("SLURM_JOB_GPUS", ""))
while not os.path.exists("/tmp/release") and time.time() < {release_at}:
    time.sleep(1)
"""


def wait_for_job(gi: GalaxyInstance, job_id: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = gi.jobs.show_job(job_id)["state"]
        if state in TERMINAL_JOB_STATES:
            return state
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still running after {timeout} s")


def what_the_history_says(gi: GalaxyInstance, job_id: str) -> str:
    """Why a job failed, as its user sees it on the job's outputs in the history (their info)."""
    outputs = gi.jobs.show_job(job_id, full_details=True)["outputs"].values()
    return " ".join(gi.datasets.show_dataset(output["id"]).get("misc_info") or "" for output in outputs)


def paste_dataset(gi: GalaxyInstance, history_id: str, content: str, name: str, ext: str = "txt") -> str:
    """A new dataset with this content (Galaxy's fetch API, as the upload form does); its id once ready."""
    payload = {"history_id": history_id, "targets": [{"destination": {"type": "hdas"}, "elements": [
        {"src": "pasted", "paste_content": content, "name": name, "ext": ext}]}]}  # fmt: skip
    fetched = gi.make_post_request(f"{gi.base_url}/api/tools/fetch", payload=payload)
    state = wait_for_job(gi, fetched["jobs"][0]["id"])
    assert state == "ok", f"upload of {name} ended {state}"
    return fetched["outputs"][0]["id"]


def wait_for_dataset_text(gi: GalaxyInstance, history_id: str, name_prefix: str, timeout: float = 60) -> str:
    """The text of the first ready dataset whose name starts with name_prefix (what a session left in outputs/)."""
    deadline = time.monotonic() + timeout
    while True:
        contents = gi.histories.show_history(history_id, contents=True, details="all")
        found = [d for d in contents if d["name"].startswith(name_prefix) and d["state"] == "ok"]
        if found:
            text = gi.datasets.download_dataset(found[0]["id"], require_ok_state=True)
            return text.decode() if isinstance(text, bytes) else text
        if time.monotonic() > deadline:
            raise AssertionError(f"no ready {name_prefix}* in the history: {[d['name'] for d in contents]}")
        time.sleep(1)
