"""Data-parallel training over several processes (`nproc` > 1), launched with torchrun.

The worker of such a run replaces itself with `torchrun --nproc_per_node N` running the same
worker module; each rank trains on its share of every batch (`EpochBatchSampler`), and PyTorch's
`DistributedDataParallel` averages the gradients (NCCL on GPUs, gloo on the CPU: bucketed, and
overlapped with the backward pass), so every rank keeps identical weights; it also broadcasts
rank 0's initial weights. DDP wraps `StepModule`, whose forward is the method's whole training
step, so every call a method makes on its model (a DeiT's two heads, an MAE's encoder and
decoder) happens inside DDP's forward; frozen parents (a teacher, a tokenizer) have no trainable
parameters and stay out of its reducer. Only rank 0 talks to the store: metrics, evaluation,
snapshots, checkpoints and the run's status. A stop request (cancel) is agreed on by a
one-number all-reduce after every step, read a step later (`StopVote`), so all ranks stop after the
same step.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, ContextManager, Iterator

import psutil
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from workbench import paths
from workbench.errors import WorkbenchError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        """The rank that writes to the store."""
        return self.rank == 0


def current() -> Ranks:
    """This process's place in a torchrun launch (a lone process: rank 0 of 1)."""
    env = os.environ
    return Ranks(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def launch_argv(worker_module: str, run_id: int, nproc: int, nnodes: int = 1, endpoint: str = "") -> list[str]:
    """The torchrun command that runs `nproc` ranks of this run's worker on this machine: alone, or
    as one of `nnodes` machines that meet at `endpoint` (c10d rendezvous; the machine whose address
    it is keeps the rendezvous store; torchrun orders the machines' ranks by host name)."""
    where = ["--standalone"] if nnodes == 1 else [f"--nnodes={nnodes}", "--rdzv-backend=c10d",
                                                   f"--rdzv-endpoint={endpoint}", f"--rdzv-id=workbench-run-{run_id}"]
    return [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc_per_node={nproc}",
            "-m", worker_module, str(run_id)]


def become_torchrun(worker_module: str, run_id: int, config: dict[str, Any]) -> None:
    """Replace this process (same pid) by torchrun, which starts this machine's ranks of the run:
    the worker of a run with several processes, or `workbench join` on another of its machines."""
    nproc, nnodes = int(config.get("nproc", 1)), int(config.get("nnodes", 1))
    argv = launch_argv(worker_module, run_id, nproc, nnodes, str(config.get("rdzv_endpoint", "")))
    machines = f" on each of {nnodes} machines meeting at {config['rdzv_endpoint']}" if nnodes > 1 else ""
    print(f"run {run_id}: {nproc} processes through torchrun{machines}", flush=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, paths.cpus() // nproc)))
    os.execv(argv[0], argv)


def setup(ranks: Ranks, device: torch.device) -> torch.device:
    """Join the process group; a GPU run's rank takes its own GPU. The device to train on."""
    if ranks.world == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=30))
    return device


def agree(ranks: Ranks, device: torch.device, main_says: bool) -> bool:
    """Rank 0's yes or no, on every rank (a one-number broadcast): what only rank 0 can decide, such
    as whether the run is still this start's to train, which every rank must act on alike, or the
    others wait in their next collective for a rank that has left (on NCCL, until the timeout)."""
    if ranks.world == 1:
        return main_says
    flag = torch.full((1,), 1.0 if main_says else 0.0, device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item() > 0)


@contextlib.contextmanager
def together(ranks: Ranks, device: torch.device) -> Iterator[None]:
    """Around what each rank does on its own before training (loading its data, building its model,
    checks): every rank leaves it knowing whether all got through, so a failure that only one rank
    meets (a file missing on one machine) stops them all, where the others would wait for it in
    their next collective (on NCCL, until the timeout). A failed rank raises its own error; the
    others raise one naming it, which rank 0 records. Every rank exits non-zero: a torchrun agent
    whose ranks all exit 0 waits up to 5 minutes at its exit barrier for the agents of failed ones."""
    if ranks.world == 1:
        yield
        return
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:  # told to the others below, then raised (an interrupt too: they would wait)
        failure = exc
    whys: list[str] = [""] * ranks.world
    said = ("" if failure is None else str(failure) if isinstance(failure, WorkbenchError)
            else f"{type(failure).__name__}: {failure}")
    dist.all_gather_object(whys, said)
    if failure is not None:
        raise failure
    failed = next(((rank, why) for rank, why in enumerate(whys) if why), None)
    if failed is not None:
        raise WorkbenchError(f"rank {failed[0]} of {ranks.world} failed before training: {failed[1]} (its "
                             f"worker log, on its machine, says more); every rank stopped")


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def sync_batchnorm(model: torch.nn.Module, device: torch.device) -> tuple[torch.nn.Module, int]:
    """The model with its BatchNorm layers made SyncBatchNorm (the same parameters and buffers, so
    checkpoints keep their keys), and how many; refused off GPUs, where PyTorch cannot sync them."""
    if device.type != "cuda":
        raise WorkbenchError(f"sync_bn needs GPUs (PyTorch's SyncBatchNorm does not run on {device.type}); "
                             f"set sync_bn=false")
    count = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model), count


class StepModule(torch.nn.Module):
    """What DDP wraps: `forward(images, labels)` is the method's training step on the model
    ({"loss": ..., metrics}); evaluation, snapshots and checkpoints use the model itself."""

    def __init__(self, method: Any, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.method = method  # a plain object, not a module: its frozen parents stay out of DDP

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.method.step(self.model, (images, labels))


def wrap(method: Any, model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """The module a training step calls: the method's step on the model, in DDP when there are
    several ranks (`find_unused_parameters` only for a method that declares it needs it)."""
    step = StepModule(method, model)
    if ranks.world == 1:
        return step
    return DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=method.unused_parameters)


def accumulating(stepper: torch.nn.Module, last: bool) -> ContextManager:
    """Around the forward and backward of one of a step's batches: gradients are reduced over the
    ranks only with the last (DDP's `no_sync` before it), the sum of them all in one all-reduce."""
    if last or not isinstance(stepper, DistributedDataParallel):
        return contextlib.nullcontext()
    return stepper.no_sync()


class StopVote:
    """Whether any rank asked to stop (a cancel), agreed by every rank: each step's vote is summed
    over the ranks without waiting, and read after the next step, so all ranks stop after the same
    step, one after the request. Reading it at once would make the host wait at every step for the
    GPU to finish that step before it could queue the next. On a GPU the sum is copied to pinned
    host memory behind the step that cast it and read once an event says that copy is done: reading
    the device's tensor would wait for everything queued since, the next step included."""

    def __init__(self, ranks: Ranks, device: torch.device) -> None:
        self.ranks, self.device = ranks, device
        self.pending: tuple[Callable[[], Any], torch.Tensor] | None = None  # (wait for it, the sum on the host)

    def __call__(self, flag: bool) -> bool:
        """This step's vote; True (on every rank alike) when any rank voted to stop a step ago."""
        if self.ranks.world == 1:
            return flag
        vote = torch.full((1,), 1.0 if flag else 0.0, device=self.device)  # filled there: no copy to wait for
        work = dist.all_reduce(vote, async_op=True)
        if self.device.type == "cuda":
            work.wait()  # NCCL: the stream waits for the sum, not the host
            host = torch.empty(1, pin_memory=True)
            host.copy_(vote, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record()
            cast: tuple[Callable[[], Any], torch.Tensor] = (copied.synchronize, host)
        else:
            cast = (work.wait, vote)
        previous, self.pending = self.pending, cast
        if previous is None:
            return False
        previous[0]()
        return bool(previous[1].item() > 0)

    def settle(self) -> None:
        """Wait for the last vote's all-reduce, which every rank has started, before the group goes."""
        if self.pending is not None:
            self.pending[0]()
            self.pending = None


def _ranks_here(ranks: Ranks) -> list[int]:
    """This machine's ranks: a Slurm step lists its tasks' (SLURM_GTIDS; with `--distribution=cyclic`
    they are not in a row), and torchrun numbers a machine's `LOCAL_WORLD_SIZE` ranks in a row
    from `rank - local`."""
    listed = os.environ.get("SLURM_GTIDS", "")
    if listed and all(t.strip().isdigit() for t in listed.split(",")):
        return sorted(int(t) for t in listed.split(","))
    first = ranks.rank - ranks.local
    return list(range(first, min(ranks.world, first + int(os.environ.get("LOCAL_WORLD_SIZE", ranks.world)))))


def lost_peers(ranks: Ranks, exc: BaseException) -> str:
    """Which process went away, in words ("rank 1 of the 2 processes"), when `exc` is a collective
    that failed because a peer went away (its process killed or crashed); "" for any other error.
    Only this machine's ranks (`_ranks_here`) can be looked at: they are their launcher's children
    (torchrun's, or slurmstepd's for a Slurm job's tasks), each with its rank in RANK or
    SLURM_PROCID. When all of them live, the one that went was on another machine, and which one
    cannot be told from here."""
    if ranks.world == 1 or not (isinstance(exc, dist.DistError) or isinstance(exc, RuntimeError) and any(
            s in str(exc) for s in ("gloo", "NCCL", "Connection reset", "Connection closed", "Broken pipe"))):
        return ""
    here = _ranks_here(ranks)
    alive = {ranks.rank}
    try:
        for child in psutil.Process().parent().children():
            try:
                env = child.environ()
                rank = env.get("RANK", env.get("SLURM_PROCID"))  # a Slurm task sets RANK in Python: not seen here
                if child.status() != psutil.STATUS_ZOMBIE and rank is not None:
                    alive.add(int(rank))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
                continue
    except (psutil.NoSuchProcess, AttributeError):  # no parent left: the launcher itself is gone
        alive = {ranks.rank}
    gone = [r for r in here if r not in alive]
    if gone:
        return f"rank {' and '.join(map(str, gone))} of the {ranks.world} processes"
    if len(here) < ranks.world:
        mine = (f"{here[0]} to {here[-1]}" if here == list(range(here[0], here[-1] + 1)) else
                f"{', '.join(map(str, here[:-1]))} and {here[-1]}")
        return f"a process on another machine (this one's ranks, {mine} of {ranks.world}, still run)"
    return ""
