"""galaxy_tools against the stand-in Galaxy API: the tool XMLs and the panel on the host, and the
reloads Galaxy was asked for - converge (new tools: one toolbox reload, no per-tool reload), the
idempotence run (nothing), the side effect that switched the image (the toolbox and each changed
tool reloaded); the role ended only when Galaxy listed every tool."""

import json
import xml.etree.ElementTree as ET

import pytest

IMAGE_B = "registry.example.org/gxnb/probe@sha256:" + "b" * 64


@pytest.fixture(scope="module")
def calls(host):
    return [json.loads(line) for line in host.file("/var/log/galaxy-api-stub.jsonl").content_string.splitlines()]


def test_the_tools_run_the_image_of_the_last_run(host):
    for xml in ("/srv/galaxy/tools/interactive/notebook.xml", "/srv/galaxy/tools/training/train.xml"):
        tool = ET.fromstring(host.file(xml).content_string)
        assert tool.find("requirements/container").text == IMAGE_B
        assert host.file(xml).mode == 0o644


def test_the_panel_lists_each_tool_in_its_section(host):
    panel = ET.fromstring(host.file("/srv/galaxy/config/tool_conf.xml").content_string)
    assert panel.get("tool_path") == "/srv/galaxy/tools"
    sections = {s.get("name"): [t.get("file") for t in s.iter("tool")] for s in panel.iter("section")}
    assert sections == {"Interactive tools": ["interactive/notebook.xml"], "Machine learning": ["training/train.xml"]}


def test_galaxy_was_asked_to_reload_only_when_something_changed(calls):
    reloads = [(c["method"], c["path"]) for c in calls if c["method"] == "PUT" or c["path"].endswith("/reload")]
    assert reloads == [
        ("PUT", "/api/configuration/toolbox"),  # converge: new tools
        ("PUT", "/api/configuration/toolbox"),  # side effect: changed tools
        ("GET", "/api/tools/probe_notebook/reload"),
        ("GET", "/api/tools/probe_training/reload"),
    ], reloads
    assert all(c["key"] == "admin" for c in calls if c["method"] != "START" and c["path"] != "/api/version"), calls


def test_every_run_waited_until_galaxy_listed_the_tools(calls):
    listed = [
        c["path"]
        for c in calls
        if c["method"] == "GET" and c["path"] in ("/api/tools/probe_notebook", "/api/tools/probe_training")
    ]
    assert listed.count("/api/tools/probe_notebook") >= 3 and listed.count("/api/tools/probe_training") >= 3, listed
