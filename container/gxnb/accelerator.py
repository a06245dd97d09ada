"""Which accelerator this session runs on, read through NVML.

    python -m gxnb.accelerator     one line for the session's log ("GPU: ..." or why it runs on the CPU)
    GET <base_url>gxnb/accelerator  the same as JSON for JupyterLab's status bar (gxnb-accelerator),
                                    with each GPU's use and memory, the node's maintenance
                                    notice (gxnb.node_notice) and the user's GPU-hours this
                                    month and quota (usage()): a Jupyter server extension

A session given a share of a shared GPU (gxnb.gpu_share) says so: "GPU (shared, 1/4): ...".
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time

from gxnb import gpu_share, node_notice

CPU_ONLY = "no GPU visible, running on CPU"
# Galaxy's runner writes the user's GPU use this month (before this session) and their quotas
# into the session's secrets folder at the launch (gxnb_accounting.usage_summary).
USAGE_FILE = "gpu_usage.json"
# When this session's server started: its own GPU time counts from here.
SESSION_START = time.time()


def _cpu_only(reason: str = "") -> dict:
    return {"gpu": False, "summary": f"{CPU_ONLY} ({reason})" if reason else CPU_ONLY, "devices": []}


def read() -> dict:
    """{"gpu": bool, "summary": str, "share": "1/4" or "", "devices": [{"name", "utilization_percent",
    "memory_used_gib", "memory_total_gib"}, ...]}; never raises: a session without a GPU gets the
    reason in summary."""
    try:
        import pynvml
    except ImportError:
        return _cpu_only("NVML bindings not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return _cpu_only()
    try:
        devices = [_device(pynvml, index) for index in range(pynvml.nvmlDeviceGetCount())]
    except pynvml.NVMLError as error:
        return _cpu_only(f"NVML: {error}")
    finally:
        pynvml.nvmlShutdown()
    if not devices:
        return _cpu_only()
    part = gpu_share.share()
    heading = f"GPU (shared, {part})" if part is not None else "GPU"
    summary = f"{heading}: " + "; ".join(f"{d['name']}, {d['memory_total_gib']:.0f} GiB" for d in devices)
    return {"gpu": True, "summary": summary, "share": str(part or ""), "devices": devices}


def _device(pynvml, index: int) -> dict:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    name = pynvml.nvmlDeviceGetName(handle)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    try:
        utilization = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
    except pynvml.NVMLError:  # some MIG slices and vGPUs do not report it
        utilization = None
    return {
        "name": name.decode() if isinstance(name, bytes) else name,
        "utilization_percent": utilization,
        "memory_used_gib": round(memory.used / 2**30, 2),
        "memory_total_gib": round(memory.total / 2**30, 2),
    }


def usage(now: float | None = None, started: float | None = None) -> dict | None:
    """The user's GPU-hours this month: the month's other jobs as Galaxy's accounting counted them
    at the launch, plus this session's own time so far times the GPUs it holds (a shard its part);
    with the quota that applies and when it resets. None without the file (no GPU accounting, a
    CPU-only session)."""
    secrets = pathlib.Path(os.environ.get("GXNB_SECRETS_DIR", "/run/gxnb/secrets"))
    try:
        data = json.loads((secrets / USAGE_FILE).read_text())
        before, as_of, gpus = float(data["used_gpu_hours"]), float(data["as_of_epoch"]), float(data["job_gpus"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    now = time.time() if now is None else now
    started = SESSION_START if started is None else started
    own = max(0.0, now - max(as_of, started)) / 3600 * gpus
    used = before + own
    quota = data.get("quota_gpu_hours")
    resets = str(data.get("resets", ""))[:10]
    text = f"GPU-hours this month: {used:.2f} (this session {own:.2f}"
    text += f"); quota {quota:g}, resets {resets}" if quota else ")"
    groups = [group for group in data.get("groups") or [] if isinstance(group, dict) and "name" in group]
    text += "".join(f"; group {g['name']}: {float(g['used_gpu_hours']) + own:.2f} of {g['quota_gpu_hours']:g}"
                    for g in groups)  # fmt: skip
    return {"used_gpu_hours": round(used, 4), "session_gpu_hours": round(own, 4), "quota_gpu_hours": quota,
            "resets": resets, "text": text}  # fmt: skip


def describe() -> str:
    return read()["summary"]


# Jupyter server extension (enabled by the image's jupyter_server_config.d/gxnb.json).
def _jupyter_server_extension_points():
    return [{"module": "gxnb.accelerator"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.utils import url_path_join
    from tornado import web

    class AcceleratorHandler(APIHandler):
        @web.authenticated
        def get(self):
            self.set_header("Cache-Control", "no-store")
            notice = node_notice.read()
            if notice is not None:
                notice["text"] = node_notice.describe(notice)
            self.finish(json.dumps({**read(), "notice": notice, "usage": usage()}))

    route = url_path_join(serverapp.web_app.settings["base_url"], "gxnb", "accelerator")
    serverapp.web_app.add_handlers(".*$", [(route, AcceleratorHandler)])


if __name__ == "__main__":
    print(describe(), file=sys.stderr if "--stderr" in sys.argv else sys.stdout)
