"""gxnb.node_notice: what a session makes of its node's maintenance notice (the drain playbook's
JSON in a folder the container sees read-only). A file it cannot read never ends a session."""

from __future__ import annotations

import json
import time

import pytest
from gxnb import node_notice


def test_a_notice_gives_the_time_the_session_ends_and_says_why(tmp_path, monkeypatch, capsys):
    ends_at = int(time.time()) + 600
    notice_file = tmp_path / "notice.json"
    notice_file.write_text(json.dumps({"node": "gpu-node-3", "reason": "new disk", "ends_at": ends_at}))
    monkeypatch.setenv("GXNB_NODE_NOTICE", str(notice_file))
    notice = node_notice.read()
    assert notice["ends_at"] == ends_at and 590 <= notice["ends_in_s"] <= 600
    text = node_notice.describe(notice)
    at = time.strftime("%H:%M UTC", time.gmtime(ends_at))
    assert text.startswith(f"node gpu-node-3 goes down for maintenance at {at}")
    assert "(new disk)" in text and "outputs/ return to the history" in text
    assert node_notice.main(["--ends-at"]) == 0
    assert capsys.readouterr().out == f"{ends_at}\n"


@pytest.mark.parametrize("content", [None, "", "{half", "[1, 2]", '{"reason": "no time"}', '{"ends_at": "soon"}'])
def test_no_notice_or_one_that_cannot_be_read_is_none(tmp_path, monkeypatch, capsys, content):
    notice_file = tmp_path / "notice.json"
    if content is not None:
        notice_file.write_text(content)
    monkeypatch.setenv("GXNB_NODE_NOTICE", str(notice_file))
    assert node_notice.read() is None
    assert node_notice.main(["--ends-at"]) == 0
    assert capsys.readouterr().out == ""


def test_a_time_gone_by_ends_the_session_now(tmp_path, monkeypatch):
    notice_file = tmp_path / "notice.json"
    notice_file.write_text(json.dumps({"ends_at": int(time.time()) - 60}))
    monkeypatch.setenv("GXNB_NODE_NOTICE", str(notice_file))
    notice = node_notice.read()
    assert notice["ends_in_s"] == 0
    assert node_notice.describe(notice).startswith("this node goes down for maintenance at")
    assert "(no reason given)" in node_notice.describe(notice)
