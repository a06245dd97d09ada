"""galaxy_admin against the stand-in Galaxy API: the admin account and its key made once with the
bootstrap key, the key kept root-only and published, galaxy.yml's bootstrap key retired (the
stand-in, restarted by the play's handler, refuses it), the GPU users' group with the admin in
it and a role of the same name carried by the group; the second run made nothing."""

import json
import shlex

import pytest

KEY_FILE = "/etc/galaxy-admin/api_key"
BOOTSTRAP = "bootstrap-key-0123456789"


def api(host, path, key, method="GET"):
    """(status, JSON body) of a call to the stand-in, as a client on the host makes it."""
    code = (
        "import json, sys, urllib.request, urllib.error\n"
        f"req = urllib.request.Request('http://127.0.0.1:8081/api/{path}', method='{method}',"
        f" headers={{'x-api-key': '{key}'}})\n"
        "try:\n    r = urllib.request.urlopen(req); print(r.status, r.read().decode() or 'null')\n"
        "except urllib.error.HTTPError as e:\n    print(e.code, e.read().decode() or 'null')\n"
    )
    status, body = host.check_output(f"python3 -c {shlex.quote(code)}").split(" ", 1)
    return int(status), json.loads(body)


@pytest.fixture(scope="module")
def state(host):
    return json.loads(host.file("/var/lib/galaxy-api-stub/state.json").content_string)


@pytest.fixture(scope="module")
def calls(host):
    return [json.loads(line) for line in host.file("/var/log/galaxy-api-stub.jsonl").content_string.splitlines()]


def test_the_account_and_key_were_made_once(calls):
    """(First: the later tests make calls of their own.)"""
    made = [c for c in calls if c["method"] == "POST" and c["path"] in ("/api/users", "/api/groups", "/api/roles")]
    assert [c["path"] for c in made] == ["/api/users", "/api/groups", "/api/roles"], made
    assert [c["key"] for c in calls if c["path"].endswith("/api_key") and c["method"] == "POST"] == ["bootstrap"]
    # After the bootstrap the role calls with the kept key only; nothing is refused.
    assert all(c["key"] in ("admin", "bootstrap", "none") for c in calls), calls


def test_galaxy_restarts_without_the_bootstrap_key_before_the_role_goes_on(calls):
    starts = [i for i, c in enumerate(calls) if c["method"] == "START"]
    assert [calls[i]["key"] for i in starts] == ["bootstrap", "none"], calls  # prepare's start, the handler's restart
    key_kept = max(i for i, c in enumerate(calls) if c["path"].endswith("/api_key") and c["method"] == "POST")
    group_made = next(i for i, c in enumerate(calls) if c["path"] == "/api/groups" and c["method"] == "POST")
    assert key_kept < starts[1] < group_made, calls


def test_the_admins_key_is_kept_root_only(host, state):
    kept = host.file(KEY_FILE)
    assert kept.user == "root" and kept.mode == 0o600
    assert host.file("/etc/galaxy-admin").mode == 0o700
    admin = next(u for u in state["users"] if u["email"] == "admin@example.org")
    assert state["keys"][kept.content_string.strip()] == admin["id"]


def test_the_kept_key_is_published_as_a_fact(host):
    assert host.file("/tmp/published-admin-key").content_string == host.file(KEY_FILE).content_string.strip()


def test_the_admin_key_works_and_the_bootstrap_key_no_longer_does(host):
    key = host.file(KEY_FILE).content_string.strip()
    status, me = api(host, "users/current", key)
    assert status == 200 and me["email"] == "admin@example.org" and me["is_admin"]
    assert "bootstrap_admin_api_key" not in host.file("/srv/galaxy/config/galaxy.yml").content_string
    assert api(host, "users", BOOTSTRAP)[0] == 403


def test_the_gpu_group_holds_the_admin_and_carries_the_role(host, state):
    group = next(g for g in state["groups"] if g["name"] == "gpu-users")
    admin = next(u for u in state["users"] if u["email"] == "admin@example.org")
    assert group["user_ids"] == [admin["id"]]
    role = next(r for r in state["roles"] if r["name"] == "gpu-users")
    assert role["group_ids"] == [group["id"]]
