"""The training loop: the only one in the workbench, shared by every method.

It builds data and model through the run's method, trains with AdamW + warmup/cosine, and
reports metrics, snapshots and checkpoints to the store as it goes. A resumed run restores
model, optimizer, scheduler, RNG and data position from its latest checkpoint, and drops the
metrics the crashed attempt wrote after that checkpoint (they are written again).
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import default_collate

from workbench.config import TrainConfig, config_from_dict
from workbench.data.loading import BatchTransform, DataBundle, load_data, make_loader
from workbench.engine import distributed
from workbench.engine.checkpoint import Checkpoints, parent_runs
from workbench.engine.device import (
    autocast,
    autocast_dtype,
    select_device,
    wants_channels_last,
)
from workbench.engine.optim import build_optimizer, warmup_cosine
from workbench.engine.reporter import Reporter
from workbench.errors import DataError, WorkbenchError
from workbench.methods import get_method
from workbench.methods.base import Method
from workbench.store import RunStatus, Store

SNAPSHOT_IMAGES = 16


class StopFlag:
    """Set from a signal handler or another thread; the loop checks it after every step."""

    def __init__(self) -> None:
        self.requested = False

    def request(self, *_: Any) -> None:
        self.requested = True


@dataclass
class Schedule:
    """When things happen, in optimizer steps."""

    steps_per_epoch: int
    total: int
    log: int
    eval: int
    snapshot: int
    checkpoint: int

    @classmethod
    def from_config(cls, cfg: TrainConfig, steps_per_epoch: int) -> "Schedule":
        total = cfg.epochs * steps_per_epoch
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        eval_every = cfg.eval_every or steps_per_epoch
        return cls(steps_per_epoch, total, cfg.log_every, eval_every, cfg.snapshot_every or eval_every,
                   cfg.checkpoint_every or steps_per_epoch)

    def due(self, step: int, every: int) -> bool:
        return step % every == 0 or step == self.total


def train(store: Store, run_id: int, stop: StopFlag | None = None,
          log: Callable[[str], None] = print) -> RunStatus:
    """Train run `run_id` to the end (or until `stop`); return the status it ended with.
    Under torchrun every rank calls this; only rank 0 writes to the store."""
    stop = stop or StopFlag()
    run = store.get_run(run_id)
    cfg = config_from_dict(run.method, run.config, strict=False)
    ranks = distributed.current()
    device = distributed.setup(ranks, select_device(cfg.device))
    if not ranks.main:
        log = _quiet
    amp = autocast_dtype(cfg.precision, device)
    if ranks.main:
        store.mark_started(run_id, device=str(device) + (f" x{ranks.world}" if ranks.world > 1 else ""))
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    threads = CpuShare(store, cfg.threads, share=ranks.world)

    log(f"run {run_id}: {run.method} on {device} ({torch.get_num_threads()} CPU threads), "
        f"precision {amp or torch.float32}; loading data")
    data = load_data(cfg, store)
    info = data.info
    method: Method = get_method(run.method)(cfg, info, parent_runs(store, run_id, weights=True))
    model = method.build().to(device)
    memory_format = torch.channels_last if wants_channels_last(model, device) else torch.contiguous_format
    model.to(memory_format=memory_format)
    if cfg.compile:
        model.compile()  # in place: the forward is compiled, the state dict keeps its keys
    optimizer = build_optimizer(method.param_groups(model), cfg)
    loader = make_loader(data.train, cfg, train=True, pin_memory=device.type == "cuda", rank=ranks.rank,
                         world=ranks.world)
    steps_per_epoch = len(loader.batch_sampler)
    if steps_per_epoch == 0:
        raise DataError(f"batch_size {cfg.batch_size} is larger than the training set "
                        f"({len(data.train)} images); lower batch_size")
    plan = Schedule.from_config(cfg, steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(round(cfg.warmup_epochs * steps_per_epoch), plan.total))
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    ckpts = Checkpoints(store, run_id)

    step = _restore(ckpts, model, optimizer, scheduler, scaler, device)
    if step:
        log(f"resuming from step {step}")
    if ranks.rank:  # other ranks augment and mask other random draws
        torch.manual_seed(cfg.seed + 7919 * ranks.rank + step)
    reporter = Reporter(store, run_id)
    if ranks.main:
        store.delete_metrics_after(run_id, step)
        for kind in ("image", "checkpoint"):  # what the crashed attempt wrote after the restored step
            for art in store.delete_artifacts_after(run_id, step, kind):
                store.abspath(art).unlink(missing_ok=True)
        store.update_run(run_id, total_steps=plan.total, step=step)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)  # not a frozen teacher or encoder
        reporter.summary({"params": params})
        log(f"model: {params:,} trained parameters ({sum(p.numel() for p in model.parameters()):,} in all)"
            + (f"; {ranks.world} processes, {cfg.batch_size // ranks.world} images each per step"
               if ranks.world > 1 else ""))
    transform = BatchTransform(info.mean, info.std, device, cfg.augment, cfg.mixup, info.num_classes)
    snap_batch = _fixed_batch(data, cfg, transform, device)

    def save_checkpoint() -> None:
        ckpts.save(step, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "step": step,
            "method": run.method, "config": cfg.to_dict(), "data": dataclasses.asdict(info),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        })

    def val_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in make_loader(data.val, cfg, train=False, pin_memory=device.type == "cuda"):
            yield transform(x, y, False)

    def evaluate() -> None:
        model.eval()
        with autocast(device, amp):
            metrics = method.evaluate(model, val_batches())
        val = {f"val/{k}": v for k, v in metrics.items()}
        reporter.log(step, step / steps_per_epoch, val)
        reporter.flush(strict=False)
        reporter.summary(val)
        log(f"step {step}/{plan.total} " + " ".join(f"{k}={v:.4f}" for k, v in val.items()))
        model.train()

    model.train()
    window = Window(device)
    stopping = False
    while step < plan.total and not stopping:
        loader.batch_sampler.set_epoch(step // steps_per_epoch, skip=step % steps_per_epoch)
        for images, labels in loader:
            window.batch_arrived()
            images, labels = transform(images, labels, True)
            images = images.contiguous(memory_format=memory_format)
            method.on_step(step, plan.total)
            with autocast(device, amp):
                out = method.step(model, (images, labels))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(out["loss"]).backward()
            distributed.average_gradients(model.parameters(), ranks)
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            window.step_done(out, images.shape[0] * ranks.world)

            do_eval = ranks.main and plan.due(step, plan.eval)
            do_ckpt = ranks.main and plan.due(step, plan.checkpoint)
            do_snap = ranks.main and snap_batch is not None and plan.due(step, plan.snapshot)
            if ranks.main and (plan.due(step, plan.log) or do_eval or do_snap or do_ckpt):
                metrics = window.metrics()
                if not math.isfinite(metrics["train/loss"]):
                    raise WorkbenchError(f"the training loss became {metrics['train/loss']} at step {step}; "
                                         f"lower lr (now {cfg.lr}) or use precision=fp32")
                metrics["train/lr"] = scheduler.get_last_lr()[0]
                reporter.log(step, step / steps_per_epoch, metrics)
                threads.update()
                window.reset()
            if do_eval:
                evaluate()
            if do_snap:
                model.eval()
                reporter.images(step, method.snapshot(model, snap_batch))
                model.train()
            if do_ckpt:
                save_checkpoint()
            if do_eval or do_snap or do_ckpt:  # that time counts neither as training nor as waiting for data
                window.reset()
            stopping = distributed.any_rank(stop.requested, ranks, device)
            if stopping or step >= plan.total:
                break

    distributed.teardown()
    finished = step >= plan.total
    if not ranks.main:
        return RunStatus.FINISHED if finished else RunStatus.CANCELLED
    if finished:
        model.eval()
        with torch.no_grad(), autocast(device, amp):
            report = method.report(model, val_batches())
        if report is not None:
            reporter.report(step, run.method, report[0])
            reporter.images(step, report[1])
    else:
        save_checkpoint()
        log(f"stopped at step {step}; checkpoint saved, `workbench resume {run_id}` continues")
    reporter.step = step  # the run's progress is where it stopped, even between metric rows
    reporter.flush()
    return RunStatus.FINISHED if finished else RunStatus.CANCELLED


class Window:
    """Training metrics averaged since the last report, and where the time went: images per
    second, and the share of it spent waiting for the next batch (the input pipeline)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        self.steps, self.images, self.waiting = 0, 0, 0.0
        self.start = self.mark = time.perf_counter()

    def batch_arrived(self) -> None:
        self.waiting += time.perf_counter() - self.mark

    def step_done(self, out: dict[str, torch.Tensor], images: int) -> None:
        for key, value in out.items():
            self.sums[key] += value.detach().float()
        self.steps += 1
        self.images += images
        self.mark = time.perf_counter()

    def metrics(self) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        metrics = {f"train/{k}": (v / max(self.steps, 1)).item() for k, v in self.sums.items()}
        metrics["train/images_per_s"] = self.images / elapsed
        metrics["train/data_wait"] = self.waiting / elapsed
        return metrics


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
            host = socket.gethostname()
            running = sum(r.host == host for r in self.store.list_runs(status=RunStatus.RUNNING))
            wanted = max(1, (os.cpu_count() or 1) // max(1, running * self.share))
        if wanted != torch.get_num_threads():  # setting the current value again slows CPU steps
            torch.set_num_threads(wanted)


def _quiet(_: str) -> None:
    """The log of ranks other than 0: one voice in the worker log is enough."""


def _restore(ckpts: Checkpoints, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: Any, scaler: Any, device: torch.device) -> int:
    found = ckpts.latest_readable()
    if found is None:
        return 0
    state, _ = found
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng_cpu"])
    if device.type == "cuda" and state["rng_cuda"]:
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return int(state["step"])


def _fixed_batch(data: DataBundle, cfg: TrainConfig, transform: BatchTransform,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The first validation images: the same ones in every snapshot, so progress is comparable."""
    n = min(SNAPSHOT_IMAGES, len(data.val))
    if n == 0:
        return None
    images, labels = default_collate([data.val[i] for i in range(n)])
    return transform(images, labels, False)
