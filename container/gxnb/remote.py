"""Send a long training from a notebook to Galaxy as a batch job (the run_jupyter_job tool).

    job = run_script_job("train.py", data_dict=["data/train.h5"])   # waits, as the original did
    job = submit_script_job("train.ipynb", data_dict=[...])          # returns at once
    job.status(); job.wait(); job.download("results/"); job.cancel()

Inside a Galaxy notebook session the server and key come from GALAXY_URL and API_KEY.
H5 inputs are checked before anything is uploaded (HDF5 content; paths relative to the
notebook's folder, without '..', of letters, digits and . _ - / only, as the job links
them under these paths), then sent with Galaxy's chunked, resumable (tus) upload with a
progress bar. An upload that was cut off (a kernel restarted, a network gone) resumes where it
stopped when the same file is sent again: where each file's upload went is kept in
~/.cache/gxnb/uploads until Galaxy has it. A job that fails raises RemoteJobFailed carrying
the end of its stderr: it is never reported as a success. A job Galaxy paused (a failed
input, a full storage quota) raises RemoteJobPaused at once instead of waiting for ever;
wait(timeout=...) bounds any wait.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

UPLOAD_CHUNK_BYTES = int(float(os.environ.get("GXNB_UPLOAD_CHUNK_MB", "64")) * 1024 * 1024)
TERMINAL_OK = {"ok", "skipped"}
# How often an upload's dataset is asked whether Galaxy has it: a small script's takes about a
# second, which bioblend's default look every 3 s would round up to 3.
DATASET_POLL_S = 0.25
TERMINAL_FAILED = {"error", "failed", "deleted", "deleting", "stopped"}
PAUSED = "paused"  # runs only once the user resumes it: waiting would never end
# The job's progress bar moves through these stages (Galaxy's states mapped onto them) and is full
# once the job is done; a failed job leaves it where it stopped (red in a notebook).
JOB_STAGES = {"new": 0, "upload": 0, "waiting": 0, "resubmitted": 0, "queued": 1, "running": 2, "ok": 3, "skipped": 3}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# The characters run_jupyter_job keeps in its "paths the code opens" (its sanitizer drops the
# others silently, and ',' separates paths): an H5 path must consist of these only.
PATH_CHARACTERS = re.compile(r"[A-Za-z0-9._/-]+")

__all__ = ["RemoteJob", "RemoteJobError", "RemoteJobFailed", "RemoteJobPaused", "run_script_job", "submit_script_job"]


class RemoteJobError(ValueError):
    """Bad input, found before anything is sent to Galaxy."""


class RemoteJobFailed(RuntimeError):
    """The Galaxy job ended in error; `stderr` holds the end of its standard error."""

    def __init__(self, job_id: str, state: str, stderr: str):
        self.job_id, self.state, self.stderr = job_id, state, stderr
        super().__init__(f"Galaxy job {job_id} ended in state '{state}'. End of its stderr:\n{stderr}")


class RemoteJobPaused(RemoteJobFailed):
    """Galaxy paused the job: it does not run until it is resumed. `info` holds Galaxy's reason."""

    def __init__(self, job_id: str, info: str):
        self.job_id, self.state, self.stderr, self.info = job_id, PAUSED, "", info
        RuntimeError.__init__(
            self,
            f"Galaxy job {job_id} is paused{f' ({info})' if info else ''}: Galaxy pauses a job when one of its "
            "inputs failed or your storage quota is full. Fix that, resume the job from the history's "
            "menu ('Resume paused jobs'), then call wait() again.",
        )


def is_hdf5(path: Path) -> bool:
    """HDF5's signature sits at offset 0, 512, 1024, 2048, ... (after an optional user block)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def check_script(script_path) -> Path:
    if not isinstance(script_path, (str, os.PathLike)):
        raise RemoteJobError(f"script_path {script_path!r}: expected the path of a .py script or an .ipynb notebook")
    script = Path(script_path)
    if not script.is_file():
        raise RemoteJobError(f"script_path '{script_path}' does not exist")
    if script.suffix not in (".py", ".ipynb"):
        raise RemoteJobError(f"script_path '{script_path}': expected a .py script or an .ipynb notebook")
    return script


def check_data(data_dict) -> list[tuple[str, Path]]:
    """The H5 inputs as [(path as the code opens it, file)], all checked before anything is uploaded.

    The job links each input under the path given here (relative to the notebook's folder,
    matched by file name), so a path must be relative, stay below the notebook's folder and
    consist of letters, digits and . _ - / only."""
    if isinstance(data_dict, (str, bytes, os.PathLike)):
        raise RemoteJobError("data_dict must be a list of H5 file paths, e.g. ['data/train.h5']")
    entries = [check_data_path(entry) for entry in (data_dict or [])]
    names = [path.name for _, path in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RemoteJobError(f"data_dict: file names must differ, the job matches inputs by name: {duplicates}")
    return entries


def check_data_path(entry) -> tuple[str, Path]:
    text = os.fspath(entry) if isinstance(entry, (str, os.PathLike)) else entry
    if not isinstance(text, str):
        raise RemoteJobError(f"data_dict: {entry!r} is not a file path; expected e.g. 'data/train.h5'")
    path = Path(text)
    if path.is_dir():
        raise RemoteJobError(f"data_dict: '{text}' is a folder; expected an H5 file")
    if not path.is_file():
        raise RemoteJobError(f"data_dict: '{text}' does not exist")
    if not PATH_CHARACTERS.fullmatch(text):
        bad = "".join(sorted({c for c in text if not PATH_CHARACTERS.fullmatch(c)}))
        raise RemoteJobError(
            f"data_dict: '{text}' contains characters the job cannot take ({bad!r}): "
            "rename the file (and the path in your code) to letters, digits and . _ - / only"
        )
    if path.is_absolute():
        raise RemoteJobError(
            f"data_dict: '{text}' is an absolute path: the job provides inputs inside its working folder only; "
            "give the path relative to the notebook's folder, as your code opens it (e.g. 'data/train.h5')"
        )
    if ".." in PurePosixPath(text).parts:
        raise RemoteJobError(
            f"data_dict: '{text}' leads out of the notebook's folder ('..'): the job provides inputs inside its "
            "working folder only; move the file into the notebook's folder or below it"
        )
    try:
        h5 = is_hdf5(path)
    except OSError as exc:
        raise RemoteJobError(f"data_dict: '{text}' cannot be read ({exc.strerror})") from exc
    if not h5:
        raise RemoteJobError(f"data_dict: '{text}' is not an HDF5 file (run_jupyter_job takes H5 data sets)")
    return text, path


def check_inputs(script_path, data_dict) -> tuple[Path, list[Path]]:
    """The script and the H5 files, checked (RemoteJobError) before anything is sent."""
    script = check_script(script_path)
    return script, [path for _, path in check_data(data_dict)]


def check_text(name: str, value, optional: bool = False, empty: bool = False) -> None:
    """value must be a string (None where optional; "" or blanks only where empty)."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not (empty or value.strip()):
        raise RemoteJobError(f"{name} must be a {'' if empty else 'non-empty '}string, not {value!r}")


def check_number(name: str, value, minimum: float = 0, above: bool = False, optional: bool = False,
                 integer: bool = False) -> None:  # fmt: skip
    """value must be a finite number >= minimum (> minimum with above=True); None where optional."""
    if value is None and optional:
        return
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        expected = "a whole number" if integer else "a number"
        raise RemoteJobError(f"{name} must be {expected}, not {value!r}")
    if value < minimum or (above and value == minimum):
        raise RemoteJobError(f"{name} must be {'>' if above else '>='} {minimum}, not {value!r}")


def galaxy_target(server, key, environ=os.environ) -> tuple[str, str]:
    """The Galaxy server and API key: as passed, else GALAXY_URL and API_KEY (a Galaxy notebook session)."""
    check_text("server", server, optional=True, empty=True)  # empty: from the session's environment
    check_text("key", key, optional=True, empty=True)
    server = server or environ.get("GALAXY_URL")
    key = key or environ.get("API_KEY")
    if not server or not key:
        raise RemoteJobError("no Galaxy to send the job to: pass server= and key=, or run in a Galaxy notebook session")
    return server, key


def job_inputs(script_id: str, data_ids: list[str], local_paths: list[str]) -> dict:
    """run_jupyter_job's inputs: the script, the H5 datasets and the paths the code opens them by."""
    inputs = {"select_file": {"src": "hda", "id": script_id}}
    if data_ids:
        inputs["ml_h5_datasets"] = {"batch": False, "values": [{"src": "hda", "id": i} for i in data_ids]}
        inputs["ml_h5_dataset_paths"] = ",".join(local_paths)
    return inputs


def output_name(key: str) -> str:
    """A job output's name: "arrays", "workdir", or a model's variable name in the ONNX collection."""
    if key.startswith("__new_primary_file_"):  # "__new_primary_file_onnx_models|net__"
        return key.split("|", 1)[1].removesuffix("__")
    return key


def output_file_name(name: str) -> str:
    """The file an output is saved as: outputs.h5, workdir.zip, or <variable name>.onnx."""
    special = {"arrays": "outputs.h5", "workdir": "workdir.zip"}
    if name in special:
        return special[name]
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise RemoteJobError(f"the job has an output named {name!r}, which is not a file name")
    return f"{name}.onnx"


def connect(server: str | None, key: str | None):
    server, key = galaxy_target(server, key)
    from bioblend.galaxy import GalaxyInstance

    return GalaxyInstance(server, key=key)


def progress_bar(**settings):
    """tqdm's bar for where the code runs: in a notebook a widget whose bar wraps onto its own line
    when the output is narrow (else the text pushes it out of sight), on a console text."""
    from tqdm.auto import tqdm

    bar = tqdm(**settings)
    layout = getattr(getattr(bar, "container", None), "layout", None)  # only a shown notebook bar has one
    if layout is not None:
        layout.display, layout.flex_flow, layout.width = "inline-flex", "row wrap", "100%"
    return bar


class UploadStore:
    """Where each unfinished upload went (its tus URL), one small file per upload, so that sending
    the same file to the same Galaxy again resumes it. A tusclient URL storage; the key names the
    server, the file's absolute path, size and modification time: a changed file starts afresh."""

    def __init__(self):
        self.folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gxnb" / "uploads"

    @staticmethod
    def key(server: str, path: Path) -> str:
        stat = path.stat()
        return f"{server.rstrip('/')} {path.resolve()} {stat.st_size} {stat.st_mtime_ns}"

    def _file(self, key: str) -> Path:
        return self.folder / hashlib.sha256(key.encode()).hexdigest()

    def get_item(self, key: str) -> str | None:
        try:
            return self._file(key).read_text().strip() or None
        except FileNotFoundError:
            return None

    def set_item(self, key: str, url: str | None) -> None:
        if url is None:
            return self.remove_item(key)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        file = self._file(key)
        file.with_suffix(".new").write_text(url)
        file.with_suffix(".new").replace(file)

    def remove_item(self, key: str) -> None:
        self._file(key).unlink(missing_ok=True)


class _KeyAsFingerprint:
    """tusclient asks a fingerprinter for the storage key; ours is fixed per upload (UploadStore.key)."""

    def __init__(self, key: str):
        self.key = key

    def get_fingerprint(self, _stream) -> str:
        return self.key


def resumable_uploader(gi, path: Path, store: UploadStore):
    """A tus uploader that continues an earlier, unfinished upload of the same file where Galaxy
    still has it; otherwise (none, or Galaxy no longer knows it) a new one. Returns (uploader, key)."""
    from tusclient.client import TusClient
    from tusclient.exceptions import TusCommunicationError

    key = UploadStore.key(gi.base_url, path)
    client = TusClient(gi.url + "/upload/resumable_upload", headers={"x-api-key": gi.key})

    def uploader():
        # Galaxy's tus server answers an upload's offset only if it was made with these two.
        metadata = {"filename": path.name, "filetype": "application/octet-stream"}
        return client.uploader(file_path=str(path), chunk_size=UPLOAD_CHUNK_BYTES, metadata=metadata,
                               store_url=True, url_storage=store, fingerprinter=_KeyAsFingerprint(key))  # fmt: skip

    try:
        return uploader(), key
    except TusCommunicationError as error:
        if not 400 <= (error.status_code or 0) < 500:  # Galaxy unreachable or failing: say so, keep the URL
            raise
        store.remove_item(key)  # Galaxy cannot resume that upload (expired, cleaned up): start afresh
        return uploader(), key


def upload(gi, path: Path, history_id: str, file_type: str, progress: bool = True) -> str:
    """Chunked, resumable (tus) upload with a progress bar; returns the new dataset's id."""
    store = UploadStore()
    uploader, key = resumable_uploader(gi, path, store)
    size = uploader.get_file_size()
    if uploader.offset:
        print(f"upload {path.name}: resuming at {uploader.offset / 2**20:.1f} of {size / 2**20:.1f} MiB "
              "(sent before)", file=sys.stderr)  # fmt: skip
    with progress_bar(total=size, initial=uploader.offset, unit="B", unit_scale=True, desc=f"upload {path.name}",
                      disable=not progress) as bar:  # fmt: skip
        if not uploader.url:  # a new upload (an empty file too: Galaxy needs its URL)
            uploader.set_url(uploader.create_url())
        while uploader.offset < size:
            before = uploader.offset
            uploader.upload_chunk()
            bar.update(uploader.offset - before)
    session_id = uploader.url.rsplit("/", 1)[-1]  # Galaxy's name for the upload: its URL's last part
    fetched = gi.tools.post_to_fetch(str(path), history_id, session_id, file_type=file_type,
                                     file_name=path.name)  # fmt: skip
    store.remove_item(key)
    return fetched["outputs"][0]["id"]


@dataclass
class RemoteJob:
    """A submitted run_jupyter_job job."""

    gi: object
    history_id: str
    job_id: str
    inputs: dict = field(default_factory=dict)

    def status(self) -> str:
        return self.gi.jobs.show_job(self.job_id)["state"]

    def stderr(self, tail_lines: int = 40) -> str:
        check_number("tail_lines", tail_lines, integer=True)
        if tail_lines == 0:
            return ""
        details = self.gi.jobs.show_job(self.job_id, full_details=True)
        text = (details.get("tool_stderr") or details.get("stderr") or "").rstrip()
        return "\n".join(text.splitlines()[-tail_lines:])

    def wait(self, timeout: float | None = None, progress: bool = True, poll_s: float = 2.0) -> RemoteJob:
        """Block until the job ends: returns self on success, raises RemoteJobFailed otherwise
        (RemoteJobPaused for a paused job), TimeoutError after timeout seconds."""
        check_number("timeout", timeout, optional=True)
        check_number("poll_s", poll_s, above=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        start = time.monotonic()
        done = max(JOB_STAGES.values())
        with progress_bar(total=done, bar_format="{desc} {bar} [{elapsed}]", disable=not progress) as bar:
            while True:
                state = self.status()
                bar.set_description_str(f"Galaxy job {self.job_id}: {state}")
                bar.update(JOB_STAGES.get(state, bar.n) - bar.n)
                if state in TERMINAL_OK:
                    return self
                if state in TERMINAL_FAILED:
                    raise RemoteJobFailed(self.job_id, state, self.stderr())
                if state == PAUSED:
                    details = self.gi.jobs.show_job(self.job_id, full_details=True)
                    raise RemoteJobPaused(self.job_id, (details.get("info") or "").strip())
                if deadline is not None and time.monotonic() > deadline:
                    waited = time.monotonic() - start
                    raise TimeoutError(f"Galaxy job {self.job_id} still '{state}' after {waited:.0f} s")
                time.sleep(poll_s)

    def outputs(self) -> dict[str, str]:
        """Output dataset ids by name: "arrays", "workdir", and each ONNX model by its variable name."""
        job = self.gi.jobs.show_job(self.job_id)
        found = {}
        for key, output in job.get("outputs", {}).items():
            found[output_name(key)] = output["id"]
        return found

    def download(self, dest: str | os.PathLike = ".") -> list[Path]:
        """Save every output into dest: <model>.onnx, outputs.h5, workdir.zip."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        saved = []
        for name, dataset_id in self.outputs().items():
            path = dest / output_file_name(name)
            self.gi.datasets.download_dataset(dataset_id, file_path=str(path), use_default_filename=False)
            saved.append(path)
        return saved

    def cancel(self) -> None:
        self.gi.jobs.cancel_job(self.job_id)

    def __repr__(self) -> str:
        return f"RemoteJob(job_id={self.job_id!r}, history_id={self.history_id!r})"


def submit_script_job(script_path, data_dict=None, server=None, key=None,
                      new_history_name="ML analysis (remote training)", tool_name="run_jupyter_job",
                      progress=True) -> RemoteJob:  # fmt: skip
    """Upload the script and its H5 data to a new history and start the job; returns at once."""
    script = check_script(script_path)
    data = check_data(data_dict)
    check_text("new_history_name", new_history_name, optional=True, empty=True)
    check_text("tool_name", tool_name)
    server, key = galaxy_target(server, key)
    gi = connect(server, key)
    history_id = gi.histories.create_history(name=new_history_name)["id"]
    script_type = "ipynb" if script.suffix == ".ipynb" else "txt"  # Galaxy has no Python datatype
    script_id = upload(gi, script, history_id, script_type, progress)
    data_ids = [upload(gi, path, history_id, "h5", progress) for _, path in data]
    for dataset_id in [script_id, *data_ids]:
        gi.datasets.wait_for_dataset(dataset_id, maxwait=3600, interval=DATASET_POLL_S)
    inputs = job_inputs(script_id, data_ids, [local for local, _ in data])
    run = gi.tools.run_tool(history_id, tool_name, inputs)
    return RemoteJob(gi, history_id, run["jobs"][0]["id"], inputs)


def run_script_job(script_path, data_dict=None, server=None, key=None,
                   new_history_name="ML analysis (remote training)", tool_name="run_jupyter_job",
                   wait=True, progress=True) -> RemoteJob:  # fmt: skip
    """The original call: submit, then wait for the job (raises RemoteJobFailed on failure)."""
    job = submit_script_job(script_path, data_dict, server, key, new_history_name, tool_name, progress)
    return job.wait(progress=progress) if wait else job
