"""gxnb.runner's pure parts on the host, without the notebook image: input names and local
paths (linked inside the working folder only), the choice of what is exported after the
training, and the command line's input errors. The image tests (tests/image/test_runner.py)
cover a whole job with TensorFlow, scikit-learn and IPython."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import zipfile

import pytest
from gxnb import runner
from gxnb.runner import RunnerError


@pytest.fixture
def job(tmp_path):
    """A job folder: one H5 input (its content does not matter here), a script, a working folder."""
    (tmp_path / "inputs").mkdir()
    train = tmp_path / "inputs" / "dataset_1.dat"
    train.write_bytes(b"train")
    (tmp_path / "train.py").write_text("print('train')\n")
    return types.SimpleNamespace(root=tmp_path, train=train, workdir=tmp_path / "work", out=tmp_path / "out")


def entries_outside(job) -> set[str]:
    """Everything in the job folder that is not the working folder's content."""
    found = set()
    for path in job.root.rglob("*"):
        if job.workdir not in path.parents:
            found.add(str(path.relative_to(job.root)))
    return found


# ---------------------------------------------------------------- --data


def test_data_entries_map_names_to_resolved_files(job):
    assert runner.parse_data([f"train.h5={job.train}"]) == {"train.h5": job.train.resolve()}


def test_a_data_entry_without_a_file_names_the_missing_path(job):
    with pytest.raises(RunnerError, match=r"--data 'train.h5': file '/nowhere/x.dat' does not exist"):
        runner.parse_data(["train.h5=/nowhere/x.dat"])
    with pytest.raises(RunnerError, match=r"--data 'train.h5': expected NAME=PATH"):
        runner.parse_data(["train.h5"])


def test_a_dataset_name_with_an_equals_sign_still_finds_its_file(job):
    assert runner.parse_data([f"a=b.h5={job.train}"]) == {"a=b.h5": job.train.resolve()}


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("../train.h5", "input dataset name '../train.h5' contains '..'"),
        ("data/../../train.h5", "input dataset name 'data/../../train.h5' contains '..'"),
        ("/etc/train.h5", "input dataset name '/etc/train.h5' is an absolute path"),
        ("..", "input dataset name '..' contains '..'"),
        (".", "input dataset name '.' is not a file name"),
    ],
)
def test_dataset_names_leading_out_of_the_working_folder_are_refused(job, name, complaint):
    with pytest.raises(RunnerError) as error:
        runner.parse_data([f"{name}={job.train}"])
    assert complaint in str(error.value)


def test_two_inputs_with_the_same_file_name_are_refused_by_name(job):
    other = job.root / "inputs" / "dataset_2.dat"
    other.write_bytes(b"other")
    with pytest.raises(RunnerError) as error:
        runner.parse_data([f"train.h5={job.train}", f"old/train.h5={other}"])
    assert "'train.h5' and 'old/train.h5' have the same file name 'train.h5'" in str(error.value)


# ---------------------------------------------------------------- linking


def test_without_local_paths_each_input_is_linked_under_its_file_name(job):
    job.workdir.mkdir()
    links = runner.link_inputs({"train.h5": job.train}, [], job.workdir)
    assert links == {"train.h5": "train.h5"}
    link = job.workdir / "train.h5"
    assert link.is_symlink() and link.resolve() == job.train.resolve()


def test_local_paths_are_linked_by_file_name_or_stem(job):
    job.workdir.mkdir()
    test = job.root / "inputs" / "dataset_2.dat"
    test.write_bytes(b"test")
    data = {"train.h5": job.train, "test": test}
    links = runner.link_inputs(data, runner.split_local_paths(["data/train.h5, ./more/test.h5"]), job.workdir)
    assert links == {"data/train.h5": "train.h5", "./more/test.h5": "test"}
    assert (job.workdir / "data" / "train.h5").read_bytes() == b"train"
    assert (job.workdir / "more" / "test.h5").read_bytes() == b"test"


def test_a_link_replaces_what_the_working_folder_had_at_that_path(job):
    (job.workdir / "data").mkdir(parents=True)
    (job.workdir / "data" / "train.h5").write_bytes(b"stale")
    runner.link_inputs({"train.h5": job.train}, ["data/train.h5"], job.workdir)
    assert (job.workdir / "data" / "train.h5").read_bytes() == b"train"


def test_a_local_path_without_a_matching_input_is_named(job):
    with pytest.raises(RunnerError) as error:
        runner.link_inputs({"train.h5": job.train}, ["data/validation.h5"], job.workdir)
    assert str(error.value) == "local path 'data/validation.h5' matches no input dataset by name; inputs: ['train.h5']"


@pytest.mark.parametrize(
    ("local", "complaint"),
    [
        ("../train.h5", "local path '../train.h5' contains '..'"),
        ("data/../../train.h5", "local path 'data/../../train.h5' contains '..'"),
        ("../../../../../../tmp/train.h5", "local path '../../../../../../tmp/train.h5' contains '..'"),
    ],
)
def test_a_local_path_leading_up_is_refused_and_nothing_is_linked(job, local, complaint):
    job.workdir.mkdir()
    before = entries_outside(job)
    with pytest.raises(RunnerError) as error:
        runner.link_inputs({"train.h5": job.train}, ["data/train.h5", local], job.workdir)
    assert complaint in str(error.value)
    assert entries_outside(job) == before
    assert list(job.workdir.iterdir()) == []  # checked before the first link


def test_an_absolute_local_path_is_refused_and_the_file_there_is_kept(job):
    job.workdir.mkdir()
    elsewhere = job.root / "home" / "train.h5"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"the user's own file")
    with pytest.raises(RunnerError) as error:
        runner.link_inputs({"train.h5": job.train}, [str(elsewhere)], job.workdir)
    assert f"local path '{elsewhere}' is absolute" in str(error.value)
    assert not elsewhere.is_symlink() and elsewhere.read_bytes() == b"the user's own file"


def test_a_linked_folder_inside_the_working_folder_does_not_lead_out(job):
    outside = job.root / "outside"
    outside.mkdir()
    job.workdir.mkdir()
    (job.workdir / "data").symlink_to(outside)
    with pytest.raises(RunnerError, match="'data/train.h5' would lead out of the working folder"):
        runner.link_inputs({"train.h5": job.train}, ["data/train.h5"], job.workdir)
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- the command line


def run_main(job, *args: str) -> int:
    return runner.main(["--script", str(job.root / "train.py"), "--outdir", str(job.out),
                        "--workdir", str(job.workdir), *args])  # fmt: skip


@pytest.fixture
def quiet_environment(monkeypatch):
    """main() sets these for the job; the test process gets them back afterwards."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(os.getcwd())  # main() changes into the working folder


def test_the_command_line_stops_with_status_2_on_a_local_path_leading_out(job, capsys, quiet_environment):
    status = run_main(job, "--data", f"train.h5={job.train}", "--local-path", "data/train.h5,../../train.h5")
    assert status == 2
    assert "run_jupyter_job: error: local path '../../train.h5' contains '..'" in capsys.readouterr().err
    assert not (job.root / "train.h5").exists() and not (job.root.parent / "train.h5").exists()


def test_the_command_line_names_a_missing_script(job, capsys, quiet_environment):
    status = runner.main(["--script", str(job.root / "missing.py"), "--outdir", str(job.out)])
    assert status == 2
    assert f"--script '{job.root / 'missing.py'}' does not exist" in capsys.readouterr().err


def test_after_the_code_ran_models_arrays_and_the_working_folder_come_back(job, capsys, monkeypatch,
                                                                           quiet_environment):  # fmt: skip
    """The whole of main() with the code's run replaced: its namespace is what gets exported."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("h5py")

    class Net:
        pass

    def fake_run(cells, namespace_file):
        assert cells == ["print('train')\n"]
        with open("data/train.h5", "rb") as f:  # the input, where the code opens it
            assert f.read() == b"train"
        with open("notes.txt", "w") as f:
            f.write("written by the code")
        return {"net": Net(), "X": np.ones((3, 2)), "labels": np.array(["α", "b"]), "_hidden": np.ones(1)}

    def fake_export(model, path):
        path.write_bytes(b"onnx")

    monkeypatch.setattr(runner, "run_code", fake_run)
    monkeypatch.setattr(runner, "model_kind", lambda value: "torch" if isinstance(value, Net) else None)
    monkeypatch.setitem(runner.EXPORTERS, "torch", fake_export)
    status = run_main(job, "--data", f"train.h5={job.train}", "--local-path", "data/train.h5")
    assert status == 0, capsys.readouterr().err
    assert sorted(p.name for p in job.out.iterdir()) == ["net.onnx", "outputs.h5", "workdir.zip"]
    import h5py

    with h5py.File(job.out / "outputs.h5") as h5:
        assert sorted(h5) == ["X", "labels"]
        assert [b.decode() for b in h5["labels"][:]] == ["α", "b"]
    with zipfile.ZipFile(job.out / "workdir.zip") as zf:
        assert zf.namelist() == ["notes.txt"]  # the input (a link) stays out


def test_importing_the_runner_changes_nothing_and_imports_no_heavy_library(tmp_path):
    code = (
        "import os, sys, json\nimport gxnb.runner, gxnb.remote\n"
        "print(json.dumps({'env': [k for k in ('MPLBACKEND', 'TF_CPP_MIN_LOG_LEVEL') if k in os.environ],"
        " 'modules': sorted({'numpy', 'h5py', 'IPython', 'bioblend', 'tqdm', 'requests'} & set(sys.modules))}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=60, check=True)  # fmt: skip
    assert json.loads(out.stdout) == {"env": [], "modules": []}


def test_the_environment_gets_a_writable_home_for_an_arbitrary_uid(tmp_path):
    environ = {"HOME": str(tmp_path / "not-there")}
    runner.prepare_environment(environ)
    try:
        assert environ["MPLBACKEND"] == "Agg" and environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
        assert environ["HOME"] != str(tmp_path / "not-there") and os.access(environ["HOME"], os.W_OK)
    finally:
        os.rmdir(environ["HOME"])
    kept = {"HOME": str(tmp_path), "MPLBACKEND": "pdf"}
    runner.prepare_environment(kept)
    assert kept["HOME"] == str(tmp_path) and kept["MPLBACKEND"] == "pdf"


def test_a_notebooks_code_cells_run_in_order(tmp_path):
    notebook = tmp_path / "train.ipynb"
    notebook.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": "# title"},
        {"cell_type": "code", "source": ["x = 1\n", "y = 2\n"]},
        {"cell_type": "code", "source": "%matplotlib inline"},
    ]}))  # fmt: skip
    assert runner.load_code(notebook) == ["x = 1\ny = 2\n", "%matplotlib inline"]
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(RunnerError, match="script 'broken.ipynb' looks like a notebook but is not valid JSON"):
        runner.load_code(broken)


@pytest.mark.parametrize(
    ("code", "status"),
    [(None, 0), (0, 0), (3, 3), (255, 255), (256, 1), (-1, 1), (True, 1), ("diverged", 1), (2.0, 1)],
)  # fmt: skip
def test_the_jobs_exit_status_follows_sys_exit_and_never_wraps_to_success(code, status):
    """As Python gives sys.exit(code), except that statuses outside 0-255 (256 would read as 0) are 1."""
    assert runner.exit_status(code) == status


# ---------------------------------------------------------------- what is exported


class FakeModel:
    def __init__(self, kind):
        self.kind = kind


def kind_of(value):
    if isinstance(value, FakeModel):
        if value.kind == "broken":
            raise RuntimeError("cannot tell")
        return value.kind
    return None


def test_the_codes_trained_models_are_chosen_for_onnx(capsys):
    namespace = {
        "net": FakeModel("keras"), "forest": FakeModel("sklearn"), "mlp": FakeModel("torch"),
        "untrained": FakeModel(None), "_private": FakeModel("keras"), "Out": {1: FakeModel("keras")},
        "get_ipython": FakeModel("keras"), "not an identifier": FakeModel("keras"), "odd": FakeModel("broken"),
        "data": [1, 2, 3],
    }  # fmt: skip
    chosen = runner.choose_models(namespace, kind_of)
    assert [(name, kind) for name, kind, _ in chosen] == [("net", "keras"), ("forest", "sklearn"), ("mlp", "torch")]
    assert "model 'odd' could not be exported to ONNX: RuntimeError: cannot tell" in capsys.readouterr().err


def test_a_model_that_fails_to_export_does_not_lose_the_others(tmp_path, monkeypatch, capsys):
    def export(model, path):
        if model.kind == "sklearn":
            raise ValueError("unsupported estimator")
        path.write_bytes(b"onnx")

    for kind in ("keras", "sklearn", "torch"):
        monkeypatch.setitem(runner.EXPORTERS, kind, export)
    namespace = {"net": FakeModel("keras"), "forest": FakeModel("sklearn"), "mlp": FakeModel("torch")}
    exported = runner.export_models(namespace, tmp_path, kind_of)
    assert exported == ["net (keras) -> net.onnx", "mlp (torch) -> mlp.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx", "net.onnx"]
    assert "model 'forest' could not be exported to ONNX: ValueError: unsupported estimator" in capsys.readouterr().err


def test_model_kind_looks_only_at_libraries_the_code_imported(monkeypatch):
    torch = types.ModuleType("torch")
    torch.nn = types.SimpleNamespace(Module=type("Module", (), {}))
    module = torch.nn.Module()
    for name in ("keras", "sklearn", "torch"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert runner.model_kind(module) is None  # torch not imported: not even looked for
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert runner.model_kind(module) == "torch"
    assert runner.model_kind(torch.nn.Module) is None and runner.model_kind([1]) is None


def test_arrays_are_chosen_for_outputs_h5():
    np = pytest.importorskip("numpy")
    namespace = {"X": np.zeros((2, 2)), "names": np.array(["a"]), "boxes": np.array([{}], dtype=object),
                 "_tmp": np.zeros(1), "values": [1.0, 2.0], "n": 3}  # fmt: skip
    chosen = [(name, kind) for name, kind, _ in runner.choose_arrays(namespace)]
    assert chosen == [("X", "array"), ("names", "array"), ("boxes", "array")]


def test_arrays_hdf5_cannot_store_as_they_are_are_converted_or_skipped():
    np = pytest.importorskip("numpy")
    numbers = np.arange(3, dtype="float32")
    assert runner.h5_ready(numbers)[0] is numbers and runner.h5_ready(numbers)[1] == {}
    text, attrs = runner.h5_ready(np.array(["α", "bc"]))
    assert text.tolist() == ["α".encode(), b"bc"] and attrs == {"numpy_dtype": "<U2"}
    dates, attrs = runner.h5_ready(np.array(["2024-01-02", "NaT"], dtype="datetime64[D]"))
    assert dates.tolist() == [b"2024-01-02", b"NaT"] and attrs == {"numpy_dtype": "datetime64[D]"}
    spans, attrs = runner.h5_ready(np.array([90, 30], dtype="timedelta64[s]"))
    assert spans.dtype == np.int64 and spans.tolist() == [90, 30] and attrs == {"numpy_dtype": "timedelta64[s]"}
    assert runner.h5_ready(np.array([{"a": 1}], dtype=object)) is None


def test_outputs_h5_keeps_every_array_it_can_and_names_those_it_cannot(tmp_path, capsys):
    np = pytest.importorskip("numpy")
    h5py = pytest.importorskip("h5py")
    namespace = {
        "X": np.arange(6, dtype="float32").reshape(2, 3),
        "loss": np.array(0.25),  # 0-d
        "empty": np.zeros((0, 3)),
        "labels": np.array(["chat", "café"]),
        "when": np.array(["2024-05-01T12:00"], dtype="datetime64[m]"),
        "boxes": np.array([{"a": 1}, None], dtype=object),
    }
    saved = runner.save_arrays(namespace, tmp_path / "outputs.h5")
    assert saved == ["X", "loss", "empty", "labels", "when"]
    with h5py.File(tmp_path / "outputs.h5") as h5:
        assert sorted(h5) == sorted(saved)
        assert h5["X"][:].tolist() == [[0, 1, 2], [3, 4, 5]] and h5["X"].compression == "gzip"
        assert h5["loss"][()] == 0.25 and h5["empty"].shape == (0, 3)
        assert [v.decode() for v in h5["labels"][:]] == ["chat", "café"]
        assert h5["when"][0] == b"2024-05-01T12:00" and h5["when"].attrs["numpy_dtype"] == "datetime64[m]"
    assert "array 'boxes' not saved to outputs.h5" in capsys.readouterr().err


def test_dataframes_go_to_outputs_h5_column_by_column(tmp_path):
    pd = pytest.importorskip("pandas")
    h5py = pytest.importorskip("h5py")
    frame = pd.DataFrame({"feature": ["f0", "é"], "mean": [0.5, 1.5], "a/b": [1, 2],
                          "day": pd.to_datetime(["2024-01-01", "2024-01-02"])})  # fmt: skip
    assert runner.save_arrays({"summary": frame}, tmp_path / "outputs.h5") == ["summary"]
    with h5py.File(tmp_path / "outputs.h5") as h5:
        group = h5["summary"]
        assert list(group.attrs["columns"]) == ["feature", "mean", "a/b", "day"]
        assert sorted(group) == ["0000_feature", "0001_mean", "0002_a_b", "0003_day"]
        assert [v.decode() for v in group["0000_feature"][:]] == ["f0", "é"]


def test_the_working_folder_zip_leaves_the_inputs_out(tmp_path, job):
    folder = tmp_path / "work"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.h5").symlink_to(job.train)
    (folder / "model.keras").write_bytes(b"model")
    assert runner.zip_folder(folder, tmp_path / "workdir.zip") == 1
    with zipfile.ZipFile(tmp_path / "workdir.zip") as zf:
        assert zf.namelist() == ["model.keras"]
