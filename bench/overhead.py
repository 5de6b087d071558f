"""Workbench overhead: the same tiny ViT trained by a bare PyTorch loop and by a workbench
worker, alternately, in one process tree. Prints one JSON line with `overhead_ratio`
(workbench seconds per step / bare seconds per step; target <= 1.03).

Both sides train the same timm ViT on the same cached shapes data with the same batch,
optimizer, schedule, clipping and augmentation. The workbench side is a real worker
process writing metrics to SQLite; its time per step comes from the wall times of its own
metric rows, so start-up and the end-of-run evaluation and checkpoint are excluded, as they
are from the bare loop's timing. Rounds alternate to spread machine noise over both sides. It also reports the time from
Start to the run's first metric row (worker start-up, imports, data and model included), with a
worker started for the run and with the spare worker a window keeps (`Runner(spare=True)`, its
imports done before Start), and what the sys/... series (CPU, memory, GPU readings) cost: per
reading, and as a share of training.

    python bench/overhead.py [--steps 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

WARMUP = 20  # steps excluded from timing on both sides
CONFIG = dict(max_steps=300, log_every=10, eval_every=100000, snapshot_every=100000, checkpoint_every=100000)


def bare_loop(steps: int) -> float:
    """Seconds per step of a plain PyTorch loop over the same data and model."""
    import torch
    from timm.models.vision_transformer import VisionTransformer

    from workbench.data import shapes
    from workbench.engine.optim import build_scheduler
    from workbench.methods import make_config

    cfg = make_config("vit", "tiny", {**CONFIG, "max_steps": steps})
    torch.manual_seed(0)
    splits, meta = shapes.load(cfg.image_size)
    images = torch.from_numpy(splits["train"].images[:]).permute(0, 3, 1, 2).contiguous()
    labels = torch.from_numpy(splits["train"].labels)
    mean = torch.tensor(meta["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(meta["std"]).view(1, 3, 1, 1) * 255
    model = VisionTransformer(img_size=32, patch_size=cfg.patch_size, num_classes=10, embed_dim=cfg.width,
                              depth=cfg.depth, num_heads=cfg.heads, mlp_ratio=cfg.mlp_ratio)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = len(labels) // cfg.batch_size
    sched = build_scheduler(opt, round(cfg.warmup_epochs * per_epoch), steps)
    model.train()
    step, start = 0, 0.0
    while step < steps:
        order = torch.randperm(len(labels))
        for b in range(per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = (images[idx].float() - mean) / std
            flip = torch.rand(len(idx)) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            loss = torch.nn.functional.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            sched.step_update(step)
            if step % cfg.log_every == 0:
                loss.item()  # the workbench reads its metrics at the same rate
            if step == WARMUP:
                start = time.perf_counter()
            if step == steps:
                break
    return (time.perf_counter() - start) / (steps - WARMUP)


def _until_idle(pid: int, every: float = 0.5) -> None:
    """Wait until a process uses no CPU for `every` seconds (a spare worker done importing)."""
    import psutil

    proc, used = psutil.Process(pid), -1.0
    while (now := sum(proc.cpu_times()[:2])) != used:
        used = now
        time.sleep(every)


def workbench_run(steps: int, method: str = "vit", overrides: tuple[str, ...] = (),
                  spare: bool = False) -> tuple[float, float, int]:
    """(seconds per step of a real workbench worker, from its metric rows' wall times; seconds
    from Start to its first metric row, worker start-up and data loading included; the run's id).
    `spare`: the run goes to a spare worker that has done its imports, as in a window."""
    from workbench.jobs import Runner, create_run
    from workbench.store import RunStatus, Store
    from workbench.studies import wait_for

    store = Store()
    runner = Runner(store, spare=spare)
    if spare:
        runner.warm()
        _until_idle(runner.spare.proc.pid)
    run = create_run(store, method, preset="tiny",
                     overrides=[*(f"{k}={v}" for k, v in {**CONFIG, "max_steps": steps}.items()), *overrides])
    started = time.time()
    status = wait_for(store, runner, run.id, interval=1.0)  # its first tick starts the run
    runner.close()
    if status != RunStatus.FINISHED:
        raise SystemExit(f"workbench run ended {status}: {store.get_run(run.id).error}")
    rows = {step: wall for _, step, _, _, _, wall in store.metrics(run.id, key="train/loss")}
    first = min(wall for *_, wall in store.metrics(run.id))
    return (rows[steps] - rows[WARMUP]) / (steps - WARMUP), first - started, run.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=CONFIG["max_steps"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        print(bare_loop(args.steps))
        return

    home = tempfile.mkdtemp(prefix="wb-bench-")
    os.environ.setdefault("WORKBENCH_HOME", home)
    from workbench.data import shapes

    shapes.load(32)  # generate the cache outside the timed runs
    bare, wb, first, warm = [], [], [], []
    for _ in range(args.rounds):
        child = subprocess.run([sys.executable, __file__, "--bare-child", "--steps", str(args.steps)],
                               capture_output=True, text=True, check=True, env=dict(os.environ))
        bare.append(float(child.stdout.strip().splitlines()[-1]))
        per_step, to_first, _ = workbench_run(args.steps)
        wb.append(per_step)
        first.append(to_first)
        warm.append(workbench_run(WARMUP + CONFIG["log_every"], spare=True)[1])
    ratio = statistics.median(w / b for w, b in zip(wb, bare))
    read_us, share = sys_metrics_cost(statistics.median(wb))
    print(json.dumps({"bench": "overhead", "steps": args.steps, "rounds": args.rounds,
                      "bare_ms_per_step": round(1000 * statistics.median(bare), 2),
                      "workbench_ms_per_step": round(1000 * statistics.median(wb), 2),
                      "overhead_ratio": round(ratio, 4), "target": 1.03,
                      "time_to_first_metric_s": round(statistics.median(first), 2),
                      "time_to_first_metric_spare_s": round(statistics.median(warm), 2),
                      "sys_metrics_read_us": round(read_us, 1), "sys_metrics_share_of_training": share}))


def sys_metrics_cost(step_s: float, calls: int = 2000) -> tuple[float, float]:
    """What the sys/... series cost: microseconds per reading (psutil; NVML too on a GPU run), and
    their share of training time at this step time (one reading every `SystemMetrics.every`
    seconds, a clock check at each logged step, every `log_every` steps)."""
    import torch

    from workbench.engine.system import SystemMetrics

    reader = SystemMetrics(torch.device("cpu"), every=0.0)
    start = time.perf_counter()
    for _ in range(calls):
        reader.sample()
    read_s = (time.perf_counter() - start) / calls
    idle = SystemMetrics(torch.device("cpu"))  # between readings: the clock check alone
    idle.sample()
    start = time.perf_counter()
    for _ in range(calls):
        idle.sample()
    check_s = (time.perf_counter() - start) / calls
    share = read_s / idle.every + check_s / (CONFIG["log_every"] * step_s)
    return read_s * 1e6, float(f"{share:.2g}")


if __name__ == "__main__":
    main()
