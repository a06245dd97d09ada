"""The notebook image's lock files cover what the .in files ask for, and the variants agree."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import REPO

REQUIREMENTS = REPO / "container" / "requirements"
VARIANTS = ["cpu", "gpu", "cpu-colabfold", "gpu-colabfold"]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def asked_for(path) -> set[str]:
    """Project names an .in file asks for, following -r includes."""
    names = set()
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            names |= asked_for(path.parent / line[3:].strip())
            continue
        names.add(normalise(re.match(r"[A-Za-z0-9._-]+", line).group(0)))
    return names


def pins(path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            found[normalise(name)] = version
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_lock_pins_everything_asked_for(variant):
    locked = pins(REQUIREMENTS / f"{variant}.txt")
    missing = asked_for(REQUIREMENTS / f"{variant}.in") - set(locked)
    assert not missing, f"{variant}.txt lacks {sorted(missing)}: run container/requirements/lock.py"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in locked.values())


def test_variants_share_the_ml_stack_versions():
    cpu, gpu = pins(REQUIREMENTS / "cpu.txt"), pins(REQUIREMENTS / "gpu.txt")
    assert cpu["tensorflow-cpu"] == gpu["tensorflow"]
    for name in ("keras", "numpy", "scikit-learn", "onnx", "tf2onnx", "skl2onnx", "jupyterlab", "h5py"):
        assert cpu[name] == gpu[name], f"{name}: cpu {cpu[name]} vs gpu {gpu[name]}"
    assert cpu["keras"].startswith("3.")
    assert "onnxruntime-gpu" in gpu and "onnxruntime" not in gpu, "the gpu variant must not carry both onnxruntimes"
    assert any(name.startswith("nvidia-cudnn") for name in gpu), "CUDA/cuDNN wheels missing from the gpu lock"


def test_build_script_names_a_bad_variant():
    out = subprocess.run([REPO / "scripts/build-notebook-image.sh", "huge"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown variant 'huge'" in out.stderr and "cpu, gpu" in out.stderr


def test_the_locks_leave_out_what_the_lock_script_leaves_out():
    """Packages lock.py keeps out of the image (rfc3987-syntax: ~2 s of every JupyterLab start)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lock", REQUIREMENTS / "lock.py")
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    assert "rfc3987-syntax" in lock.LEFT_OUT
    for variant in VARIANTS:
        kept = set(pins(REQUIREMENTS / f"{variant}.txt")) & {normalise(name) for name in lock.LEFT_OUT}
        assert not kept, f"{variant}.txt pins {sorted(kept)}, which lock.py leaves out"
