"""Which accelerator this session runs on, read through NVML.

    python -m gxnb.accelerator     one line for the session's log ("GPU: ..." or why it runs on the CPU)
    GET <base_url>gxnb/accelerator  the same as JSON for JupyterLab's status bar (gxnb-accelerator),
                                    with each GPU's use and memory and the node's maintenance
                                    notice (gxnb.node_notice): a Jupyter server extension

A session given a share of a shared GPU (gxnb.gpu_share) says so: "GPU (shared, 1/4): ...".
"""

from __future__ import annotations

import json
import sys

from gxnb import gpu_share, node_notice

CPU_ONLY = "no GPU visible, running on CPU"


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
            self.finish(json.dumps({**read(), "notice": notice}))

    route = url_path_join(serverapp.web_app.settings["base_url"], "gxnb", "accelerator")
    serverapp.web_app.add_handlers(".*$", [(route, AcceleratorHandler)])


if __name__ == "__main__":
    print(describe(), file=sys.stderr if "--stderr" in sys.argv else sys.stdout)
