"""What a run ran on: the software and machine a worker records at each start (`environment`),
and the `sys/...` series it logs beside its training metrics (`SystemMetrics`): the process's
CPU use and memory, and on NVIDIA GPUs their utilisation, memory and power (through NVML, the
`nvidia-ml-py` package, when it is installed)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable

import numpy as np
import psutil
import torch

from workbench import paths

PACKAGE = "vit-workbench"


def environment() -> dict[str, str]:
    """Name -> version or fact, in a fixed order: what `Compare` sets side by side and the model
    card lists. `packages` is a hash of every installed distribution's name and version, so two
    runs that agree on it had the same Python packages."""
    env = {"workbench": _version(PACKAGE)}
    commit = _git_commit()
    if commit:
        env["workbench commit"] = commit
    env |= {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": _version("torchvision"), "timm": _version("timm")}
    if torch.cuda.is_available():
        env["cuda"] = str(torch.version.cuda)
        env["cudnn"] = str(torch.backends.cudnn.version())
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        env["gpus"] = ", ".join(f"{names.count(n)} x {n}" for n in dict.fromkeys(names))
    env |= {"host": paths.host(), "os": platform.platform(), "cpus": _cpus(), "packages": _packages_hash()}
    return env


def _cpus() -> str:
    """The cores the run may use, and the machine's when they are fewer ("4 of 64": a Slurm job's
    cpuset, taskset): the machine's count alone overstated what a run had."""
    usable, machine = paths.cpus(), psutil.cpu_count() or 0
    return str(machine) if usable >= machine else f"{usable} of {machine}"


MACHINE = ("host", "cpus", "gpus")  # what a resume on another machine, or another Slurm allocation, may change


def differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    """'torch 2.14.1 vs 2.13.0' for each software entry two environments hold differently (the
    machine's aside: a resumed run may land on another machine, or on another share of one, by design)."""
    return [f"{key} {a.get(key, '-')} vs {b.get(key, '-')}" for key in dict.fromkeys([*a, *b])
            if key not in MACHINE and a.get(key) != b.get(key)]


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    """The checkout's commit (with `+changes` when files differ from it), or '' when the workbench
    does not run from a git checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if head.returncode != 0:
        return ""
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _packages_hash() -> str:
    """sha256 (12 hex digits) of the sorted `name==version` list of installed distributions, with
    their count."""
    found = sorted({f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in importlib.metadata.distributions()})
    return f"{hashlib.sha256(chr(10).join(found).encode()).hexdigest()[:12]} ({len(found)} packages)"


class SystemMetrics:
    """`sys/...` values, read at most every `every` seconds (psutil's and NVML's calls cost tens of
    microseconds; the rows they add are what is kept small): `sample()` returns {} between."""

    def __init__(self, device: torch.device, every: float = 5.0) -> None:
        self.device, self.every, self._next = device, every, 0.0
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first call starts the interval the next one measures
        # torch.cuda's NVML readings (they map CUDA_VISIBLE_DEVICES onto NVML's numbering)
        self.gpu = device.type == "cuda" and importlib.util.find_spec("pynvml") is not None

    def sample(self) -> dict[str, float]:
        now = time.monotonic()
        if now < self._next:
            return {}
        self._next = now + self.every
        out = {"sys/cpu_percent": self.process.cpu_percent(), "sys/rss_gb": self.process.memory_info().rss / 2**30}
        if self.gpu:
            try:
                out["sys/gpu_util_percent"] = float(torch.cuda.utilization(self.device))
                out["sys/gpu_memory_gb"] = torch.cuda.device_memory_used(self.device) / 2**30
                out["sys/gpu_power_w"] = torch.cuda.power_draw(self.device) / 1000.0
            except Exception as exc:  # pynvml's NVMLError (a driver it cannot talk to): CPU readings stay
                print(f"sys/ GPU metrics off: {exc}", file=sys.stderr)
                self.gpu = False
        return out


def saved_for_backward(step: Callable[[], Any], leave_out: Iterable[torch.nn.Parameter] = ()) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while `step` runs (each storage
    once; the parameters in `leave_out`, kept anyway, not counted): a step's activations. Run
    with torch's, numpy's and Python's random state put back after, so a run that probes draws
    what it would have drawn without the probe."""
    known = {p.untyped_storage().data_ptr() for p in leave_out}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in known:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    states = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    np.random.set_state(states[0])
    random.setstate(states[1])
    return sum(seen.values())


@dataclass(frozen=True)
class StepMemory:
    """What a training step keeps in memory beside the model's weights, in bytes: activations per
    image and per step (whatever its batch) kept for the backward pass, and the trained weights'
    size (AdamW's two moments take twice that; their gradients come as the backward pass frees
    activations, so they are not counted: a lower bound)."""
    per_image: float
    per_step: float
    trained: int

    def need(self, batch: int) -> float:
        """A step's memory on `batch` images, less the backward pass's own temporaries (bench/memory.py)."""
        return self.per_step + self.per_image * batch + 2 * self.trained


def step_memory(model: torch.nn.Module, step: Callable[[int], Any], around: ContextManager) -> StepMemory:
    """Measured by `step(n)`, the method's step on n training images (run inside `around`, its
    autocast), on two and on four: even counts, since Mixup pairs images; the two sizes tell an
    image's share from the step's own. The model's buffers (BatchNorm's statistics) are put back."""
    buffers = [b.detach().clone() for b in model.buffers()]
    with around:
        two, four = (saved_for_backward(lambda: step(n), model.parameters()) for n in (2, 4))
    for kept, buffer in zip(buffers, model.buffers()):
        buffer.data.copy_(kept)
    per_image = max(four - two, 0) / 2
    return StepMemory(per_image, max(two - 2 * per_image, 0),
                      sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad))


def memory_short(memory: StepMemory, micro_batch: int, processes: int) -> str:
    """Why this machine's free memory cannot hold a CPU run's training, '' when it may: on a CPU the
    out-of-memory killer ends a run mid-step with no word (a GPU's OOM is an error, said), so a
    step of `micro_batch` images in each of the `processes` on this machine is measured first
    (`step_memory`). The backward pass's own temporaries come on top, so a run refused cannot fit."""
    need, free = processes * memory.need(micro_batch), free_memory()
    if need <= free:
        return ""
    gib, room = 2 ** 30, free / processes - memory.need(0)
    fits = int(room // max(memory.per_image, 1))
    return (f"this run needs at least {need / gib:.1f} GiB of memory to train, this machine has {free / gib:.1f} GiB "
            f"free: a batch of {micro_batch} keeps {(memory.need(micro_batch) - memory.need(0)) / gib:.1f} GiB of "
            f"activations ({memory.per_image / 2 ** 20:.0f} MiB an image) and AdamW's moments take "
            f"{2 * memory.trained / gib:.1f} GiB" + (f", in each of {processes} processes" if processes > 1 else "")
            + (f"; at most {fits} images fit at a time: lower batch_size, or raise accum_steps (a process takes "
               f"batch_size / (nproc x nnodes x accum_steps) images at a time)" if fits > 0 else
               "; the model and its optimizer alone do not fit: a smaller model, or a machine with more memory"))


def free_memory() -> int:
    """Bytes this process may still take: the machine's available memory, or less where a cgroup
    (a container's limit, a Slurm job's --mem) caps it, since its OOM killer acts at the cap. The
    group's use counts what it cannot give back: less its inactive page cache, as kubelet counts."""
    free = psutil.virtual_memory().available
    for hierarchy in _memory_cgroups():
        try:
            limit = int((hierarchy.folder / hierarchy.limit).read_text().strip().replace("max", str(2 ** 63)))
            used = int((hierarchy.folder / hierarchy.usage).read_text())
            stat = dict(line.split() for line in (hierarchy.folder / "memory.stat").read_text().splitlines())
            free = min(free, limit - used + int(stat.get(hierarchy.cache, 0)))
        except (OSError, ValueError):  # not readable here: the machine's figure stands
            continue
    return free


@dataclass(frozen=True)
class _Cgroup:
    folder: Path
    limit: str
    usage: str
    cache: str  # memory.stat's reclaimable page cache


def _memory_cgroups() -> list[_Cgroup]:
    """This process's memory cgroup, v2 (unified) or v1, from /proc/self/cgroup."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            found.append(_Cgroup(Path("/sys/fs/cgroup") / path.lstrip("/"), "memory.max", "memory.current",
                                 "inactive_file"))
        elif "memory" in controllers.split(","):
            found.append(_Cgroup(Path("/sys/fs/cgroup/memory") / path.lstrip("/"), "memory.limit_in_bytes",
                                 "memory.usage_in_bytes", "total_inactive_file"))
    return found
