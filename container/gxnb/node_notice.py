"""The node's notice to the sessions running on it: it goes down for maintenance at a given time.

The operator's drain playbook (ansible/drain_node.yml) writes it on the job node as JSON,
{"node": "...", "reason": "...", "ends_at": <epoch seconds>}, into a folder every job container
sees read-only (TPV mounts it at GXNB_NODE_NOTICE's folder). JupyterLab's status bar shows it
(gxnb.accelerator) and the session ends by itself at ends_at as File > Shut Down ends it
(start-notebook.sh asks `python -m gxnb.node_notice --ends-at`): outputs/ return to the history.

    python -m gxnb.node_notice             the notice as one line, or nothing
    python -m gxnb.node_notice --ends-at   its ends_at, or nothing
"""

from __future__ import annotations

import json
import os
import sys
import time

DEFAULT_PATH = "/run/gxnb-node/notice.json"


def path() -> str:
    return os.environ.get("GXNB_NODE_NOTICE") or DEFAULT_PATH


def read(notice_path: str | None = None) -> dict | None:
    """{"node", "reason", "ends_at", "ends_in_s"} or None (no notice, or one that cannot be read:
    a session never stops on a half-written or foreign file)."""
    try:
        with open(notice_path or path(), encoding="utf-8") as file:
            notice = json.load(file)
        ends_at = int(notice["ends_at"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(notice, dict):
        return None
    return {"node": str(notice.get("node", "")), "reason": str(notice.get("reason", "")), "ends_at": ends_at,
            "ends_in_s": max(0, ends_at - int(time.time()))}  # fmt: skip


def describe(notice: dict) -> str:
    when = time.strftime("%H:%M UTC", time.gmtime(notice["ends_at"]))
    node = f"node {notice['node']}" if notice["node"] else "this node"
    return (f"{node} goes down for maintenance at {when} ({notice['reason'] or 'no reason given'}): "
            "the session ends then, as File > Shut Down ends it, and outputs/ return to the history")  # fmt: skip


def main(argv: list[str]) -> int:
    notice = read()
    if notice is not None:
        print(notice["ends_at"] if "--ends-at" in argv else describe(notice))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
