"""galaxy_tools against the stand-in Galaxy API: the tool XMLs and the panel on the host, and the
reloads Galaxy was asked for - converge (new tools: one toolbox reload), the idempotence run
(nothing), the side effect that switched the image (one toolbox reload: the changed tools are new
files); the role ended only when Galaxy listed every tool."""

import hashlib
import json
import re
import xml.etree.ElementTree as ET

import pytest

IMAGE_B = "registry.example.org/gxnb/probe@sha256:" + "b" * 64


@pytest.fixture(scope="module")
def calls(host):
    return [json.loads(line) for line in host.file("/var/log/galaxy-api-stub.jsonl").content_string.splitlines()]


def loaded_files(host) -> dict[str, list[str]]:
    """The tool XMLs on the host, by the name the role's list gives them."""
    found = {}
    for name in ("interactive/notebook", "training/train"):
        folder, stem = name.split("/")
        listing = host.check_output(f"ls /srv/galaxy/tools/{folder}").split()
        found[name] = [f"{folder}/{entry}" for entry in listing if entry.startswith(f"{stem}.")]
    return found


def test_the_tools_run_the_image_of_the_last_run_from_one_file_each_named_by_its_content(host):
    for name, files in loaded_files(host).items():
        # The earlier image's file went, and the file from before content names (prepare.yml).
        assert len(files) == 1 and re.fullmatch(rf"{name}\.[0-9a-f]{{12}}\.xml", files[0]), files
        xml = host.file(f"/srv/galaxy/tools/{files[0]}")
        assert hashlib.sha256(xml.content).hexdigest()[:12] == files[0].split(".")[-2]
        assert ET.fromstring(xml.content_string).find("requirements/container").text == IMAGE_B
        assert xml.mode == 0o644


def test_the_panel_lists_each_tool_in_its_section(host):
    panel = ET.fromstring(host.file("/srv/galaxy/config/tool_conf.xml").content_string)
    assert panel.get("tool_path") == "/srv/galaxy/tools"
    sections = {s.get("name"): [t.get("file") for t in s.iter("tool")] for s in panel.iter("section")}
    files = loaded_files(host)
    assert sections == {"Interactive tools": files["interactive/notebook"], "Machine learning": files["training/train"]}


def test_galaxy_was_asked_to_reload_only_when_something_changed(calls):
    # A changed tool is a new file, which a toolbox reload reads fresh: no per-tool reloads.
    reloads = [(c["method"], c["path"]) for c in calls if c["method"] == "PUT" or c["path"].endswith("/reload")]
    assert reloads == [
        ("PUT", "/api/configuration/toolbox"),  # converge: new tools
        ("PUT", "/api/configuration/toolbox"),  # side effect: changed tools
    ], reloads
    assert all(c["key"] == "admin" for c in calls if c["method"] != "START" and c["path"] != "/api/version"), calls


def test_every_run_waited_until_galaxy_listed_the_tools(calls):
    listed = [
        c["path"]
        for c in calls
        if c["method"] == "GET" and c["path"] in ("/api/tools/probe_notebook", "/api/tools/probe_training")
    ]
    assert listed.count("/api/tools/probe_notebook") >= 3 and listed.count("/api/tools/probe_training") >= 3, listed
