"""What the metrics role's exporters share (gxnb-gpu-exporter, gxnb-service-exporter): Prometheus'
text format, and a server of one page, /metrics, made afresh at each scrape."""

from __future__ import annotations

import http.server
import sys
from collections.abc import Callable
from typing import Any


def label_value(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Samples in Prometheus' text format, each metric's HELP and TYPE once."""

    def __init__(self):
        self.lines: list[str] = []
        self.declared: set[str] = set()

    def add(self, name: str, kind: str, help_text: str, value: Any, /, **labels: Any) -> None:
        if value is None:
            return  # unavailable: left out, never invented
        if name not in self.declared:
            self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            self.declared.add(name)
        text = ",".join(f'{key}="{label_value(value)}"' for key, value in labels.items())
        number = float(value)
        shown = str(int(number)) if number.is_integer() else repr(number)  # every digit (bytes, Unix times)
        self.lines.append(f"{name}{{{text}}} {shown}" if text else f"{name} {shown}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def serve(program: str, listen: str, collect: Callable[[], str]) -> None:
    """Serve collect()'s text at /metrics on ADDRESS:PORT until stopped (systemd starts it again)."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"{program}: --listen is {listen!r}; ADDRESS:PORT is allowed")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is here")
                return
            body = collect().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # a scrape every 15 s is no news
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    print(f"{program}: listening on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
