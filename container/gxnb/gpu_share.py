"""This session's share of its GPU, and the frameworks kept to it.

Where the site shares GPUs (gxnb_gpu_shards_per_gpu), a notebook session is given some of a GPU's
Slurm shards and the node tells the container which part: GXNB_GPU_SHARE=1/4. Every Python
process of the image imports this module at start (gxnb-gpu-share.pth); with a share set it waits
for TensorFlow or PyTorch to be imported and then limits its GPU memory to that fraction of each
visible GPU, so that sessions on one card do not take each other's memory (TensorFlow takes all of
it by default). GXNB_GPU_MEMORY_FRACTION (0-1) lowers the limit; it never raises it above the
share. Without a share, nothing is done.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import warnings
from collections.abc import Callable
from fractions import Fraction

SHARE_VARIABLE = "GXNB_GPU_SHARE"
FRACTION_VARIABLE = "GXNB_GPU_MEMORY_FRACTION"


def share() -> Fraction | None:
    """The part of its GPU this session was given (1/4), or None: a whole GPU, or none."""
    value = os.environ.get(SHARE_VARIABLE, "").strip()
    if not value:
        return None
    try:
        part = Fraction(value)
    except (ValueError, ZeroDivisionError):
        part = None
    if part is None or not 0 < part <= 1:
        warnings.warn(f"{SHARE_VARIABLE}={value!r} is not a share of a GPU such as 1/4: GPU memory is not limited",
                      stacklevel=2)
        return None
    return part if part < 1 else None


def memory_fraction() -> float | None:
    """The fraction of each GPU's memory the frameworks may take: the share, or the user's lower
    GXNB_GPU_MEMORY_FRACTION."""
    part = share()
    if part is None:
        return None
    wanted = os.environ.get(FRACTION_VARIABLE, "").strip()
    if wanted:
        try:
            lower = float(wanted)
        except ValueError:
            lower = -1.0
        if 0 < lower <= float(part):
            return lower
        warnings.warn(f"{FRACTION_VARIABLE}={wanted!r} is ignored: a fraction above 0 and at most this session's "
                      f"share of the GPU ({part}) is allowed", stacklevel=2)
    return float(part)


def limit_torch(torch) -> None:
    fraction = memory_fraction()
    if fraction is None or not torch.cuda.is_available():
        return
    for device in range(torch.cuda.device_count()):
        torch.cuda.set_per_process_memory_fraction(fraction, device)


def limit_tensorflow(tf) -> None:
    fraction = memory_fraction()
    if fraction is None:
        return
    gpus = tf.config.list_physical_devices("GPU")
    totals = _gpu_memory_mib(len(gpus))
    for gpu, total in zip(gpus, totals, strict=False):
        limit = int(total * fraction)
        tf.config.set_logical_device_configuration(gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])


def _gpu_memory_mib(count: int) -> list[int]:
    """Each visible GPU's memory in MiB, in CUDA's order (NVML sees the container's GPUs only)."""
    if not count:
        return []
    import pynvml

    pynvml.nvmlInit()
    try:
        return [pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).total // 2**20
                for i in range(count)]
    finally:
        pynvml.nvmlShutdown()


LIMITS: dict[str, Callable] = {"torch": limit_torch, "tensorflow": limit_tensorflow}


class _LimitAfterImport(importlib.abc.MetaPathFinder):
    """Finds TensorFlow and PyTorch as the other finders do, and limits each once it is imported."""

    def find_spec(self, name, path, target=None):
        limit = LIMITS.get(name)
        if limit is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Limiting(spec.loader, limit)
        return spec


class _Limiting(importlib.abc.Loader):
    def __init__(self, loader, limit: Callable):
        self._loader = loader
        self._limit = limit

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            self._limit(module)
        except Exception as error:  # the session goes on, unlimited, and says so
            warnings.warn(f"{module.__name__}'s GPU memory is not limited to this session's share: {error}",
                          stacklevel=2)

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self._loader, name)


def install() -> None:
    """Limit TensorFlow and PyTorch when they are imported, where this session has a share."""
    if os.environ.get(SHARE_VARIABLE) and not any(isinstance(f, _LimitAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _LimitAfterImport())
