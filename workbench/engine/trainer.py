"""The training loop: the only one in the workbench, shared by every method.

It builds data and model through the run's method, trains with AdamW + warmup/cosine, and
reports metrics, snapshots and checkpoints to the store as it goes. A resumed run restores
model, optimizer, scheduler, RNG and data position from its latest checkpoint, and drops the
metrics the crashed attempt wrote after that checkpoint (they are written again).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator

import torch
from timm.utils import ModelEmaV3

from workbench import paths
from workbench.data.loading import (
    BatchTransform,
    data_path,
    fixed_batch,
    load_data,
    make_loader,
)
from workbench.engine import distributed, system
from workbench.engine.checkpoint import (
    BEST,
    Checkpoints,
    classes_changed,
    data_fingerprint,
    parent_runs,
    restore_rng,
    rng_states,
    seed_rngs,
)
from workbench.engine.device import (
    CpuShare,
    autocast,
    autocast_dtype,
    select_device,
    wants_channels_last,
)
from workbench.engine.execute import StopFlag, ended_before_start, taken_from
from workbench.engine.optim import (
    Schedule,
    build_optimizer,
    build_scheduler,
    current_lr,
)
from workbench.engine.pretrained import fit_config, start_from, starting_weights
from workbench.engine.reporter import Reporter, Window
from workbench.engine.system import SystemMetrics, environment
from workbench.errors import DataError, NoCheckpointError, RunEnded, WorkbenchError
from workbench.methods import config_from_dict, get_method
from workbench.methods.base import Method
from workbench.store import RunStatus, Store


def train(store: Store, run_id: int, stop: StopFlag | None = None,
          log: Callable[[str], None] = print, token: str | None = None) -> RunStatus:
    """Train run `run_id` to the end (or until `stop`); return the status it ended with. `token`:
    the start that holds the run (`execute`'s); none: take it. Under torchrun every rank calls
    this; only rank 0 writes to the store."""
    training = Training(store, run_id, log, stop, token)  # data, model, optimizer, schedule
    training.resume()  # from the newest checkpoint, dropping what a crashed attempt wrote after it
    return training.finish(training.loop())


class Training:
    """One run's training, in the stages `train` calls in order. Rank 0 writes to the store only
    while its `token` holds the run; once another start holds it, `stop.lost` says why and the
    loop stops (every rank, at the next step's vote) writing nothing more."""

    def __init__(self, store: Store, run_id: int, log: Callable[[str], None], stop: StopFlag | None = None,
                 token: str | None = None) -> None:
        self.store, self.run_id, self.stop = store, run_id, stop or StopFlag()
        self.run = run = store.get_run(run_id)
        self.cfg = cfg = config_from_dict(run.method, run.config, strict=False)
        self.ranks = ranks = distributed.current()
        self.device = device = distributed.setup(ranks, select_device(cfg.device))
        self.log = log if ranks.main else _quiet
        self.amp = autocast_dtype(cfg.precision, device)
        self.token = store.adopt(run_id) if token is None and ranks.main else token  # "": held by none
        started = not ranks.main or bool(self.token) and store.mark_started(
            run_id, device=str(device) + (f" x{ranks.world}" if ranks.world > 1 else ""), token=self.token)
        if not distributed.agree(ranks, device, started):  # every rank leaves, none waits for rank 0
            distributed.teardown()
            raise ended_before_start(store, run_id) if ranks.main else RunEnded(f"run {run_id} not started by rank 0")
        with distributed.together(ranks, device):  # a rank failing alone here stops every rank
            self._build()
        cfg = self.cfg  # as the weights it starts from shaped it
        channels_last = wants_channels_last(self.model, device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        if cfg.compile:
            self.model.compile()  # in place: the forward is compiled, the state dict keeps its keys
        self.stepper = distributed.wrap(self.method, self.model, ranks, device)  # DDP over several ranks
        self.optimizer = build_optimizer(self.method.param_groups(self.model), cfg)
        self.loader = make_loader(self.data.train, cfg, train=True, device_type=device.type, rank=ranks.rank,
                                  world=ranks.world, mean=self.data.info.mean)
        source = data_path(self.loader, device.type)  # what train/data_wait waits on
        self.log(f"data: batches from {source}")
        # made once: its worker processes (kept between evaluations) start once, not at each evaluation
        self.val_loader = make_loader(self.data.val, cfg, train=False, device_type=device.type, sharing=ranks.world)
        self.steps_per_epoch = len(self.loader.batch_sampler) // cfg.accum_steps  # a step: accum_steps batches
        if self.steps_per_epoch == 0:
            raise DataError(f"batch_size {cfg.batch_size} is larger than the training set "
                            f"({len(self.data.train)} images); lower batch_size")
        self.plan = Schedule.from_config(cfg, self.steps_per_epoch)
        self.scheduler = build_scheduler(self.optimizer, round(cfg.warmup_epochs * self.steps_per_epoch),
                                         self.plan.total)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        # timm's EMA of the weights, evaluated beside them (val_ema/...) and kept in checkpoints
        self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay) if cfg.ema else None
        self.ckpts = Checkpoints(store, run_id, token=self.token)
        self.best_key, self.best_higher = cfg.best_rule()
        self.best_value: float | None = None
        self.reporter = Reporter(store, run_id, token=self.token)
        self.system = SystemMetrics(device)  # sys/... beside the training metrics
        if ranks.main:
            self.reporter.environment(environment() | {"batches from": source})  # shown beside the run
        self.snap_batch = fixed_batch(self.data, self.transform)
        self.step = 0

    def _build(self) -> None:
        """Each rank's own preparation: its share of the CPU, the data, the starting weights, the
        model, the batch transform; on a CPU, whether a step fits in memory (rank 0 measures)."""
        store, run, cfg, ranks, device = self.store, self.run, self.cfg, self.ranks, self.device
        seed_rngs(cfg.seed)  # the same initial weights on every rank
        self.threads = CpuShare(store, cfg.threads, share=ranks.world)
        self.log(f"run {run.id}: {run.method} on {device} ({torch.get_num_threads()} CPU thread{'s' if torch.get_num_threads() > 1 else ''}), "
                 f"precision {self.amp or torch.float32}; loading data")
        self.data = load_data(cfg, store, fill=ranks.local == 0)  # one fill of a new folder's cache per machine
        self.data_fingerprint = data_fingerprint(self.data)
        for note in self.data.notes:
            self.log(f"data: {note}")
        source = starting_weights(cfg, store, run, self.log)
        if source is not None:
            self.cfg = cfg = fit_config(cfg, source, self.log)
            if ranks.main:
                store.update_run(run.id, config=cfg.to_dict())
        self.method: Method = get_method(run.method)(cfg, self.data.info, parent_runs(store, run.id, weights=True))
        self.method.shard = (ranks.rank, ranks.world)
        self.model = self.method.build().to(device)
        if source is not None:
            start_from(store, run.id, self.method.init_target(self.model), source, self.data.info.classes, self.log,
                       record=ranks.main)
        if cfg.sync_bn and ranks.world > 1:
            self.model, count = distributed.sync_batchnorm(self.model, device)
            self.log(f"sync_bn: {count} BatchNorm layers take their statistics over all {ranks.world} processes")
        self.transform = BatchTransform.for_run(cfg, self.data.info, device)
        why = system.memory_short(system.step_memory(self.model, lambda n: self.method.step(self.model, self.transform(
            *self.data.train.__getitems__([i % len(self.data.train) for i in range(n)]), True)),
            autocast(device, self.amp)), cfg.micro_batch(), cfg.nproc) if ranks.main and device.type == "cpu" else ""
        if why:
            raise WorkbenchError(why)  # every rank stops (`together`), rank 0 says why

    def resume(self) -> None:
        """Restore the newest readable checkpoint; rank 0 drops the metrics and files written after it.
        A run that has trained (its step > 0) and has no readable checkpoint is refused rather than
        restarted from step 0 over its metrics: `resume_run(from_scratch=True)` sets its step to 0."""
        found = self.ckpts.latest_readable()
        if found is not None:
            self.check_data(found[0])
            self.step = self.restore(found[0])
            self.log(f"resuming from step {self.step}")
        elif self.run.step:
            recorded = self.store.artifacts(self.run_id, "checkpoint")
            raise NoCheckpointError(self.run_id, self.run.step,
                                    f"unreadable in {paths.checkpoint_dir(self.run_id)}" if recorded else "")
        elif self.run.total_steps:  # it had started before (a resume --from-scratch, say): said, not silent
            self.log("no checkpoint to resume from: starting again from step 0")
        if self.ranks.rank:  # other ranks augment and mask other random draws
            seed_rngs(self.cfg.seed + 7919 * self.ranks.rank + self.step)
        if not self.ranks.main:
            return
        store, run_id = self.store, self.run_id
        # what the crashed attempt wrote after the restored step
        doomed = store.rewind(run_id, self.step, self.plan.total, ("image", "checkpoint", BEST), self.token)
        if doomed is None:  # another start holds the run (this worker was frozen while it started)
            self.stop.lose(taken_from(store, run_id))
            return
        for art in doomed:
            store.abspath(art).unlink(missing_ok=True)
        best = store.artifacts(run_id, BEST)
        self.best_value = best[-1].meta["value"] if best else None
        params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)  # not a frozen teacher
        self.reporter.summary({"params": params})
        world = self.ranks.world
        self.log(f"model: {params:,} trained parameters ({sum(p.numel() for p in self.model.parameters()):,} in "
                 f"all)" + (f"; {world} processes, {self.cfg.batch_size // world} images each per step"
                            if world > 1 else "") + (f"; {self.cfg.accum_steps} batches of {self.cfg.micro_batch()}"
                                                     f" accumulated per step" if self.cfg.accum_steps > 1 else ""))

    def check_data(self, state: dict[str, Any]) -> None:
        """Refuse a checkpoint trained on other classes than the dataset has now: its outputs stand for
        its classes in their order, so going on would mislabel images (or not fit the model at all).
        Other images under the same classes are said (log, the run's warnings) and trained on."""
        if "data" not in state:  # checkpoints from before the data description was stored in them
            return
        step, was, now = int(state["step"]), list(state["data"]["classes"]), self.data.info.classes
        if was != now:
            raise DataError(classes_changed(self.run_id, self.cfg.dataset, step, was, now))
        files = self.data.files  # a checkpoint from before 2026-11-30 has only the fingerprint
        if self.ranks.main and (state.get("data_fingerprint", self.data_fingerprint) != self.data_fingerprint
                                or state.get("data_files", files) != files):
            warning = (f"resumed at step {step} on other images: dataset {self.cfg.dataset!r} has the classes its "
                       f"checkpoint was trained on but not the same images (files added, removed or edited); the "
                       f"run went on with the images as they are now")
            self.log(f"warning: {warning}")
            self.reporter.warn(warning)

    def loop(self) -> bool:
        """Step until the plan's last step or a stop request (agreed by every rank); True if finished.
        A step is `accum_steps` loader batches, each of batch_size / accum_steps images."""
        stop = self.stop
        self.model.train()
        window = Window(self.device)
        accum = self.cfg.accum_steps
        vote = distributed.StopVote(self.ranks, self.device)
        while self.step < self.plan.total:
            self.loader.batch_sampler.set_epoch(self.step // self.steps_per_epoch,
                                                skip=(self.step % self.steps_per_epoch) * accum)
            batches: list[tuple[torch.Tensor, torch.Tensor]] = []
            for batch in self.loader:
                batches.append(batch)
                if len(batches) < accum:
                    continue
                window.batch_arrived()
                out, images = self.train_step(batches)
                batches = []
                window.step_done(out, images * self.ranks.world)
                self.after_step(window)
                if vote(stop.requested):
                    vote.settle()
                    return self.step >= self.plan.total
                if self.step >= self.plan.total or self.step % self.steps_per_epoch == 0:
                    break  # an epoch's batches beyond its last whole step are left out
        vote.settle()
        return True

    def train_step(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[dict[str, torch.Tensor], int]:
        """One optimizer step on batches of [B, 3, H, W] uint8, their gradients summed: the same
        arithmetic as one batch of them all. (The method's outputs averaged over them, images.)"""
        self.method.on_step(self.step, self.plan.total)
        self.optimizer.zero_grad(set_to_none=True)
        outs = []
        for i, (images, labels) in enumerate(batches):
            images, labels = self.transform(images, labels, True)
            images = images.contiguous(memory_format=self.memory_format)
            with distributed.accumulating(self.stepper, last=i == len(batches) - 1):
                with autocast(self.device, self.amp):
                    out = self.stepper(images, labels)
                self.scaler.scale(out["loss"] / len(batches)).backward()
            outs.append({k: v.detach().float() for k, v in out.items()})
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step_update(self.step + 1)
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.step)
        return {k: torch.stack([o[k] for o in outs]).mean() for k in outs[0]}, sum(len(b[0]) for b in batches)

    def after_step(self, window: Window) -> None:
        """Rank 0's reporting when due: training metrics, evaluation, snapshots, checkpoints."""
        if not self.ranks.main:
            return
        plan, step = self.plan, self.step
        do_eval, do_ckpt = plan.due(step, plan.eval), plan.due(step, plan.checkpoint)
        do_snap = self.snap_batch is not None and plan.due(step, plan.snapshot)
        if plan.due(step, plan.log) or do_eval or do_snap or do_ckpt:
            metrics = window.metrics()
            if not math.isfinite(metrics["train/loss"]):
                raise WorkbenchError(f"the training loss became {metrics['train/loss']} at step {step}; "
                                     f"lower lr (now {self.cfg.lr}) or use precision=fp32")
            metrics["train/lr"] = current_lr(self.optimizer)
            metrics |= self.system.sample()
            self.reporter.log(step, step / self.steps_per_epoch, metrics)
            self.threads.update()
            window.reset()
        if do_eval:
            self.evaluate()
        if do_snap or do_ckpt:  # files follow: written only while the run is still this worker's
            self.reporter.flush(strict=False)
        if not self.holding():
            return
        if do_snap:
            self.model.eval()
            self.reporter.images(step, self.method.snapshot(self.model, self.snap_batch))
            self.model.train()
        if do_ckpt:
            self.save_checkpoint()
        if do_eval or do_snap or do_ckpt:  # that time counts neither as training nor as waiting for data
            window.reset()

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.val_loader:
            yield self.transform(x, y, False)

    def evaluate(self) -> None:
        """The method's metrics on the validation set (`val/...`), and the EMA weights' (`val_ema/...`)."""
        val = {f"val/{k}": v for k, v in self.measure(self.model).items()}
        if self.ema is not None:
            val |= {f"val_ema/{k}": v for k, v in self.measure(self.ema.module).items()}
        self.reporter.log(self.step, self.step / self.steps_per_epoch, val)
        self.reporter.flush(strict=False)
        if not self.holding():
            return
        self.reporter.summary(val)
        self.log(f"step {self.step}/{self.plan.total} " + " ".join(f"{k}={v:.4f}" for k, v in val.items()))
        self.keep_best(val)

    def keep_best(self, val: dict[str, float]) -> None:
        """Save the weights as the run's best when this evaluation beats every earlier one on `best_metric`."""
        value = val.get(self.best_key) if self.best_key else None
        if value is None and self.best_key:
            self.log(f"warning: no best checkpoint: this method reports no {self.best_key} "
                     f"(it reports {', '.join(val)}); set best_metric to one of them")
            self.best_key = ""  # said once
        if value is None or not math.isfinite(value):
            return
        better = self.best_value is None or (value > self.best_value if self.best_higher else value < self.best_value)
        if better:
            self.best_value = value
            if self.ckpts.save_best(self.step, {**self.weights_state(), "val": val}, self.best_key, value) is None:
                self.reporter.lose()

    def measure(self, model: torch.nn.Module) -> dict[str, float]:
        model.eval()
        with autocast(self.device, self.amp):
            metrics = self.method.evaluate(model, self.val_batches())
        self.model.train()
        return metrics

    def weights_state(self) -> dict[str, Any]:
        """What rebuilds the model as it is now: weights (and EMA), step, method, config, data."""
        return {"model": self.model.state_dict(), "step": self.step, "method": self.run.method,
                "config": self.cfg.to_dict(), "data": dataclasses.asdict(self.data.info),
                **({"ema": self.ema.module.state_dict()} if self.ema is not None else {})}

    def save_checkpoint(self) -> None:
        if self.ckpts.save(self.step, {
            **self.weights_state(), "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "data_fingerprint": self.data_fingerprint, "data_files": self.data.files, **rng_states(self.device),
        }) is None:  # another start holds the run: the stop at the next step writes nothing more
            self.reporter.lose()

    def restore(self, state: dict[str, Any]) -> int:
        """Load a checkpoint's weights (and EMA), optimizer, schedule and RNG states; its step."""
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.module.load_state_dict(state.get("ema", state["model"]))  # ema turned on later: from here
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.step_update(int(state["step"]))  # the schedule is a function of the step alone
        self.scaler.load_state_dict(state["scaler"])
        restore_rng(state, self.device)
        return int(state["step"])

    def holding(self) -> bool:
        """Whether this worker's start still holds the run, as its last write found (rank 0); once
        not, the stop that every rank agrees on at the next step writes nothing more."""
        if self.reporter.lost and not self.stop.lost:
            self.log(f"{self.reporter.lost}; stopping after this step, writing nothing more")
            self.stop.lose(self.reporter.lost)
        return self.stop.lost is None

    def finish(self, finished: bool) -> RunStatus:
        """The end-of-training report (finished) or a checkpoint to resume from (stopped); nothing
        when another start holds the run (`RunEnded`): its checkpoints are that worker's now."""
        distributed.teardown()
        status = RunStatus.FINISHED if finished else RunStatus.CANCELLED
        if not self.ranks.main:
            return status
        self.reporter.step = self.step  # the run's progress is where it stopped, even between metric rows
        self.reporter.flush()
        if not self.holding():
            raise RunEnded(f"{self.stop.lost}; stopped at step {self.step}, writing nothing more")
        if finished:
            self.model.eval()
            with torch.no_grad(), autocast(self.device, self.amp):
                report = self.method.report(self.model, self.val_batches())
            if report is not None:
                self.reporter.report(self.step, self.run.method, report[0])
                self.reporter.images(self.step, report[1])
        else:
            self.save_checkpoint()
            if not self.holding():
                raise RunEnded(f"{self.stop.lost}; stopped at step {self.step}, writing nothing more")
            self.log(f"stopped at step {self.step}; checkpoint saved, `workbench resume {self.run_id}` continues")
        return status


def _quiet(_: str) -> None:
    """The log of ranks other than 0: one voice in the worker log is enough."""

