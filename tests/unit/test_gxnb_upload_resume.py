"""gxnb.remote.upload resumes a cut-off upload where it stopped. A small tus server (the protocol
Galaxy speaks at /api/upload/resumable_upload) runs in this process and counts the bytes it is sent;
tests/e2e/test_faults.py kills a real client halfway through an upload to Galaxy."""

from __future__ import annotations

import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import requests
from gxnb import remote
from tusclient.uploader import Uploader

CHUNK = 64 * 1024


class TusServer(ThreadingHTTPServer):
    """POST makes an upload, HEAD tells its offset (an upload made without a file name and type is
    refused, as Galaxy's tuspyserver does), PATCH appends; forget() drops every upload."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), TusHandler)
        self.uploads: dict[str, bytearray] = {}
        self.lengths: dict[str, int] = {}
        self.metadata: dict[str, set[str]] = {}
        self.bytes_received = 0
        self.unreachable = False
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def forget(self) -> None:
        self.uploads.clear()


class TusHandler(BaseHTTPRequestHandler):
    server: TusServer

    def log_message(self, *args) -> None:
        pass

    def reply(self, status: int, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Tus-Resumable", "1.0.0")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        assert self.headers["x-api-key"] == "user-key"
        upload_id = uuid.uuid4().hex
        self.server.uploads[upload_id] = bytearray()
        self.server.lengths[upload_id] = int(self.headers["Upload-Length"])
        metadata = self.headers.get("Upload-Metadata", "")
        self.server.metadata[upload_id] = {pair.strip().split(" ")[0] for pair in metadata.split(",")}
        self.reply(201, Location=f"{self.server.url}/api/upload/resumable_upload/{upload_id}")

    def upload_id(self) -> str | None:
        upload_id = self.path.rsplit("/", 1)[-1]
        return upload_id if upload_id in self.server.uploads else None

    def do_HEAD(self) -> None:
        if self.server.unreachable:
            return self.reply(503)
        upload_id = self.upload_id()
        if upload_id is None:
            return self.reply(404)
        if not {"filename", "filetype"} <= self.server.metadata[upload_id]:  # as Galaxy's tuspyserver
            return self.reply(400)
        self.reply(200, Upload_Offset=str(len(self.server.uploads[upload_id])),
                   Upload_Length=str(self.server.lengths[upload_id]))  # fmt: skip

    def do_PATCH(self) -> None:
        upload_id = self.upload_id()
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if upload_id is None:
            return self.reply(404)
        assert int(self.headers["Upload-Offset"]) == len(self.server.uploads[upload_id])
        self.server.uploads[upload_id] += body
        self.server.bytes_received += len(body)
        self.reply(204, Upload_Offset=str(len(self.server.uploads[upload_id])))


@pytest.fixture
def tus(monkeypatch, tmp_path):
    server = TusServer()
    monkeypatch.setattr(remote, "UPLOAD_CHUNK_BYTES", CHUNK)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fetched = []

    def post_to_fetch(path, history_id, session_id, **kwargs):
        fetched.append((session_id, bytes(server.uploads[session_id])))
        return {"outputs": [{"id": f"d{len(fetched)}"}]}

    gi = SimpleNamespace(base_url=server.url, url=server.url + "/api", key="user-key",
                         tools=SimpleNamespace(post_to_fetch=post_to_fetch))  # fmt: skip
    yield server, gi, fetched
    server.shutdown()


def data_file(tmp_path, size: int = 10 * CHUNK + 123):
    path = tmp_path / "train.h5"
    path.write_bytes(os.urandom(size))
    return path


def cut_off_upload(gi, path, monkeypatch, chunks: int) -> None:
    """An upload of path that stops after this many chunks, as a kernel interrupted mid-upload does."""
    send = Uploader.upload_chunk
    sent = []

    def upload_chunk(self):
        if len(sent) == chunks:
            raise KeyboardInterrupt
        send(self)
        sent.append(1)

    with monkeypatch.context() as patch:
        patch.setattr(Uploader, "upload_chunk", upload_chunk)
        with pytest.raises(KeyboardInterrupt):
            remote.upload(gi, path, "h1", "h5", progress=False)


def test_an_upload_cut_off_halfway_resumes_where_it_stopped(tus, tmp_path, monkeypatch, capsys):
    server, gi, fetched = tus
    path = data_file(tmp_path)
    cut_off_upload(gi, path, monkeypatch, 4)
    assert server.bytes_received == 4 * CHUNK
    capsys.readouterr()

    assert remote.upload(gi, path, "h1", "h5", progress=False) == "d1"
    assert f"upload train.h5: resuming at {4 * CHUNK / 2**20:.1f} of" in capsys.readouterr().err
    assert server.bytes_received == path.stat().st_size  # every byte sent once: not from zero again
    assert fetched[0][1] == path.read_bytes()
    assert list((tmp_path / "cache" / "gxnb" / "uploads").iterdir()) == []  # done: nothing kept


def test_an_upload_galaxy_no_longer_has_starts_afresh(tus, tmp_path, monkeypatch, capsys):
    server, gi, fetched = tus
    path = data_file(tmp_path)
    cut_off_upload(gi, path, monkeypatch, 3)
    server.forget()
    assert remote.upload(gi, path, "h1", "h5", progress=False) == "d1"
    assert "resuming" not in capsys.readouterr().err
    assert fetched[0][1] == path.read_bytes()


def test_a_file_changed_since_the_cut_off_is_sent_whole(tus, tmp_path, monkeypatch):
    server, gi, fetched = tus
    path = data_file(tmp_path)
    cut_off_upload(gi, path, monkeypatch, 3)
    path.write_bytes(os.urandom(path.stat().st_size))  # same size, new content and time
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    remote.upload(gi, path, "h1", "h5", progress=False)
    assert fetched[0][1] == path.read_bytes()
    assert server.bytes_received == 3 * CHUNK + path.stat().st_size


def test_galaxy_unreachable_at_resume_keeps_what_was_sent(tus, tmp_path, monkeypatch):
    """An error other than "that upload is gone" is raised, and the upload can still resume later."""
    server, gi, fetched = tus
    path = data_file(tmp_path)
    cut_off_upload(gi, path, monkeypatch, 2)
    server.unreachable = True
    with pytest.raises(Exception, match="503"):
        remote.upload(gi, path, "h1", "h5", progress=False)
    server.unreachable = False
    remote.upload(gi, path, "h1", "h5", progress=False)
    assert server.bytes_received == path.stat().st_size
    assert fetched[0][1] == path.read_bytes()


def test_an_empty_file_is_uploaded(tus, tmp_path):
    server, gi, fetched = tus
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert remote.upload(gi, path, "h1", "txt", progress=False) == "d1"
    assert fetched[0][1] == b""


def test_an_upload_galaxy_refuses_to_resume_starts_afresh(tus, tmp_path, capsys):
    """One made by an older client without a file name and type: Galaxy answers 400, never an offset."""
    server, gi, fetched = tus
    path = data_file(tmp_path)
    made = requests.post(server.url + "/api/upload/resumable_upload", timeout=10, headers={
        "x-api-key": "user-key", "Tus-Resumable": "1.0.0", "Upload-Length": str(path.stat().st_size)})  # fmt: skip
    remote.UploadStore().set_item(remote.UploadStore.key(gi.base_url, path), made.headers["Location"])
    assert remote.upload(gi, path, "h1", "h5", progress=False) == "d1"
    assert "resuming" not in capsys.readouterr().err
    assert fetched[0][1] == path.read_bytes()
