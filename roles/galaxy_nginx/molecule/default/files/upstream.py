#!/usr/bin/env python3
"""A stand-in upstream that says who answered (upstream=<name> on /, 404 on other pages, each
request logged to the journal). As Galaxy it also answers
/api/datasets/<id>/display with an X-Accel-Redirect naming a file (empty body): a dataset in
the data folder, a path that climbs out of it, a file elsewhere; and it tells when a POST's
headers arrived (X-Headers-At), before it reads the body."""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])
X_ACCEL = "/_x_accel_redirect"
DOWNLOADS = {
    "mine": f"{X_ACCEL}/srv/galaxy-data/datasets/mine.txt",
    "climbing": f"{X_ACCEL}/srv/galaxy-data/../../etc/hostname",
    "outside": f"{X_ACCEL}/etc/hostname",
}


class Handler(BaseHTTPRequestHandler):
    def answer(self, body: bytes, status: int = 200, **headers: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if NAME == "galaxy" and parts[:2] == ["api", "datasets"] and parts[3:] == ["display"]:
            self.answer(b"", X_Accel_Redirect=DOWNLOADS[parts[2]])
        elif self.path == "/":
            self.answer(f"upstream={NAME}\n".encode())
        else:
            self.answer(b"no such file\n", status=404)

    def do_POST(self):
        arrived = f"{time.time():.3f}"
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(f"upstream={NAME}\n".encode(), X_Headers_At=arrived)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
