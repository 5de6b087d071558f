"""Device and precision choice: CUDA (the GPU the runner picked for this run, when several),
then Apple MPS, then CPU; bf16 autocast on GPUs; the CPU threads a run may use."""

from __future__ import annotations

import contextlib
import os
import time
from typing import ContextManager

import torch

from workbench import paths
from workbench.errors import WorkbenchError
from workbench.store import RunStatus, Store


def select_device(spec: str) -> torch.device:
    """Resolve `auto`/`cpu`/`mps`/`cuda`/`cuda:N`, refusing a device this machine lacks."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if spec == "auto":
        if os.environ.get("WORKBENCH_AUTO_DEVICE"):  # the runner's pick: a GPU no other run uses
            return select_device(os.environ["WORKBENCH_AUTO_DEVICE"])
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        return torch.device("mps") if has_mps else torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise WorkbenchError(f"device {spec} was asked for, but CUDA is not available on this machine; "
                                 f"set device=auto or device=cpu")
        index = int(spec.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise WorkbenchError(f"device {spec} was asked for, but this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 ... "
                                 f"cuda:{torch.cuda.device_count() - 1})")
        return torch.device("cuda", index)
    if spec == "mps" and not has_mps:
        raise WorkbenchError("device mps was asked for, but Apple MPS is not available; set device=auto or cpu")
    return torch.device(spec)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting (None: plain fp32)."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None  # CPU and MPS train faster and safer in fp32 at these sizes
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def wants_channels_last(model: torch.nn.Module, device: torch.device) -> bool:
    """Channels-last memory speeds up convolutional networks on GPUs (tensor cores); a ViT's only
    convolution is its patch embedding, where it does not pay, and CPUs gain little."""
    convs = sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size != m.stride for m in model.modules())
    return device.type == "cuda" and convs >= 4


class CpuShare:
    """CPU threads for this run: `fixed`, or this machine's cores divided among the runs going
    on it, rechecked every few seconds, so concurrent runs never oversubscribe the cores
    (spinning OpenMP threads on shared cores slow every run several times over)."""

    def __init__(self, store: Store, fixed: int = 0, every_s: float = 5.0, share: int = 1) -> None:
        self.store, self.fixed, self.every_s, self.share = store, fixed, every_s, share
        self.checked = 0.0
        self.update()

    def update(self) -> None:
        if time.monotonic() - self.checked < self.every_s:
            return
        self.checked = time.monotonic()
        if self.fixed:
            wanted = self.fixed
        else:
            host = paths.host()
            running = sum(r.host == host for r in self.store.list_runs(status=RunStatus.RUNNING))
            wanted = max(1, paths.cpus() // max(1, running * self.share))
        if wanted != torch.get_num_threads():  # setting the current value again slows CPU steps
            torch.set_num_threads(wanted)
