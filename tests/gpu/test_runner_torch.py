"""gxnb.runner with a PyTorch model: trained on the GPU where one is visible, exported to ONNX
with its real input width, same predictions in onnxruntime. Runs wherever torch, onnxruntime,
h5py and IPython are installed (the notebook image ships no torch): a GPU host, or

    python tests/gpu/test_runner_torch.py      # without pytest; prints the figures
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]

TRAINING = """\
!echo shell line ran
import h5py, numpy as np, torch
device = "cuda" if torch.cuda.is_available() else "cpu"
print("training on", device)
with h5py.File("data/train.h5") as f:
    X = torch.tensor(f["X"][:], device=device)
    y = torch.tensor(f["y"][:], device=device).unsqueeze(1)
torch.manual_seed(1)
mlp = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)).to(device)
optimiser = torch.optim.Adam(mlp.parameters(), lr=0.01)
for _ in range(200):
    optimiser.zero_grad()
    loss = torch.nn.functional.mse_loss(mlp(X), y)
    loss.backward()
    optimiser.step()
print("final loss", float(loss))
with torch.no_grad():
    np.save("mlp_pred.npy", mlp(X).cpu().numpy())
"""


def run_torch_job(folder: pathlib.Path, features: int = 7) -> dict:
    import h5py
    import numpy as np
    import onnxruntime

    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, features)).astype("float32")
    with h5py.File(folder / "train.h5", "w") as f:
        f["X"] = X
        f["y"] = (X @ rng.normal(size=features)).astype("float32")
    (folder / "train.py").write_text(TRAINING)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "container"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "gxnb.runner", "--script", str(folder / "train.py"), "--outdir", str(folder / "out"),
         "--workdir", str(folder / "work"), "--data", f"train.h5={folder / 'train.h5'}",
         "--local-path", "data/train.h5"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "shell line ran" in run.stdout, run.stdout[-2000:]
    model = folder / "out" / "mlp.onnx"
    assert model.exists(), run.stderr[-3000:]
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (onnx_input,) = session.get_inputs()
    assert onnx_input.shape[1] == features, onnx_input.shape  # the real input width
    predicted = session.run(None, {onnx_input.name: X})[0]
    expected = np.load(folder / "work" / "mlp_pred.npy")
    device = next(line for line in run.stdout.splitlines() if line.startswith("training on")).split()[-1]
    return {"max_abs_diff": float(np.abs(predicted - expected).max()), "device": device, "batch": predicted.shape[0]}


def test_torch_model_comes_back_as_onnx_with_the_same_predictions(tmp_path):
    import pytest

    for module in ("torch", "onnxruntime", "h5py", "IPython"):
        pytest.importorskip(module)
    result = run_torch_job(tmp_path)
    assert result["batch"] == 256
    assert result["max_abs_diff"] < 1e-4, result


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        figures = run_torch_job(pathlib.Path(folder))
    print(f"torch -> ONNX: trained on {figures['device']}, {figures['batch']} rows, "
          f"max |onnxruntime - torch| = {figures['max_abs_diff']:.2e}")
    sys.exit(0 if figures["max_abs_diff"] < 1e-4 else 1)
