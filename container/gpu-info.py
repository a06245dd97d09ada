#!/usr/bin/env python3
"""Print one line about the GPU(s) this container sees, read through NVML."""

import sys


def describe() -> str:
    try:
        import pynvml
    except ImportError:
        return "no GPU visible, running on CPU (NVML bindings not installed)"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return "no GPU visible, running on CPU"
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return "no GPU visible, running on CPU"
        parts = []
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name
            memory_gib = pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30
            parts.append(f"{name}, {memory_gib:.0f} GiB")
        return "GPU: " + "; ".join(parts)
    finally:
        pynvml.nvmlShutdown()


if __name__ == "__main__":
    print(describe(), file=sys.stderr if "--stderr" in sys.argv else sys.stdout)
