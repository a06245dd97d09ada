#!/usr/bin/env python3
"""A stand-in for the part of Galaxy's API that the galaxy_admin and galaxy_tools roles call, for
their Molecule scenarios (the real Galaxy runs in the local deployment's end-to-end tests).

    galaxy_api_stub.py --port 8081 --state FILE --log FILE [--galaxy-config galaxy.yml]
                       [--admin-key KEY] [--tool-conf tool_conf.xml]

Like Galaxy it keeps accounts, API keys, groups and roles (in --state, so a restart keeps them)
and takes the bootstrap key only while galaxy.yml names it: the key is read from --galaxy-config
when the stub starts, as Galaxy reads it, so a galaxy.yml rewritten without it takes effect on
a restart. --admin-key makes an admin account with that key. A toolbox reload reads the tool
panel (--tool-conf) and the tool XMLs it names; GET /api/tools/<id> answers 404 for a tool not
loaded. Every call is appended to --log as a JSON line: method, path, and which kind of key
("bootstrap", "admin", "none" or "refused"); each start as method START (key: whether galaxy.yml
named a bootstrap key).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import secrets
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def bootstrap_key(galaxy_config: str) -> str:
    """bootstrap_admin_api_key from galaxy.yml (a plain `key: value` line is all the roles write)."""
    path = pathlib.Path(galaxy_config) if galaxy_config else None
    if not path or not path.exists():
        return ""
    found = re.search(r"^\s*bootstrap_admin_api_key:\s*['\"]?([^'\"\s]+)", path.read_text(), re.MULTILINE)
    return found.group(1) if found else ""


def tools_in_panel(tool_conf: str) -> list[str]:
    """The ids of the tools the panel names (tool_path + file, each file's <tool id=...>)."""
    path = pathlib.Path(tool_conf) if tool_conf else None
    if not path or not path.exists():
        return []
    panel = ET.parse(path).getroot()
    ids = []
    for tool in panel.iter("tool"):
        xml = pathlib.Path(panel.get("tool_path", "")) / tool.get("file", "")
        if xml.exists():
            ids.append(ET.parse(xml).getroot().get("id"))
    return ids


class State:
    def __init__(self, path: str, admin_key: str):
        self.path = pathlib.Path(path)
        self.data = (
            json.loads(self.path.read_text())
            if self.path.exists()
            else {"users": [], "keys": {}, "groups": [], "roles": [], "next_id": 1, "tools": []}
        )
        if admin_key and admin_key not in self.data["keys"]:
            user = self.new_user("stub-admin@example.org", "stub-admin")
            self.data["keys"][admin_key] = user["id"]
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1))

    def new_id(self) -> str:
        self.data["next_id"] += 1
        return f"{self.data['next_id'] - 1:016x}"

    def new_user(self, email: str, username: str) -> dict:
        user = {"id": self.new_id(), "email": email, "username": username}
        self.data["users"].append(user)
        return user

    def key_of(self, user_id: str) -> str | None:
        return next((key for key, owner in self.data["keys"].items() if owner == user_id), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--state", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--galaxy-config", default="")
    parser.add_argument("--admin-key", default="")
    parser.add_argument("--tool-conf", default="")
    args = parser.parse_args()
    state = State(args.state, args.admin_key)
    bootstrap = bootstrap_key(args.galaxy_config)
    with open(args.log, "a") as log:  # a (re)start, as Galaxy's own log would show it
        log.write(json.dumps({"method": "START", "path": "", "key": "bootstrap" if bootstrap else "none"}) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):  # the JSON log below says it all
            pass

        def caller(self) -> tuple[str, str | None]:
            key = self.headers.get("x-api-key", "")
            if not key:
                return "none", None
            if bootstrap and key == bootstrap:
                return "bootstrap", None
            if key in state.data["keys"]:
                return "admin", state.data["keys"][key]
            return "refused", None

        def answer(self, status: int, body=None) -> None:
            payload = b"" if status == 204 else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def handle_call(self, method: str) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")[1:]  # after "api"
            kind, user_id = self.caller()
            with open(args.log, "a") as log:
                log.write(json.dumps({"method": method, "path": url.path, "key": kind}) + "\n")
            length = int(self.headers.get("Content-Length", 0) or 0)
            body = json.loads(self.rfile.read(length) or b"null") if length else None
            if parts == ["version"]:
                return self.answer(200, {"version_major": "26.1"})
            if kind in ("none", "refused"):
                return self.answer(403, {"err_msg": "Provided API key is not valid."})
            status, result = self.route(method, parts, parse_qs(url.query), body, user_id)
            state.save()
            self.answer(status, result)

        def route(self, method, parts, query, body, user_id):  # noqa: C901 - one branch per endpoint
            data = state.data
            match method, parts:
                case "GET", ["users"]:
                    email = query.get("f_email", [None])[0]
                    return 200, [u for u in data["users"] if email in (None, u["email"])]
                case "POST", ["users"]:
                    return 200, state.new_user(body["email"], body["username"])
                case "GET", ["users", "current"]:
                    user = next(u for u in data["users"] if u["id"] == user_id)
                    return 200, dict(user, is_admin=True)
                case "GET", ["users", uid, "api_key", "detailed"]:
                    key = state.key_of(uid)
                    return (200, {"key": key}) if key else (204, None)
                case "POST", ["users", uid, "api_key"]:
                    key = secrets.token_hex(16)
                    data["keys"] = {k: v for k, v in data["keys"].items() if v != uid} | {key: uid}
                    return 200, key
                case "GET", ["groups"]:
                    return 200, [{"id": g["id"], "name": g["name"]} for g in data["groups"]]
                case "POST", ["groups"]:
                    group = {"id": state.new_id(), "name": body["name"], "user_ids": list(body.get("user_ids", []))}
                    data["groups"].append(group)
                    return 200, [{"id": group["id"], "name": group["name"]}]
                case "GET", ["groups", gid, "users"]:
                    group = next(g for g in data["groups"] if g["id"] == gid)
                    return 200, [u for u in data["users"] if u["id"] in group["user_ids"]]
                case "PUT", ["groups", gid, "users", uid]:
                    group = next(g for g in data["groups"] if g["id"] == gid)
                    group["user_ids"] = sorted(set(group["user_ids"]) | {uid})
                    return 200, {"id": uid}
                case "GET", ["roles"]:
                    return 200, [{"id": r["id"], "name": r["name"]} for r in data["roles"]]
                case "POST", ["roles"]:
                    role = {"id": state.new_id(), "name": body["name"], "group_ids": body.get("group_ids", [])}
                    data["roles"].append(role)
                    return 200, role
                case "PUT", ["configuration", "toolbox"]:
                    data["tools"] = tools_in_panel(args.tool_conf)
                    return 200, None
                case "GET", ["tools", tool_id, "reload"]:
                    known = tool_id in data["tools"]
                    return (200, {"message": f"Reloaded {tool_id}"}) if known else (400, {"err_msg": "no such tool"})
                case "GET", ["tools", tool_id]:
                    return (200, {"id": tool_id}) if tool_id in data["tools"] else (404, {"err_msg": "no such tool"})
            return 404, {"err_msg": f"the stub has no {method} /api/{'/'.join(parts)}"}

        def do_GET(self):
            self.handle_call("GET")

        def do_POST(self):
            self.handle_call("POST")

        def do_PUT(self):
            self.handle_call("PUT")

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
