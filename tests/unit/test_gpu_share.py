"""A notebook session given a share of a shared GPU (GXNB_GPU_SHARE=1/4, set by the node's docker
command) has TensorFlow and PyTorch limited to that share of the GPU's memory as soon as it imports
them, in any Python process of the image (gxnb-gpu-share.pth runs container/gxnb/gpu_share.py's
install()); a user may lower the limit, never raise it. Checked here against stand-in frameworks
that record what they are asked (the image's own test imports the real TensorFlow with a share)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

# What the image's .pth line runs at every interpreter start, then the user's own imports.
STARTUP = (REPO / "container" / "gxnb-gpu-share.pth").read_text().strip()
FAKE_TORCH = """
calls = []
class cuda:
    @staticmethod
    def is_available(): return True
    @staticmethod
    def device_count(): return 1
    @staticmethod
    def set_per_process_memory_fraction(fraction, device): calls.append([fraction, device])
"""
FAKE_TENSORFLOW = """
calls = []
class config:
    class LogicalDeviceConfiguration:
        def __init__(self, memory_limit): self.memory_limit = memory_limit
    @staticmethod
    def list_physical_devices(kind): return ["GPU:0"] if kind == "GPU" else []
    @staticmethod
    def set_logical_device_configuration(device, configurations):
        calls.append([device, [c.memory_limit for c in configurations]])
"""
# NVML as the container sees it: one GPU of 16 GiB.
FAKE_PYNVML = """
def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetHandleByIndex(index): return index
class _Memory: total, used = 16 * 2**30, 2**30
def nvmlDeviceGetMemoryInfo(handle): return _Memory()
def nvmlDeviceGetCount(): return 1
def nvmlDeviceGetName(handle): return "NVIDIA A100-SXM4-16GB"
class _Rates: gpu = 7
def nvmlDeviceGetUtilizationRates(handle): return _Rates()
class NVMLError(Exception): pass
"""


@pytest.fixture()
def frameworks(tmp_path):
    for name, code in (("torch", FAKE_TORCH), ("tensorflow", FAKE_TENSORFLOW), ("pynvml", FAKE_PYNVML)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(code)
    return tmp_path


def python_in_the_image(code: str, frameworks, **env) -> subprocess.CompletedProcess:
    """CODE in a Python whose gxnb is the repository's and whose frameworks are the stand-ins."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO / 'container'}:{frameworks}", **env})
    assert result.returncode == 0, result.stderr
    return result


def session(frameworks, **env) -> tuple[dict, str]:
    """A Python process of a session: what the frameworks were asked, and its warnings."""
    code = (f"{STARTUP}\nimport json, torch, tensorflow\n"
            "print(json.dumps({'torch': torch.calls, 'tf': tensorflow.calls}))")
    result = python_in_the_image(code, frameworks, **env)
    return json.loads(result.stdout), result.stderr


def test_a_quarter_of_a_gpu_limits_both_frameworks_to_a_quarter_of_its_memory(frameworks):
    asked, _ = session(frameworks, GXNB_GPU_SHARE="1/4")
    assert asked == {"torch": [[0.25, 0]], "tf": [["GPU:0", [4096]]]}


def test_a_user_may_lower_the_limit_but_not_raise_it_above_the_share(frameworks):
    asked, _ = session(frameworks, GXNB_GPU_SHARE="1/4", GXNB_GPU_MEMORY_FRACTION="0.1")
    assert asked == {"torch": [[0.1, 0]], "tf": [["GPU:0", [1638]]]}
    asked, warned = session(frameworks, GXNB_GPU_SHARE="1/4", GXNB_GPU_MEMORY_FRACTION="0.9")
    assert asked == {"torch": [[0.25, 0]], "tf": [["GPU:0", [4096]]]}
    assert "GXNB_GPU_MEMORY_FRACTION='0.9' is ignored" in warned and "share of the GPU (1/4)" in warned


@pytest.mark.parametrize("share", [None, "1/1"])
def test_a_whole_gpu_or_none_leaves_the_frameworks_alone(frameworks, share):
    asked, _ = session(frameworks, **({"GXNB_GPU_SHARE": share} if share else {}))
    assert asked == {"torch": [], "tf": []}


def test_a_share_that_is_not_one_says_so_and_limits_nothing(frameworks):
    asked, warned = session(frameworks, GXNB_GPU_SHARE="a-quarter")
    assert asked == {"torch": [], "tf": []}
    assert "GXNB_GPU_SHARE='a-quarter' is not a share of a GPU such as 1/4" in warned


@pytest.mark.parametrize(("share", "heading"), [("1/4", "GPU (shared, 1/4): "), (None, "GPU: ")])
def test_the_status_bar_says_the_session_shares_its_gpu(frameworks, share, heading):
    """gxnb.accelerator (the status bar's server side and the session's log line)."""
    code = "import json; from gxnb import accelerator; print(json.dumps(accelerator.read()))"
    info = json.loads(python_in_the_image(code, frameworks, **({"GXNB_GPU_SHARE": share} if share else {})).stdout)
    assert info["summary"] == heading + "NVIDIA A100-SXM4-16GB, 16 GiB", info
    assert info["share"] == (share or ""), info


def test_the_status_bar_shows_the_users_gpu_hours_with_this_sessions_own_time_and_the_quota(tmp_path, monkeypatch):
    """gxnb.accelerator.usage(): the month's use Galaxy's runner wrote at the launch, plus this
    session's own time on its share of a GPU since it started."""
    sys.path.insert(0, str(REPO / "container"))
    try:
        from gxnb import accelerator
    finally:
        sys.path.remove(str(REPO / "container"))
    monkeypatch.setenv("GXNB_SECRETS_DIR", str(tmp_path))
    assert accelerator.usage() is None  # no accounting: nothing said
    launched = 1_800_000_000.0
    (tmp_path / "gpu_usage.json").write_text(json.dumps({
        "used_gpu_hours": 1.5, "as_of_epoch": launched, "job_gpus": 0.25, "quota_gpu_hours": 5.0,
        "resets": "2027-01-01T00:00:00",
        "groups": [{"name": "ml-lab", "used_gpu_hours": 10.0, "quota_gpu_hours": 100}]}))  # fmt: skip
    # The session started 60 s after the launch call and has run two hours since.
    usage = accelerator.usage(now=launched + 60 + 7200, started=launched + 60)
    assert usage["session_gpu_hours"] == 0.5 and usage["used_gpu_hours"] == 2.0, usage
    assert usage["text"] == ("GPU-hours this month: 2.00 (this session 0.50); quota 5, resets 2027-01-01; "
                             "group ml-lab: 10.50 of 100"), usage["text"]
    (tmp_path / "gpu_usage.json").write_text("{not json")
    assert accelerator.usage() is None
