"""End to end: a new user launches the notebook tool; JupyterLab answers through nginx and
gx-it-proxy, runs code over its websocket, and a file saved in outputs/ returns to the history."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests.support import galaxy_it, jupyter_kernel, local_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def endpoints():
    if not galaxy_it.ENDPOINTS_FILE.exists():
        pytest.fail(f"{galaxy_it.ENDPOINTS_FILE} missing: run `make deploy-local` first")
    return galaxy_it.load_endpoints()


@pytest.fixture(scope="module")
def user_key(endpoints):
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    return key


@pytest.fixture(scope="module")
def session(endpoints, user_key):
    session = galaxy_it.start_session(endpoints, user_key)
    yield session
    state = session.galaxy.jobs.show_job(session.job_id)["state"]
    if state in ("running", "queued", "new"):
        session.galaxy.jobs.cancel_job(session.job_id)


def test_new_user_is_not_admin(endpoints, user_key):
    me = requests.get(f"{endpoints['galaxy_url']}/api/users/current", headers={"x-api-key": user_key}, timeout=30)
    assert me.status_code == 200
    assert me.json()["is_admin"] is False


ROUTING = local_cluster.facts()["it_routing"]


def test_jupyterlab_answers_through_nginx_and_the_proxy(endpoints, session):
    scheme, netloc = endpoints["galaxy_url"].rstrip("/").split("://", 1)
    key, token = session.key_and_token
    if ROUTING == "subdomain":  # its own origin, not Galaxy's
        assert session.url == f"{scheme}://{key}-{token}.ep.interactivetool.{netloc}/", session.url
    else:
        assert session.url == f"{endpoints['galaxy_url']}/interactivetool/ep/{key}/{token}/", session.url
    page = galaxy_it.wait_for_http_200(session.url + "lab")
    assert "JupyterLab" in page.text
    assert page.url.startswith(session.url)


def test_the_session_runs_as_a_slurm_job_on_a_job_node(endpoints, session):
    """Galaxy submitted the notebook through Slurm: its external id is a running Slurm job on a job
    node (not the head), with one of that node's GPUs (one shard of it where GPUs are shared); its
    container carries the job id, sees that one GPU and is told its share."""
    from bioblend.galaxy import GalaxyInstance

    admin = GalaxyInstance(endpoints["galaxy_url"], key=endpoints["admin_api_key"])
    job = admin.jobs.show_job(session.job_id, full_details=True)
    assert job.get("external_id", "").isdigit(), job
    queue = local_cluster.slurm("squeue", "-h", "-j", job["external_id"], "-o", "%T %N")
    state, where = (queue.split() + ["", ""])[:2]
    assert state == "RUNNING" and where in local_cluster.job_nodes(), queue
    detail = local_cluster.slurm("scontrol", "show", "job", "-d", job["external_id"])
    shards = int(local_cluster.facts()["gpu_shards_per_gpu"])
    asked = "shard" if shards else "gpu"
    assert f"gres/{asked}=1" in detail or f"{asked}:1" in detail, detail
    assert job["external_id"] in local_cluster.job_containers(where).values()
    container = next(name for name, slurm_id in local_cluster.job_containers(where).items()
                     if slurm_id == job["external_id"])  # fmt: skip
    env = dict(line.split("=", 1) for line in local_cluster.run(where, "docker", "exec", container, "env").splitlines()
               if "=" in line)  # fmt: skip
    assert env.get("CUDA_VISIBLE_DEVICES", "").isdigit(), env.get("CUDA_VISIBLE_DEVICES")  # one GPU index
    assert env.get("GXNB_GPU_SHARE", "") == (f"1/{shards}" if shards else ""), env.get("GXNB_GPU_SHARE")


def test_wrong_token_does_not_reach_jupyterlab(session):
    key, token = session.key_and_token
    wrong = session.url.replace(f"{key}-{token}.", f"{key}-{'0' * len(token)}.").replace(
        f"/{key}/{token}/", f"/{key}/{'0' * len(token)}/")
    assert wrong != session.url
    answer = requests.get(wrong + "lab", timeout=30)
    assert answer.status_code >= 400, answer.status_code
    assert "JupyterLab" not in answer.text


def test_the_session_is_not_served_on_galaxys_origin_by_path(endpoints, session):
    """Subdomain routing (the default): nginx has no path route to the proxy, so no page of a
    session runs with Galaxy's cookies."""
    if ROUTING != "subdomain":
        pytest.skip("this deployment routes sessions by path (gxnb_it_routing: path)")
    key, token = session.key_and_token
    answer = requests.get(f"{endpoints['galaxy_url']}/interactivetool/ep/{key}/{token}/lab", timeout=30)
    assert "JupyterLab" not in answer.text and "Jupyter Server" not in answer.text, answer.text[:300]


def test_the_session_is_served_over_https_with_the_security_headers(endpoints, session):
    if not endpoints["galaxy_url"].startswith("https://"):
        pytest.skip("this deployment serves plain HTTP (gxnb_public_scheme: http)")
    assert session.url.startswith("https://"), session.url  # the link Galaxy gives users
    headers = session.api("GET", "lab").headers
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"  # its host name carries the session's token


def test_only_galaxys_page_may_show_the_session_in_a_frame(endpoints, session):
    """Galaxy's interactive-tools list shows a session in an iframe; any other site framing it
    (clickjacking) is refused by the browser."""
    headers = session.api("GET", "lab").headers
    galaxy_origin = "{0.scheme}://{0.netloc}".format(urlsplit(endpoints["galaxy_url"]))
    if ROUTING == "subdomain":
        assert headers["Content-Security-Policy"] == f"frame-ancestors {galaxy_origin}", headers
        assert "X-Frame-Options" not in headers  # would refuse Galaxy's page too (another origin)
    else:  # on Galaxy's own origin
        assert headers["X-Frame-Options"] == "SAMEORIGIN"


def test_kernel_runs_code_over_the_websocket_and_file_returns_to_history(endpoints, session):
    kernel = session.api("POST", "api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    ws_url = session.kernel_channels_url(kernel.json()["id"])
    # over TLS (wss://) wherever Galaxy is served over HTTPS
    assert ws_url.startswith("wss://") == endpoints["galaxy_url"].startswith("https://"), ws_url
    marker = uuid.uuid4().hex
    code = (
        "import os, pathlib\n"
        "out = pathlib.Path(os.environ.get('GXNB_OUTPUTS', 'outputs'))\n"
        "out.mkdir(exist_ok=True)\n"
        f"(out / 'e2e_result.txt').write_text('{marker}\\n')\n"
        "print('sum', sum(range(10)), 'cwd', os.getcwd())\n"
    )
    result = jupyter_kernel.execute(ws_url, code, origin=session.origin)
    assert result["status"] == "ok", result
    assert "sum 45" in result["stdout"]

    # File > Shut Down in JupyterLab posts to api/shutdown: the server exits, the job ends.
    shutdown = session.api("POST", "api/shutdown")
    assert shutdown.status_code in (200, 204), shutdown.text
    state = galaxy_it.wait_for_job(session.galaxy, session.job_id)
    assert state == "ok", session.galaxy.jobs.show_job(session.job_id, full_details=True)

    assert marker in galaxy_it.wait_for_dataset_text(session.galaxy, session.history_id, "e2e_result")
