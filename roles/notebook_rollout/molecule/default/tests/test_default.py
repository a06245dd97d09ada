"""notebook_rollout: the tag resolved to the registry's digest, pulled by digest on the
job node, recorded as current with the image it replaced."""

import json

import pytest

STATE_FILE = "/var/lib/gxnb/notebook-image-rollout.json"


@pytest.fixture(scope="module")
def registry(host):
    address = host.check_output("ip -4 -o route get 1.1.1.1 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'").strip()
    return f"{address}:5000"


def registry_digest(host, registry, tag):
    """The digest the registry itself gives for the tag (asked from the instance)."""
    return host.check_output(
        "python3 -c \"import sys, urllib.request as u; r = u.Request(sys.argv[1], method='HEAD', headers="
        "{'Accept': 'application/vnd.docker.distribution.manifest.v2+json'}); "
        "print(u.urlopen(r).headers['Docker-Content-Digest'])\" "
        f"http://{registry}/v2/gxnb/probe/manifests/{tag}").strip()


def test_state_names_the_tag_digest_as_current_and_the_old_image_as_previous(host, registry):
    state = json.loads(host.file(STATE_FILE).content_string)
    assert state["current"] == f"{registry}/gxnb/probe@{registry_digest(host, registry, '2')}"
    assert state["previous"] == f"{registry}/gxnb/probe:1"
    # What the inventory said at the rollout: a later site.yml keeps the rollout while it says the same.
    assert state["inventory"] == f"{registry}/gxnb/probe:1"


def test_history_has_one_rollout_entry_despite_the_second_converge(host, registry):
    history = json.loads(host.file(STATE_FILE).content_string)["history"]
    assert [(entry["action"], entry["tag"]) for entry in history] == [("rollout", "2")]
    assert history[0]["replaced"] == f"{registry}/gxnb/probe:1"


def test_job_node_has_the_new_image_by_digest_and_it_runs(host, registry):
    image = f"{registry}/gxnb/probe@{registry_digest(host, registry, '2')}"
    out = host.run(f"docker run --rm {image} /bin/sh -c 'cat /version'")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "probe 2"


def test_tag_1_is_a_different_image(host, registry):
    assert registry_digest(host, registry, "1") != registry_digest(host, registry, "2")
