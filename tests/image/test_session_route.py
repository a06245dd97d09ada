"""A Galaxy session (GXNB_SESSION_AUTH=route) answers only through its own route, with XSRF checks
on and only its own origin allowed; its user's API key reaches the kernels from the secrets folder
and no secret shows in any process's arguments. Off Galaxy, a plain `docker run` asks for a token.

The route is what Galaxy's job runner writes into the job's secrets folder (a read-only mount):
here a folder of the test's, mounted the same way. The end-to-end tests cross the same boundary
through the deployed proxy (tests/e2e/test_session_takeover.py)."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
import requests
import websocket

from tests.image.conftest import docker, run_in_image
from tests.support import jupyter_kernel

pytestmark = pytest.mark.docker

ROUTE_HOST = "k1a2-{token}.ep.interactivetool.localhost"
PUBLIC = "https://localhost:8443"


class RoutedSession:
    """The image started as Galaxy starts a session: its route and API key in a secrets folder."""

    def __init__(self, image: str, folder, session_url: str, port: int):
        self.secrets = folder / "secrets"
        self.secrets.mkdir()
        self.api_key = uuid.uuid4().hex
        (self.secrets / "session_url").write_text(session_url + "\n")
        (self.secrets / "api_key").write_text(self.api_key)
        for path in (folder, self.secrets, *self.secrets.iterdir()):
            path.chmod(0o755)
        self.session_url = session_url
        self.name = f"gxnb-route-test-{uuid.uuid4().hex[:8]}"
        docker("run", "-d", "--name", self.name, "--user", "23456:100", "-p", f"127.0.0.1::{port}",
               "-v", f"{self.secrets}:/run/gxnb/secrets:ro", "-e", f"JUPYTER_PORT={port}",
               "-e", "GXNB_SESSION_AUTH=route", image)  # fmt: skip
        self.address = "http://" + docker("port", self.name, f"{port}/tcp").stdout.split()[0]
        self.port = port
        self.path = "/" + session_url.split("://", 1)[1].split("/", 1)[1]
        self.route_host = session_url.split("://", 1)[1].split("/", 1)[0]
        self.origin = session_url.split("://", 1)[0] + "://" + self.route_host
        self.http = requests.Session()

    def get(self, sub: str, host: str | None = None, **kw) -> requests.Response:
        """A request to the container's published port, naming this Host (the route's by default)."""
        headers = {"Host": host or self.route_host}
        return self.http.get(self.address + self.path + sub, headers=headers, timeout=10, **kw)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.get("lab").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        raise AssertionError(f"the session did not answer its route in {timeout} s:\n{self.logs()}")

    def post(self, sub: str, xsrf: bool = True, origin: str | None = None, **kw) -> requests.Response:
        """A POST as the session's page makes it. Its XSRF cookie is Secure (the route is HTTPS): it is
        sent by hand here, over the test's plain HTTP to the published port."""
        headers = {"Host": self.route_host, **({"Origin": origin} if origin else {})}
        if xsrf:
            token = self.http.cookies.get("_xsrf", "")
            headers.update({"X-XSRFToken": token, "Cookie": f"_xsrf={token}"})
        return self.http.post(self.address + self.path + sub, headers=headers, timeout=30, **kw)

    def channels_url(self, kernel_id: str) -> str:
        return self.address.replace("http://", "ws://") + self.path + f"api/kernels/{kernel_id}/channels"

    def channels(self, kernel_id: str, host: str | None = None, origin: str | None = None) -> websocket.WebSocket:
        return websocket.create_connection(self.channels_url(kernel_id), host=host or self.route_host,
                                           origin=origin or self.origin, timeout=30)  # fmt: skip

    def logs(self) -> str:
        out = docker("logs", self.name, check=False)
        return out.stdout + out.stderr

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


@pytest.fixture(scope="module")
def by_subdomain(image, tmp_path_factory):
    token = uuid.uuid4().hex[:12]
    session = RoutedSession(image, tmp_path_factory.mktemp("subdomain"),
                            f"https://{ROUTE_HOST.format(token=token)}:8443/", port=9131)  # fmt: skip
    try:
        session.wait_ready()
        yield session
    finally:
        session.remove()


def refused(answer: requests.Response) -> bool:
    """Not the session: 403, or the redirect to a login page that does not exist (GET of a page)."""
    return answer.status_code == 403 or (answer.status_code == 302 and "/login" in answer.headers.get("Location", ""))


def test_the_session_answers_its_route_and_its_user_gets_the_api_key(by_subdomain):
    listing = by_subdomain.get("api/contents")
    assert listing.status_code == 200, listing.text
    kernel = by_subdomain.post("api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    result = jupyter_kernel.execute(by_subdomain.channels_url(kernel.json()["id"]),
                                    "import os; print(os.environ['API_KEY'])", timeout=90,
                                    host=by_subdomain.route_host, origin=by_subdomain.origin)  # fmt: skip
    assert result["status"] == "ok", result["error"]
    assert result["stdout"].strip() == by_subdomain.api_key


@pytest.mark.parametrize(
    "host",
    ["k1a2-someoneelse.ep.interactivetool.localhost",  # another session's route pointed here
     "localhost", "127.0.0.1", "172.31.0.1"],  # a host the firewall trusts, connecting directly
)  # fmt: skip
def test_a_request_through_any_other_route_or_host_is_refused(by_subdomain, host):
    for sub in ("api/contents", "api/kernels", "lab", "api/status", "files/notebooks/home.ipynb"):
        answer = by_subdomain.get(sub, host=host, allow_redirects=False)
        assert refused(answer), (sub, host, answer.status_code, answer.text[:200])
    kernel = by_subdomain.post("api/kernels", json={"name": "python3"}).json()["id"]
    with pytest.raises(websocket.WebSocketBadStatusException, match="403"):
        by_subdomain.channels(kernel, host=host)


def test_xsrf_checks_are_on_and_only_the_routes_origin_may_ask_across_origins(by_subdomain):
    # The cookie is kept and sent inside Galaxy's page (another site's frame): SameSite=None,
    # Secure, Partitioned (where the browser blocks third-party cookies).
    cookie = by_subdomain.get("lab").headers["Set-Cookie"]
    assert cookie.startswith("_xsrf=") and {"SameSite=None", "Secure", "Partitioned"} <= set(cookie.split("; ")), cookie
    assert by_subdomain.post("api/kernels", xsrf=False, json={"name": "python3"}).status_code == 403
    evil = "https://evil.example"
    assert by_subdomain.post("api/kernels", origin=evil, json={"name": "python3"}).status_code in (403, 404)
    kernel = by_subdomain.post("api/kernels", origin=by_subdomain.origin, json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    with pytest.raises(websocket.WebSocketBadStatusException, match="403"):
        by_subdomain.channels(kernel.json()["id"], origin=evil)
    ws = by_subdomain.channels(kernel.json()["id"])  # the route's own origin: a browser on the session's page
    ws.close()


def test_code_inside_the_container_reaches_its_own_server(by_subdomain):
    """The loopback is the session's own (its terminal, the health check): let in."""
    inside = docker("exec", by_subdomain.name, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                    f"http://127.0.0.1:{by_subdomain.port}/api/contents")  # fmt: skip
    assert inside.stdout == "200", inside.stdout + inside.stderr
    deadline = time.monotonic() + 90
    health = ("inspect", "-f", "{{.State.Health.Status}}", by_subdomain.name)
    while (status := docker(*health).stdout.strip()) != "healthy":
        assert time.monotonic() < deadline, f"health status {status!r}"
        time.sleep(2)


def test_no_secret_shows_in_any_process_arguments(by_subdomain):
    """The node's `ps` sees every container's processes: neither the key nor the route's token."""
    arguments = docker("top", by_subdomain.name, "-eo", "pid,args").stdout
    assert len(arguments.splitlines()) >= 3 and "jupyter" in arguments, arguments
    token = by_subdomain.route_host.split("-", 1)[1].split(".", 1)[0]
    assert by_subdomain.api_key not in arguments and token not in arguments, arguments
    inspected = docker("inspect", by_subdomain.name).stdout
    assert by_subdomain.api_key not in inspected and token not in inspected


def test_a_session_by_path_serves_its_route_path_only(image, tmp_path):
    token = uuid.uuid4().hex[:12]
    session = RoutedSession(image, tmp_path, f"{PUBLIC}/interactivetool/ep/k1a2/{token}/", port=9132)
    try:
        session.wait_ready()
        assert session.get("api/contents").status_code == 200
        other = session.http.get(session.address + "/interactivetool/ep/k1a2/someoneelse/api/contents",
                                 headers={"Host": "localhost"}, timeout=10)  # fmt: skip
        assert other.status_code == 404, other.status_code
        arguments = docker("top", session.name, "-eo", "pid,args").stdout
        assert token not in arguments and session.api_key not in arguments, arguments
    finally:
        session.remove()


def test_a_galaxy_session_without_its_route_does_not_start(image):
    out = run_in_image(image, "GXNB_SESSION_AUTH=route timeout 60 start-notebook.sh")
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Galaxy gave this session no route" in out.stderr, out.stderr[-2000:]


def test_off_galaxy_the_server_asks_for_its_token(image):
    token = uuid.uuid4().hex
    name = f"gxnb-token-test-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "-p", "127.0.0.1::8888", "-e", f"JUPYTER_TOKEN={token}", image)
    try:
        address = "http://" + docker("port", name, "8888/tcp").stdout.split()[0]
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{address}/api", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr[-2000:]
            time.sleep(1)
        assert requests.get(f"{address}/api/contents", timeout=10).status_code == 403
        with_token = requests.get(f"{address}/api/contents", headers={"Authorization": f"token {token}"}, timeout=10)
        assert with_token.status_code == 200, with_token.text
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
