"""gxnb.remote (run_script_job / submit_script_job) on the host: the argument checks that stop
a bad call before anything is uploaded, and the job handle's bookkeeping, against a fake
Galaxy. tests/e2e/test_remote_training.py runs the client against a real one."""

from __future__ import annotations

import math
import re
import time
from types import SimpleNamespace

import pytest
from gxnb import remote
from gxnb.remote import RemoteJob, RemoteJobError, RemoteJobFailed, RemoteJobPaused, run_script_job, submit_script_job


def h5(path, user_block: int = 0):
    """A file with HDF5's signature (what the client checks), optionally after a user block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * user_block + remote.HDF5_SIGNATURE + b"\0" * 64)
    return path


@pytest.fixture
def notebook_folder(tmp_path, monkeypatch):
    """A notebook's folder as the kernel's working directory: train.py, data/train.h5, table.csv."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "train.py").write_text("print('train')\n")
    h5(folder / "data" / "train.h5")
    h5(folder / "data" / "test.h5", user_block=512)
    (folder / "table.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(folder)
    return folder


class FakeGalaxy:
    """Records what the client asks of Galaxy; jobs go through the given states."""

    def __init__(self, states=("queued", "running", "ok"), stderr="line 1\nline 2\nline 3", info=""):
        self.calls = []
        self.info = info
        self.states = list(states)
        self.stderr_text = stderr
        self.job_outputs = {}
        self.histories = SimpleNamespace(create_history=self.create_history)
        self.datasets = SimpleNamespace(wait_for_dataset=self.record("wait_for_dataset"),
                                        download_dataset=self.download_dataset)  # fmt: skip
        self.tools = SimpleNamespace(run_tool=self.run_tool)
        self.jobs = SimpleNamespace(show_job=self.show_job, cancel_job=self.record("cancel_job"))

    def record(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    def create_history(self, name):
        self.calls.append(("create_history", name))
        return {"id": "h1"}

    def run_tool(self, history_id, tool_name, inputs):
        self.calls.append(("run_tool", history_id, tool_name, inputs))
        return {"jobs": [{"id": "j1"}]}

    def show_job(self, job_id, full_details=False):
        if full_details:
            return {"tool_stderr": self.stderr_text, "info": self.info}
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"state": state, "outputs": self.job_outputs}

    def download_dataset(self, dataset_id, file_path, use_default_filename):
        self.calls.append(("download", dataset_id, file_path))
        with open(file_path, "w") as f:
            f.write(dataset_id)


@pytest.fixture
def galaxy(monkeypatch):
    """A fake Galaxy behind connect(); uploads are recorded and get ids d1, d2, ..."""
    gi = FakeGalaxy()
    uploads = []

    def fake_upload(gi_, path, history_id, file_type, progress=True):
        uploads.append((path.name, file_type))
        return f"d{len(uploads)}"

    monkeypatch.setattr(remote, "connect", lambda server, key: gi)
    monkeypatch.setattr(remote, "upload", fake_upload)
    gi.uploads = uploads
    return gi


# ---------------------------------------------------------------- checks before any upload


def test_a_non_h5_file_is_refused_before_galaxy_is_contacted(notebook_folder, galaxy):
    with pytest.raises(RemoteJobError) as error:
        submit_script_job("train.py", data_dict=["data/train.h5", "table.csv"], server="http://x", key="k")
    assert str(error.value).startswith("data_dict: 'table.csv' is not an HDF5 file")
    assert galaxy.calls == [] and galaxy.uploads == []


@pytest.mark.parametrize(
    ("file_name", "bad"),
    [("my data.h5", "' '"), ("train,v2.h5", "','"), ("it's.h5", "\"'\""), ("$HOME.h5", "'$'"),
     ("données.h5", "'é'"), ("a;rm -rf.h5", "' ;'")],
)  # fmt: skip
def test_file_names_the_job_cannot_take_are_refused_before_upload(notebook_folder, galaxy, file_name, bad):
    h5(notebook_folder / "data" / file_name)
    with pytest.raises(RemoteJobError) as error:
        run_script_job("train.py", data_dict=[f"data/{file_name}"], server="http://x", key="k")
    message = str(error.value)
    assert message.startswith(f"data_dict: 'data/{file_name}' contains characters the job cannot take ({bad})")
    assert "rename the file" in message
    assert galaxy.calls == [] and galaxy.uploads == []


def test_an_absolute_path_is_refused_with_what_to_give_instead(notebook_folder, galaxy):
    absolute = str(notebook_folder / "data" / "train.h5")
    with pytest.raises(RemoteJobError) as error:
        submit_script_job("train.py", data_dict=[absolute], server="http://x", key="k")
    assert f"data_dict: '{absolute}' is an absolute path" in str(error.value)
    assert "relative to the notebook's folder" in str(error.value)
    assert galaxy.uploads == []


def test_a_path_leading_out_of_the_notebooks_folder_is_refused(notebook_folder, galaxy):
    h5(notebook_folder.parent / "shared.h5")
    with pytest.raises(RemoteJobError, match=r"data_dict: '../shared.h5' leads out of the notebook's folder"):
        submit_script_job("train.py", data_dict=["../shared.h5"], server="http://x", key="k")
    assert galaxy.uploads == []


@pytest.mark.parametrize(
    ("data_dict", "message"),
    [
        (["data/missing.h5"], "data_dict: 'data/missing.h5' does not exist"),
        (["data"], "data_dict: 'data' is a folder; expected an H5 file"),
        ([5], "data_dict: 5 is not a file path"),
        ("data/train.h5", "data_dict must be a list of H5 file paths"),
        (["data/train.h5", "other/train.h5"], "file names must differ, the job matches inputs by name: ['train.h5']"),
    ],
)
def test_bad_data_dicts_are_named(notebook_folder, galaxy, data_dict, message):
    h5(notebook_folder / "other" / "train.h5")
    with pytest.raises(RemoteJobError) as error:
        submit_script_job("train.py", data_dict=data_dict, server="http://x", key="k")
    assert message in str(error.value)
    assert galaxy.calls == []


@pytest.mark.parametrize(
    ("script", "message"),
    [("missing.py", "script_path 'missing.py' does not exist"),
     ("table.csv", "script_path 'table.csv': expected a .py script or an .ipynb notebook"),
     (None, "script_path None: expected the path of a .py script or an .ipynb notebook")],
)  # fmt: skip
def test_a_bad_script_is_named(notebook_folder, galaxy, script, message):
    with pytest.raises(RemoteJobError) as error:
        submit_script_job(script, server="http://x", key="k")
    assert message in str(error.value)
    assert galaxy.calls == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tool_name": ""}, "tool_name must be a non-empty string, not ''"),
     ({"new_history_name": 3}, "new_history_name must be a string, not 3"),
     ({"server": 8080}, "server must be a string, not 8080")],
)  # fmt: skip
def test_bad_call_arguments_are_named_before_anything_is_sent(notebook_folder, galaxy, kwargs, message):
    kwargs = {"server": "http://x", "key": "k", **kwargs}
    with pytest.raises(RemoteJobError) as error:
        submit_script_job("train.py", data_dict=["data/train.h5"], **kwargs)
    assert message in str(error.value)
    assert galaxy.calls == [] and galaxy.uploads == []


def test_without_a_galaxy_the_call_says_what_to_pass(monkeypatch):
    monkeypatch.delenv("GALAXY_URL", raising=False)
    monkeypatch.delenv("API_KEY", raising=False)
    with pytest.raises(RemoteJobError, match="no Galaxy to send the job to: pass server= and key="):
        remote.galaxy_target(None, None)
    monkeypatch.setenv("GALAXY_URL", "http://galaxy:8080")
    monkeypatch.setenv("API_KEY", "secret")
    assert remote.galaxy_target(None, "") == ("http://galaxy:8080", "secret")
    assert remote.galaxy_target("http://other", "k") == ("http://other", "k")


def test_hdf5_is_recognised_by_its_signature_after_a_user_block(tmp_path):
    assert remote.is_hdf5(h5(tmp_path / "plain.h5"))
    assert remote.is_hdf5(h5(tmp_path / "block.h5", user_block=1024))
    (tmp_path / "empty.h5").write_bytes(b"")
    assert not remote.is_hdf5(tmp_path / "empty.h5")
    (tmp_path / "shifted.h5").write_bytes(b"\0" * 100 + remote.HDF5_SIGNATURE)  # not at a user-block boundary
    assert not remote.is_hdf5(tmp_path / "shifted.h5")


# ---------------------------------------------------------------- a valid call


def test_a_valid_call_uploads_the_script_and_data_and_passes_the_paths_the_code_opens(notebook_folder, galaxy):
    data = (p for p in ["data/train.h5", "./data/test.h5"])  # any iterable, once
    job = submit_script_job("train.py", data_dict=data, server="http://x", key="k", new_history_name="run 1")
    assert isinstance(job, RemoteJob) and job.job_id == "j1" and job.history_id == "h1"
    assert galaxy.uploads == [("train.py", "txt"), ("train.h5", "h5"), ("test.h5", "h5")]
    run = next(call for call in galaxy.calls if call[0] == "run_tool")
    assert run[1:3] == ("h1", "run_jupyter_job")
    assert run[3] == {
        "select_file": {"src": "hda", "id": "d1"},
        "ml_h5_datasets": {"batch": False, "values": [{"src": "hda", "id": "d2"}, {"src": "hda", "id": "d3"}]},
        "ml_h5_dataset_paths": "data/train.h5,./data/test.h5",
    }
    assert ("create_history", "run 1") in galaxy.calls


def test_a_notebook_is_uploaded_as_ipynb_and_no_data_means_no_paths(notebook_folder, galaxy):
    (notebook_folder / "train.ipynb").write_text("{}")
    job = run_script_job("train.ipynb", server="http://x", key="k", wait=False)
    assert galaxy.uploads == [("train.ipynb", "ipynb")]
    assert job.inputs == {"select_file": {"src": "hda", "id": "d1"}}


def test_run_script_job_waits_and_raises_when_the_job_fails(notebook_folder, galaxy):
    pytest.importorskip("tqdm")
    galaxy.states = ["queued", "error"]
    galaxy.stderr_text = "Traceback (most recent call last):\nRuntimeError: diverged at epoch 3"
    with pytest.raises(RemoteJobFailed) as error:
        run_script_job("train.py", server="http://x", key="k", progress=False)
    assert error.value.state == "error" and "RuntimeError: diverged at epoch 3" in error.value.stderr


# ---------------------------------------------------------------- the job handle


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"poll_s": 0}, "poll_s must be > 0, not 0"),
     ({"poll_s": "2"}, "poll_s must be a number, not '2'"),
     ({"timeout": -1}, "timeout must be >= 0, not -1"),
     ({"timeout": math.nan}, "timeout must be a number, not nan"),
     ({"timeout": True}, "timeout must be a number, not True")],
)  # fmt: skip
def test_wait_refuses_bad_numbers_before_asking_galaxy(kwargs, message):
    gi = FakeGalaxy()
    gi.jobs.show_job = lambda *a, **k: pytest.fail("Galaxy was asked")
    with pytest.raises(RemoteJobError) as error:
        RemoteJob(gi, "h1", "j1").wait(progress=False, **kwargs)
    assert message in str(error.value)


def test_wait_returns_the_job_once_it_is_ok():
    pytest.importorskip("tqdm")
    job = RemoteJob(FakeGalaxy(states=["new", "queued", "running", "ok"]), "h1", "j1")
    assert job.wait(progress=False, poll_s=0.001) is job


def last_wait_bar(stderr: str) -> tuple[str, str]:
    """The state and the bar of the wait's last line on the console."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("Galaxy job j1: ")]
    state, bar = re.fullmatch(r"Galaxy job j1: (\w+) (.*) \[\d\d:\d\d\]", lines[-1]).groups()
    return state, bar


def test_the_wait_bar_moves_through_the_stages_and_is_full_when_the_job_is_done(capsys):
    pytest.importorskip("tqdm")
    RemoteJob(FakeGalaxy(states=["new", "queued", "running", "ok"]), "h1", "j1").wait(poll_s=0.001)
    state, bar = last_wait_bar(capsys.readouterr().err)
    assert state == "ok" and set(bar) == {"█"}, bar


def test_a_failed_job_leaves_its_bar_where_it_stopped(capsys):
    pytest.importorskip("tqdm")
    with pytest.raises(RemoteJobFailed):
        RemoteJob(FakeGalaxy(states=["queued", "running", "error"]), "h1", "j1").wait(poll_s=0.001)
    state, bar = last_wait_bar(capsys.readouterr().err)
    assert state == "error" and bar.startswith("█") and bar.endswith(" "), bar  # two stages of three


def test_wait_reports_a_paused_job_at_once_with_what_to_do():
    pytest.importorskip("tqdm")
    gi = FakeGalaxy(states=["queued", "paused"], info="Execution of this dataset's job is paused because its input")
    started = time.monotonic()
    with pytest.raises(RemoteJobPaused) as error:
        RemoteJob(gi, "h1", "j1").wait(progress=False, poll_s=0.001, timeout=10)  # without the check: TimeoutError
    assert time.monotonic() - started < 5
    assert isinstance(error.value, RemoteJobFailed) and error.value.state == "paused"
    message = str(error.value)
    assert message.startswith("Galaxy job j1 is paused (Execution of this dataset's job is paused"), message
    assert "Resume paused jobs" in message and "storage quota" in message


def test_wait_gives_up_after_its_timeout_naming_the_state():
    pytest.importorskip("tqdm")
    gi = FakeGalaxy(states=["queued"])
    with pytest.raises(TimeoutError, match=r"Galaxy job j1 still 'queued' after \d+ s"):
        RemoteJob(gi, "h1", "j1").wait(progress=False, timeout=0.05, poll_s=0.01)


def test_stderr_gives_the_last_lines():
    job = RemoteJob(FakeGalaxy(stderr="a\nb\nc\n"), "h1", "j1")
    assert job.stderr(2) == "b\nc"
    assert job.stderr(0) == ""
    with pytest.raises(RemoteJobError, match="tail_lines must be >= 0, not -1"):
        job.stderr(-1)
    with pytest.raises(RemoteJobError, match="tail_lines must be a whole number, not 2.5"):
        job.stderr(2.5)


def test_outputs_are_named_by_variable_even_with_a_trailing_underscore():
    gi = FakeGalaxy()
    gi.job_outputs = {
        "arrays": {"id": "a1"}, "workdir": {"id": "w1"},
        "__new_primary_file_onnx_models|net__": {"id": "o1"},
        "__new_primary_file_onnx_models|model___": {"id": "o2"},
    }  # fmt: skip
    assert RemoteJob(gi, "h1", "j1").outputs() == {"arrays": "a1", "workdir": "w1", "net": "o1", "model_": "o2"}


def test_download_saves_each_output_under_its_file_name(tmp_path):
    gi = FakeGalaxy()
    gi.job_outputs = {"arrays": {"id": "a1"}, "workdir": {"id": "w1"},
                      "__new_primary_file_onnx_models|net__": {"id": "o1"}}  # fmt: skip
    saved = RemoteJob(gi, "h1", "j1").download(tmp_path / "results")
    assert sorted(p.name for p in saved) == ["net.onnx", "outputs.h5", "workdir.zip"]
    assert (tmp_path / "results" / "net.onnx").read_text() == "o1"


def test_download_refuses_an_output_name_that_is_not_a_file_name(tmp_path):
    gi = FakeGalaxy()
    gi.job_outputs = {"__new_primary_file_onnx_models|../../evil__": {"id": "o1"}}
    with pytest.raises(RemoteJobError, match=r"the job has an output named '../../evil', which is not a file name"):
        RemoteJob(gi, "h1", "j1").download(tmp_path / "results")
    assert not list(tmp_path.rglob("*.onnx"))


def test_the_public_names_stay():
    assert remote.__all__ == ["RemoteJob", "RemoteJobError", "RemoteJobFailed", "RemoteJobPaused", "run_script_job",
                              "submit_script_job"]  # fmt: skip
    assert issubclass(RemoteJobError, ValueError) and issubclass(RemoteJobFailed, RuntimeError)
