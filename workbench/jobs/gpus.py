"""This machine's GPUs as the runner sees them, without importing torch: how many, and which one a
new run gets so that concurrent runs train on distinct GPUs."""

from __future__ import annotations

import functools
import os
import subprocess

from workbench import paths
from workbench.store import Run


def gpu_count() -> int:
    """GPUs this machine offers, found without importing torch (`nvidia-smi -L`); 0 if none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"])
    return _smi_gpus()


@functools.cache  # asked on every config check (the GUI's form too): the answer does not change
def _smi_gpus() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


def pick_gpu(total: int, running: list[Run]) -> int | None:
    """The first GPU no running run on this host uses (their `device` says `cuda:N`), or None when
    every GPU is taken (the run then shares one, as `device=auto` would)."""
    host = paths.host()
    busy = {int(r.device.split(":")[1].split()[0]) for r in running
            if r.host in (None, host) and (r.device or "").startswith("cuda:")}
    return next((i for i in range(total) if i not in busy), None)
