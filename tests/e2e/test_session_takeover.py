"""No session can be taken over. User A's session tries, with everything it can read or call, to
make its own route serve user B's session (the attack Galaxy's container-monitor callback
allowed: its job key sat in the job folder mounted into the container), and hosts the node's
firewall trusts try to use B's JupyterLab directly. Every attempt must fail, and each route must
still serve its own user's JupyterLab.

Also here: no secret of a session (its user's API key, its route's token) in any process's
arguments on the node, in `docker inspect`, in the job's scripts and logs, nor left behind when
a job fails; and a session reaches Galaxy and nothing else of the cluster."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
import yaml

from tests.conftest import REPO
from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e

NOTEBOOK_PORT = int(local_cluster.facts()["notebook_port"])
MARKER_FILE = "whose_session.txt"


def numeric_job_id(job_id: str) -> int:
    from galaxy.security.idencoding import IdEncodingHelper

    return IdEncodingHelper(id_secret=deploy_secrets()["galaxy_id_secret"]).decode_id(job_id)


def deploy_secrets() -> dict[str, str]:
    return yaml.safe_load((REPO / ".deploy-local" / "secrets.yml").read_text())


def job_key(job_id: str) -> str:
    """The key that authorises Galaxy's job callbacks, computed as Galaxy does: the strongest
    attacker, one who learnt it anyway."""
    from galaxy.security.idencoding import IdEncodingHelper

    return IdEncodingHelper(id_secret=deploy_secrets()["galaxy_id_secret"]).encode_id(
        numeric_job_id(job_id), kind="jobs_files")


def jobs_folder(job_id: str) -> str:
    """/srv/galaxy/data/jobs_directory/<NNN>/<id>, as Galaxy lays it out."""
    number = numeric_job_id(job_id)
    return f"/srv/galaxy/data/jobs_directory/{number // 1000:03d}/{number}"


def it_map(sql: str) -> str:
    """A statement on gx-it-proxy's map (Galaxy's interactive-tool routes), on the head."""
    return local_cluster.run(local_cluster.head(), "runuser", "-u", "postgres", "--", "psql", "-XAtq",
                             "-d", "galaxy_it_map", "-c", sql).strip()  # fmt: skip


def route_of(session: galaxy_it.NotebookSession) -> tuple[str, str]:
    """Where gx-it-proxy sends the session's route: (host, port), from its map."""
    key, _token = session.key_and_token
    host, port = it_map(f"SELECT host, port FROM gxitproxy WHERE key = '{key}'").split("|")
    return host, port


@pytest.fixture(scope="module")
def two_users():
    """A's and B's sessions on one node (the strongest neighbour), each with a file naming its user."""
    admin = galaxy_it.admin_instance()
    started = []
    try:
        a = galaxy_it.new_users_session()
        started.append(a)
        node = local_cluster.node_of(admin, a.job_id)
        other_node = next(n for n in local_cluster.job_nodes() if n != node)
        with local_cluster.drained(other_node):
            b = galaxy_it.new_users_session()
            started.append(b)
        assert local_cluster.node_of(admin, b.job_id) == node
        for session, name in ((a, "A"), (b, "B")):
            saved = session.api("PUT", f"api/contents/{MARKER_FILE}",
                                json={"type": "file", "format": "text", "content": name})  # fmt: skip
            assert saved.status_code == 201, saved.text
        yield {"a": a, "b": b, "node": node, "b_route": route_of(b), "a_route": route_of(a)}
    finally:
        for session in started:
            session.galaxy.jobs.cancel_job(session.job_id)


def marker_through(session: galaxy_it.NotebookSession) -> str:
    answer = session.api("GET", f"api/contents/{MARKER_FILE}", params={"content": 1})
    return answer.json()["content"] if answer.status_code == 200 else f"HTTP {answer.status_code}"


def test_each_route_serves_its_own_users_session(two_users):
    """The control: A's URL shows A's file, B's URL B's."""
    assert marker_through(two_users["a"]) == "A"
    assert marker_through(two_users["b"]) == "B"


def test_a_session_finds_nothing_that_authorises_galaxys_callback(two_users):
    """The job folder (its configs/container_config.json held the callback URL and its job key)
    is not in the container; no file or variable there carries a job key."""
    a = two_users["a"]
    found = a.run_code(f"""
import json, os
hits = []
for top, folders, files in os.walk("/", onerror=lambda error: None):
    folders[:] = [f for f in folders if os.path.join(top, f) not in ("/proc", "/sys", "/dev", "/opt", "/usr")]
    for name in files:
        if name in ("container_config.json", "galaxy.yml") or name.startswith("tool_env_") or (
                name.startswith("galaxy_") and name.endswith(".sh")):
            hits.append(os.path.join(top, name))
mounts = [line.split()[4] for line in open("/proc/self/mountinfo")]
print(json.dumps({{"hits": hits, "job_folder_mounted": {jobs_folder(a.job_id)!r} in mounts,
                  "job_key_in_environment": any("job_key" in v for v in os.environ.values())}}))
""", timeout=120)
    seen = json.loads(found.strip().splitlines()[-1])
    assert seen == {"hits": [], "job_folder_mounted": False, "job_key_in_environment": False}, seen


def test_a_leaked_job_key_cannot_point_a_sessions_route_at_another_session(two_users):
    """A's kernel posts Galaxy's container-monitor body, naming B's address, to the callback with
    A's real job key, on every Galaxy URL it can reach: refused, and A's route stays A's."""
    a = two_users["a"]
    b_host, b_port = two_users["b_route"]
    head = local_cluster.containers()[local_cluster.head()]["address"]
    public = galaxy_it.load_endpoints()["galaxy_url"].replace("localhost", head)  # nginx's public port, by address
    body = {"container_runtime": {str(NOTEBOOK_PORT): {"tool_port": NOTEBOOK_PORT, "host": b_host,
                                                       "port": int(b_port), "protocol": "tcp"}}}  # fmt: skip
    answers = json.loads(a.run_code(f"""
import json, os, requests
body, answers = {json.dumps(body)}, {{}}
for base in (os.environ["GALAXY_URL"], {public!r}):
    url = f"{{base}}/api/jobs/{a.job_id}/ports?job_key={job_key(a.job_id)}"
    try:
        answers[base] = requests.post(url, json=body, timeout=20, verify=False).status_code
    except requests.RequestException as error:
        answers[base] = str(error)
print(json.dumps(answers))
""", timeout=120).strip().splitlines()[-1])
    assert answers and all(status == 403 for status in answers.values()), answers
    assert route_of(a) == two_users["a_route"]
    assert marker_through(a) == "A"


def test_a_route_pointed_at_another_session_gets_nothing_from_it(two_users):
    """Had a route been pointed at B anyway (here by hand, in gx-it-proxy's map), B's JupyterLab
    refuses what comes through it: it answers only requests through its own route."""
    a = two_users["a"]
    key, _token = a.key_and_token
    b_host, b_port = two_users["b_route"]
    a_host, a_port = two_users["a_route"]

    def point_a_at(host, port):
        it_map(f"UPDATE gxitproxy SET host = '{host}', port = {port} WHERE key = '{key}'")

    point_a_at(b_host, b_port)
    try:
        galaxy_it.wait_for(lambda: route_of(a) == (b_host, b_port), "the map change")
        for _ in range(3):  # gx-it-proxy picks the change up by NOTIFY
            answer = a.http.get(a.url + f"api/contents/{MARKER_FILE}", params={"content": 1}, timeout=30)
            assert answer.status_code in (403, 503), (answer.status_code, answer.text[:300])
            assert '"B"' not in answer.text
        page = a.http.get(a.url + "lab", timeout=30, allow_redirects=False)
        assert page.status_code in (302, 403, 503) and "JupyterLab" not in page.text, page.status_code
    finally:
        point_a_at(a_host, a_port)
    assert galaxy_it.wait_for(lambda: marker_through(a) == "A", "A's route back")


@pytest.mark.parametrize("host_header", ["direct", "localhost", "someone-else"])
def test_a_host_the_firewall_trusts_cannot_use_a_session_directly(two_users, host_header):
    """The Galaxy server may connect to B's published port (the proxy runs there); without B's
    route (its token) it gets nothing. The control: B's own route name gets the file."""
    b_host, b_port = two_users["b_route"]
    key, token = two_users["b"].key_and_token
    names = {"direct": f"{b_host}:{b_port}", "localhost": "localhost",
             "someone-else": f"{key}-{'0' * len(token)}.ep.interactivetool.localhost"}  # fmt: skip
    probe = ("curl -s -o /dev/null -w '%{http_code}' -H \"Host: $1\" "
             f"http://{b_host}:{b_port}/api/contents/{MARKER_FILE}")  # fmt: skip
    refused = local_cluster.run(local_cluster.head(), "bash", "-c", probe, "probe", names[host_header])
    assert refused == "403", refused
    own_route = f"{key}-{token}.ep.interactivetool.localhost"
    own = local_cluster.run(local_cluster.head(), "bash", "-c", probe, "probe", own_route)
    assert own == "200", own


def test_no_secret_of_a_running_session_shows_on_its_node(two_users):
    """Neither the user's API key nor the route's token: not in any process's arguments on the
    node, not in `docker inspect`, not in the job's scripts and Slurm logs."""
    a = two_users["a"]
    _key, token = a.key_and_token
    secrets = {"API key": a.galaxy.key, "route token": token}
    node = two_users["node"]
    _node, container = local_cluster.node_and_container(galaxy_it.admin_instance(), a.job_id)
    places = {
        "ps": local_cluster.run(node, "ps", "-eo", "args", "--no-headers"),
        "docker inspect": local_cluster.run(node, "docker", "inspect", container),
        "job scripts and logs": local_cluster.run(node, "bash", "-c", f"cd {jobs_folder(a.job_id)} && cat galaxy_*.sh "
                                                  "galaxy_*.[oe] tool_script.sh configs/* tool_env_* 2>/dev/null||:"),
    }  # fmt: skip
    leaks = [(what, where) for where, text in places.items() for what, value in secrets.items() if value in text]
    assert leaks == [], leaks
    assert a.run_code("import os; print(os.environ['API_KEY'] == open('/run/gxnb/secrets/api_key').read())") == "True\n"


def test_a_session_reaches_galaxy_and_nothing_else_of_the_cluster(two_users):
    """Every TCP port of every host of the cluster (the head, both job nodes, this machine's
    bridge with the registry, the node's own container bridge) from A's session: only Galaxy's
    HTTPS and its plain-HTTP listener for the jobs answer."""
    facts = local_cluster.facts()
    head_address = local_cluster.containers()[local_cluster.head()]["address"]
    targets = sorted({c["address"] for c in local_cluster.containers().values()}
                     | {facts["host_bridge"].split("/")[0], facts["job_bridge"].split("/")[0]})  # fmt: skip
    scan = two_users["a"].run_code(f"""
import asyncio, json

async def probe(host, port, limit):
    async with limit:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
            writer.close()
            return "open"
        except (ConnectionRefusedError, ConnectionResetError):
            return "refused"
        except (OSError, asyncio.TimeoutError):
            return "silent"

async def main():
    limit = asyncio.Semaphore(400)
    found = {{}}
    for host in {targets!r}:
        states = await asyncio.gather(*(probe(host, port, limit) for port in range(1, 65536)))
        found[host] = {{state: [p for p, s in zip(range(1, 65536), states) if s == state][:50]
                       for state in ("open", "silent")}}
    print(json.dumps(found))

await main()  # the kernel runs an event loop already
""", timeout=900)
    found = json.loads(scan.strip().splitlines()[-1])
    opened = {(host, port) for host, states in found.items() for port in states["open"]}
    galaxy = {(head_address, int(facts["public_port"])), (head_address, int(facts["galaxy_cluster_http_port"]))}
    assert opened == galaxy, found
    assert all(not states["silent"] for states in found.values()), found  # turned away, not lost


def test_a_failed_session_and_a_failed_training_leave_no_key_behind(two_users):
    """Galaxy keeps a failed job's folder: the key the job was given goes anyway."""
    gi = galaxy_it.new_user()
    history = gi.histories.create_history(name="fails")["id"]
    broken = galaxy_it.paste_dataset(gi, history, json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                   "source": "raise SystemExit('this notebook fails on purpose')"}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), "broken.ipynb", ext="ipynb")  # fmt: skip
    session_run = gi.tools.run_tool(history, galaxy_it.NOTEBOOK_TOOL_ID, {
        "mode|mode_select": "previous", "mode|ipynb": {"src": "hda", "id": broken}, "mode|run_it": True})
    script = galaxy_it.paste_dataset(gi, history, "raise SystemExit(3)\n", "fails.py")
    training = gi.tools.run_tool(history, galaxy_it.TRAINING_TOOL_ID, {"select_file": {"src": "hda", "id": script}})
    for run in (session_run, training):
        job_id = run["jobs"][0]["id"]
        assert galaxy_it.wait_for_job(gi, job_id, timeout=300) == "error"
        leftovers = local_cluster.run(local_cluster.head(), "bash", "-c",
                                      f"ls -d {jobs_folder(job_id)}/gxnb-secrets 2>/dev/null; "
                                      f"grep -rlF -e {gi.key} {jobs_folder(job_id)} 2>/dev/null || true")  # fmt: skip
        assert leftovers.strip() == "", leftovers


def test_galaxy_keeps_a_trainings_outputs_inside_its_working_folder():
    """A training that links one of its outputs (a model the tool collects from outputs/) to a file
    of the Galaxy server (Galaxy's own configuration, with its secrets) is stopped by Galaxy's
    output checks: nothing of that file reaches the history."""
    gi = galaxy_it.new_user()
    history = gi.histories.create_history(name="escape")["id"]
    script = galaxy_it.paste_dataset(gi, history, (  # the script runs in work/, beside outputs/
        "import os\nos.symlink('/srv/galaxy/config/galaxy.yml', '../outputs/stolen.onnx')\n"), "escape.py")
    job_id = gi.tools.run_tool(history, galaxy_it.TRAINING_TOOL_ID, {"select_file": {"src": "hda", "id": script}}
                               )["jobs"][0]["id"]  # fmt: skip
    assert galaxy_it.wait_for_job(gi, job_id, timeout=300) == "error"
    details = gi.jobs.show_job(job_id, full_details=True)
    said = (details.get("stderr") or "") + (details.get("job_messages") and json.dumps(details["job_messages"]) or "")
    assert "refers to a file outside its allowed working directory" in said, said[-2000:]
    for dataset in gi.histories.show_history(history, contents=True):
        if dataset.get("state") == "ok" and dataset["history_content_type"] == "dataset":
            text = gi.datasets.download_dataset(dataset["id"])
            assert b"id_secret" not in text and b"database_connection" not in text, dataset["name"]


def test_galaxys_job_callbacks_are_closed_from_outside_too():
    """The same endpoints through the public route, with a made-up key: 403 from nginx."""
    endpoints = galaxy_it.load_endpoints()
    for endpoint in ("ports", "files"):
        path = f"api/jobs/{uuid.uuid4().hex[:16]}/{endpoint}?job_key=x"
        answer = requests.post(f"{endpoints['galaxy_url']}/{path}", json={}, timeout=30)
        assert answer.status_code == 403, (path, answer.status_code)
