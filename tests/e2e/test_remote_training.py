"""Remote training driven from inside a notebook session: run_script_job sends a script and
its H5 data to Galaxy (run_jupyter_job), and the models come back as ONNX."""

from __future__ import annotations

import re

import pytest
import requests
from bioblend.galaxy import GalaxyInstance

from tests.conftest import REPO
from tests.support import galaxy_it

pytestmark = pytest.mark.e2e

# Written into the session by the kernel: 7 input features, a Keras and a scikit-learn model.
PREPARE = r'''
import json, os, h5py, numpy as np, nbformat
os.makedirs("data", exist_ok=True)
rng = np.random.default_rng(3)
X = rng.normal(size=(300, 7)).astype("float32")
with h5py.File("data/train.h5", "w") as f:
    f["X"] = X
    f["y"] = (X @ rng.normal(size=7) + 0.1 * rng.normal(size=300)).astype("float32")
cells = [
    "%matplotlib inline\nimport h5py, numpy as np\n"
    "with h5py.File('data/train.h5') as f:\n    X, y = f['X'][:], f['y'][:]",
    "import keras\nkeras.utils.set_random_seed(3)\n"
    "net = keras.Sequential([keras.Input(shape=(7,)), keras.layers.Dense(16, activation='relu'),\n"
    "                        keras.layers.Dense(1)])\n"
    "net.compile(optimizer='adam', loss='mse')\nnet.fit(X, y, epochs=3, verbose=0)\n"
    "np.save('net_pred.npy', net.predict(X, verbose=0))",
    "from sklearn.ensemble import RandomForestRegressor\n"
    "forest = RandomForestRegressor(n_estimators=10, random_state=3).fit(X, y)\n"
    "np.save('forest_pred.npy', forest.predict(X))",
]
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python", "file_extension": ".py"}})
nbformat.write(nb, "train_model.ipynb")
with open("broken.py", "w") as f:
    f.write("import numpy as np\nraise RuntimeError('diverged at epoch 3')\n")
with open("table.csv", "w") as f:
    f.write("a,b\n1,2\n")
print("prepared")
'''

# The original flow: the training notebook turned into a script, run_script_job from
# another notebook (no import: the image puts it in every kernel).
REMOTE = r'''
import subprocess, zipfile, numpy as np, onnxruntime as ort, h5py
subprocess.run(["jupyter", "nbconvert", "--to", "script", "train_model.ipynb"], check=True, capture_output=True)
job = run_script_job("train_model.py", data_dict=["data/train.h5"], new_history_name="remote training test",
                     progress=False)
saved = job.download("results")
zipfile.ZipFile("results/workdir.zip").extractall("results/work")
X = h5py.File("data/train.h5")["X"][:]
for name in ("net", "forest"):
    session = ort.InferenceSession(f"results/{name}.onnx", providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: X})[0].ravel()
    original = np.load(f"results/work/{name}_pred.npy").ravel()
    print(name, "max_abs_diff", float(np.abs(got - original).max()))
print("files", sorted(p.name for p in saved))
'''

FAILING = r'''
try:
    run_script_job("broken.py", progress=False)
    print("no exception")
except Exception as exc:
    print("raised", type(exc).__name__)
    print(getattr(exc, "stderr", ""))
'''

# A handle returned at once; cancelling a running job ends it, and wait() does not report success.
CANCEL = r'''
import time
with open("slow.py", "w") as f:
    f.write("import time\ntime.sleep(900)\n")
job = submit_script_job("slow.py", progress=False)
print("handle", type(job).__name__, job.status())
deadline = time.time() + 300
while job.status() != "running" and time.time() < deadline:
    time.sleep(1)
print("before cancel", job.status())
job.cancel()
deadline = time.time() + 120
while job.status() not in ("deleted", "error", "ok") and time.time() < deadline:
    time.sleep(1)
print("after cancel", job.status())
try:
    job.wait(timeout=60, progress=False)
    print("wait returned")
except Exception as exc:
    print("wait raised", type(exc).__name__)
'''

NOT_H5 = r'''
from bioblend.galaxy import GalaxyInstance
gi = GalaxyInstance(os.environ["GALAXY_URL"], key=os.environ["API_KEY"])
before = len(gi.histories.get_histories())
try:
    run_script_job("train_model.py", data_dict=["table.csv"], progress=False)
except Exception as exc:
    print("raised", type(exc).__name__, exc)
print("new histories", len(gi.histories.get_histories()) - before)
'''


@pytest.fixture(scope="module")
def kernel():
    session = galaxy_it.new_users_session()

    def run(code: str, timeout: float = 600) -> str:
        return session.run_code(code, timeout=timeout)

    assert "prepared" in run("import os\n" + PREPARE, timeout=120)
    yield run
    session.api("POST", "api/shutdown")


def test_models_trained_remotely_come_back_as_onnx_predicting_like_the_originals(kernel):
    out = kernel(REMOTE, timeout=900)
    diffs = {line.split()[0]: float(line.split()[-1]) for line in out.splitlines() if "max_abs_diff" in line}
    assert set(diffs) == {"net", "forest"}, out
    assert diffs["net"] < 1e-4 and diffs["forest"] < 1e-4, diffs
    assert "files ['forest.onnx', 'net.onnx', 'outputs.h5', 'workdir.zip']" in out, out


def test_a_script_that_raises_makes_the_client_raise_with_the_traceback(kernel):
    out = kernel(FAILING, timeout=600)
    assert "raised RemoteJobFailed" in out, out
    assert "RuntimeError: diverged at epoch 3" in out and "Traceback" in out, out


def test_a_non_h5_file_is_refused_before_anything_is_uploaded(kernel):
    out = kernel(NOT_H5, timeout=120)
    assert "raised RemoteJobError data_dict: 'table.csv' is not an HDF5 file" in out, out
    assert "new histories 0" in out, out


def test_a_submitted_job_can_be_cancelled_while_it_runs(kernel):
    out = kernel(CANCEL, timeout=600)
    assert "handle RemoteJob" in out and "before cancel running" in out, out
    assert "after cancel deleted" in out, out
    assert "wait raised RemoteJobFailed" in out, out


def test_uploads_run_in_a_warm_celery_worker_not_in_a_new_job_process(tmp_path):
    """run_script_job's uploads (the script, H5 files) are Galaxy data fetches: a Celery worker
    runs them, instead of a job process that starts Python and imports Galaxy twice (16-20 s here)."""
    import sys

    sys.path.insert(0, str(REPO / "container"))
    from gxnb import remote

    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    gi = GalaxyInstance(endpoints["galaxy_url"], key=key)
    history_id = gi.histories.create_history(name="upload through celery")["id"]
    script = tmp_path / "train.py"
    script.write_text("print('training')\n")
    dataset_id = remote.upload(gi, script, history_id, "txt", progress=False)
    job_id = gi.datasets.show_dataset(dataset_id)["creating_job"]
    assert galaxy_it.wait_for_job(gi, job_id) == "ok"
    assert gi.datasets.download_dataset(dataset_id) == b"print('training')\n"
    where = requests.get(f"{endpoints['galaxy_url']}/api/jobs/{job_id}/destination_params",
                         headers={"x-api-key": endpoints["admin_api_key"]}, timeout=30)  # fmt: skip
    where.raise_for_status()
    params = where.json()
    assert params["Runner"] == "celery", params  # not a job runner's new process
    assert re.fullmatch(r"[0-9a-f-]{36}", params["Runner Job ID"] or ""), params  # the Celery task's id
