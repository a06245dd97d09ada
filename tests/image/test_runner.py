"""The batch-job runner (gxnb.runner, what run_jupyter_job runs) inside the notebook image."""

from __future__ import annotations

import json
import zipfile

import pytest

from tests.image.conftest import run_in_image

pytestmark = pytest.mark.docker

CELLS = [
    # Magics and shell lines as a notebook has them; the H5 file opened by the user's local path.
    "%matplotlib inline\n!echo shell line ran\nimport h5py, numpy as np\n"
    "with h5py.File('data/train.h5') as f:\n    X = f['X'][:]\n    y = f['y'][:]\n",
    "import keras\nkeras.utils.set_random_seed(1)\n"
    "net = keras.Sequential([keras.Input(shape=(7,)), keras.layers.Dense(8, activation='relu'),\n"
    "                        keras.layers.Dense(1)])\n"
    "net.compile(optimizer='adam', loss='mse')\nnet.fit(X, y, epochs=2, verbose=0)\n"
    "np.save('net_pred.npy', net.predict(X, verbose=0))\n",
    "from sklearn.ensemble import RandomForestRegressor\nfrom sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "forest = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=10, random_state=1)).fit(X, y)\n"
    "np.save('forest_pred.npy', forest.predict(X))\n"
    "import pandas as pd\nsummary = pd.DataFrame({'feature': [f'f{i}' for i in range(7)], 'mean': X.mean(axis=0)})\n",
]


def notebook(cells: list[str]) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                       "cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": [],
                                  "execution_count": None} for c in cells]})  # fmt: skip


@pytest.fixture
def job(tmp_path):
    """A job folder writable by the arbitrary UID the job runs as, with a 7-feature H5 input."""
    tmp_path.chmod(0o777)
    make_h5 = (
        "import h5py, numpy as np\nrng = np.random.default_rng(0)\nX = rng.normal(size=(200, 7)).astype('float32')\n"
        "with h5py.File('/job/train.h5', 'w') as f:\n"
        "    f['X'] = X\n    f['y'] = (X @ rng.normal(size=7)).astype('float32')\n"
    )
    (tmp_path / "make.py").write_text(make_h5)
    return tmp_path


def run_job(image, job, script_name: str, *runner_args: str):
    return run_in_image(
        image,
        f"cd /job && python make.py && python -m gxnb.runner --script /job/{script_name} --outdir /job/out "
        f"--workdir /job/work --data train.h5=/job/train.h5 " + " ".join(runner_args),
        "-v", f"{job}:/job", "-e", "TF_CPP_MIN_LOG_LEVEL=2",
    )  # fmt: skip


def test_models_come_back_as_onnx_with_the_originals_predictions(image, job):
    (job / "train.ipynb").write_text(notebook(CELLS))
    out = run_job(image, job, "train.ipynb", "--local-path", "data/train.h5")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "shell line ran" in out.stdout
    produced = sorted(p.name for p in (job / "out").iterdir())
    assert produced == ["forest.onnx", "net.onnx", "outputs.h5", "workdir.zip"], out.stderr
    with zipfile.ZipFile(job / "out" / "workdir.zip") as zf:
        assert sorted(zf.namelist()) == ["forest_pred.npy", "net_pred.npy"]  # inputs stay out
    check = (
        "import h5py, numpy as np, onnxruntime as ort, json\n"
        "X = h5py.File('/job/train.h5')['X'][:]\nres = {}\n"
        "for name in ('net', 'forest'):\n"
        "    s = ort.InferenceSession(f'/job/out/{name}.onnx', providers=['CPUExecutionProvider'])\n"
        "    got = s.run(None, {s.get_inputs()[0].name: X})[0].ravel()\n"
        "    res[name] = float(np.abs(got - np.load(f'/job/work/{name}_pred.npy').ravel()).max())\n"
        "h5 = h5py.File('/job/out/outputs.h5')\nres['h5'] = sorted(h5)\n"
        "res['columns'] = list(h5['summary'].attrs['columns'])\n"
        "print(json.dumps(res))\n"
    )
    (job / "check.py").write_text(check)
    result = run_in_image(image, "python /job/check.py", "-v", f"{job}:/job")
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["net"] < 1e-4 and found["forest"] < 1e-4, found
    assert found["h5"] == ["X", "summary", "y"] and found["columns"] == ["feature", "mean"]


def test_a_script_that_raises_fails_the_job_with_its_traceback(image, job):
    (job / "broken.py").write_text("def train(rate):\n    raise ValueError(f'bad learning rate {rate}')\ntrain(-1)\n")
    out = run_job(image, job, "broken.py")
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ValueError: bad learning rate -1" in out.stderr
    assert not (job / "out" / "workdir.zip").exists()


def test_sys_exit_0_ends_the_script_early_and_its_work_still_returns(image, job):
    (job / "early.ipynb").write_text(notebook([
        "import numpy as np\nscores = np.arange(3)\nopen('made.txt', 'w').write('kept')\n",
        "import sys\nsys.exit(0)\nopen('after.txt', 'w').write('never')\n",
        "open('later_cell.txt', 'w').write('never')\n",
    ]))  # fmt: skip
    out = run_job(image, job, "early.ipynb")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "cell 2 of the script ended it with sys.exit(0): later cells skipped" in out.stderr
    with zipfile.ZipFile(job / "out" / "workdir.zip") as zf:
        assert sorted(zf.namelist()) == ["made.txt"]
    assert (job / "out" / "outputs.h5").is_file()


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [("import sys\nsys.exit(3)\n", 3, "cell 1 of the script ended it with sys.exit(3)"),
     ("exit(4)\n", 4, "cell 1 of the script ended it with sys.exit(4)"),
     ("!echo listing && false\nprint('after the failed line')\n", 1,
      "cell 1 of the script: shell command 'echo listing && false' exited with status 1")],
)  # fmt: skip
def test_the_scripts_exit_status_and_a_failing_shell_line_fail_the_job(image, job, code, status, message):
    (job / "fails.py").write_text(code)
    out = run_job(image, job, "fails.py")
    assert out.returncode == status, out.stderr[-3000:]
    assert message in out.stderr, out.stderr[-3000:]
    assert "after the failed line" not in out.stdout and "Traceback" not in out.stderr


def test_a_shell_line_allowed_to_fail_does_not_fail_the_job(image, job):
    (job / "tolerant.py").write_text("!false || true\nprint('went on')\n")
    out = run_job(image, job, "tolerant.py")
    assert out.returncode == 0 and "went on" in out.stdout, out.stderr[-3000:]


def test_a_training_under_an_arbitrary_uid_has_a_user_name(image, job):
    # as Galaxy starts it: a UID the image does not know (torch.compile's cache asks getpass)
    (job / "whoami.py").write_text("import getpass\nprint('user', getpass.getuser())\n!whoami\n")
    out = run_job(image, job, "whoami.py")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "user jovyan" in lines and "jovyan" in lines, out.stdout[-1000:]  # getpass, then whoami


def test_a_local_path_without_a_matching_input_is_named(image, job):
    (job / "train.py").write_text("print('never runs')\n")
    out = run_job(image, job, "train.py", "--local-path", "data/validation.h5")
    assert out.returncode == 2
    assert "local path 'data/validation.h5' matches no input dataset by name; inputs: ['train.h5']" in out.stderr
    assert "never runs" not in out.stdout


def test_every_kernel_has_the_client_and_bad_data_fails_before_any_upload(image, tmp_path):
    """run_script_job needs no import; a non-H5 file is refused before Galaxy is contacted."""
    tmp_path.chmod(0o777)
    (tmp_path / "train.py").write_text("print('train')\n")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    cell = (
        "try:\n    run_script_job('train.py', data_dict=['table.csv'], server='http://192.0.2.1:9', key='k')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    (tmp_path / "client.ipynb").write_text(notebook([cell]))
    script = (
        "cd /job && python -c \"import nbformat; from nbclient import NotebookClient; "
        "nb = nbformat.read('client.ipynb', as_version=4); NotebookClient(nb, timeout=60).execute(); "
        "print(nb.cells[0].outputs[0]['text'])\""
    )
    out = run_in_image(image, script, "-v", f"{tmp_path}:/job", timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RemoteJobError data_dict: 'table.csv' is not an HDF5 file" in out.stdout, out.stdout
