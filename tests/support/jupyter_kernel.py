"""Run code in a Jupyter kernel over its websocket (the route a browser uses)."""

from __future__ import annotations

import json
import time
import uuid

import websocket


def execute(ws_url: str, code: str, timeout: float = 60, **handshake) -> dict:
    """Send one execute_request; return {'status', 'stdout', 'error'} from the kernel's replies.
    handshake: websocket-client's options for the handshake, as a browser would send it: origin
    (the session's own: JupyterLab refuses others), header (a token's Authorization), host."""
    ws = websocket.create_connection(ws_url, timeout=timeout, **handshake)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        result = {"status": None, "stdout": "", "error": None}
        deadline = time.monotonic() + timeout
        idle = False
        while time.monotonic() < deadline and not (idle and result["status"]):
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream" and msg["content"]["name"] == "stdout":
                result["stdout"] += msg["content"]["text"]
            elif kind == "error":
                result["error"] = "\n".join(msg["content"]["traceback"])
            elif kind == "execute_reply":
                result["status"] = msg["content"]["status"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        return result
    finally:
        ws.close()
