"""Training speed on a GPU at the papers' geometry: the workbench against a plain loop.

For vit, mae, deit (with its RegNetY-16GF teacher), beit (with its dVAE tokenizer), swin and cnn
at the `paper` preset's model and image size (ViT-B/16, Swin-T and RegNetY-16GF at 224 px), with
one batch size for all (`--batch`, no accumulation) and plain flips as the only augmentation:

- `workbench`: a real run trained in this process by `execute`, as a worker trains it (the data
  loader from the dataset's cache, the on-device transform, metrics to the store); its seconds
  per step come from the wall times of its metric rows, warm-up excluded;
- `plain`: a loop written here over the same model and loss (the method's `build` and `step`),
  bf16 autocast, fused AdamW, the same batch size, images already on the device;
- `mfu`: achieved FLOP/s over the device's peak, the FLOPs of one training step (forward and
  backward, a teacher's or tokenizer's forward included) counted by `torch.utils.flop_counter`;
  the peak is the bf16 dense figure of the GPU's datasheet (`--peak-tflops`), and the measured
  rate of a large bf16 matrix product is reported beside it;
- peak memory of each; host syncs in one plain step (CUDA's sync debug mode); the attention
  kernel the ViT's step ran; `compile` for the ViT (and MAE); channels_last for the CNN;
- the time from Start (a real worker process) to the first metric row of a ViT run;
- `vit_files`, `vit_files_device`: the ViT reading a JPEG folder (`--jpegs` images written at 256
  px) from its files, decoded by Pillow in loader processes (`decode=loader`) and by nvJPEG on the
  GPU (`decode=device`); their plain loop is the ViT's, images already on the device.

One JSON line on stdout; each case as it ends on stderr. `--small` runs the tiny presets at
32 px (what runs on a CPU, with the same fields: what CI checks). A case that fails is reported
with its error and the others go on; `--budget-s` leaves out the cases that would start late.

    python bench/gpu.py [--small] [--batch 256] [--steps 40] [--budget-s 420]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

WARM = 15          # steps left out of every timing (compilation, allocator, cuDNN autotuning)
LOG = 5            # the workbench run's metric rows: every LOG steps
DATASHEET_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.0, "A10": 125.0}

# (case, method, extra overrides, compile): the order is the order of importance when time runs short
CASES: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("vit", "vit", (), False),
    ("mae", "mae", (), False),
    ("vit_files", "vit", ("dataset=jpegs",), False),
    ("vit_files_device", "vit", ("dataset=jpegs", "decode=device"), False),
    ("deit", "deit", (), False),
    ("beit", "beit", (), False),
    ("swin", "swin", (), False),
    ("cnn", "cnn", (), False),
    ("vit_compile", "vit", (), True),
    ("mae_compile", "mae", (), True),
]
PARENTS = {"deit": ("teacher", "cnn"), "beit": ("tokenizer", "dvae")}
FILES = "dataset=jpegs"  # the files cases: bench/data.py's JPEG folder (256 px), read from its files


def common_overrides(batch: int, steps: int, device: str) -> list[str]:
    """What every bench run shares: one batch, no accumulation, no regularisers or EMA that the
    plain loop lacks, metrics every LOG steps and nothing else before the end."""
    return [f"batch_size={batch}", "accum_steps=1", f"max_steps={WARM + steps}", f"log_every={LOG}",
            "eval_every=1000000", "snapshot_every=1000000", "checkpoint_every=1000000", "augment=flip",
            "mixup=0", "cutmix=0", "reprob=0", "repeated_aug=1", "ema=false", f"device={device}"]


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(device: Any) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2) if device.type == "cuda" else None


def reset_memory(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def train_parent(store: Any, method: str, preset: str, device: str) -> int:
    """A parent run (teacher, tokenizer) trained for one step: its weights are what the child loads."""
    from workbench.engine.execute import execute
    from workbench.jobs import create_run
    from workbench.store import RunStatus

    run = create_run(store, method, preset=preset, overrides=["max_steps=1", "batch_size=32", "accum_steps=1",
                                                               f"device={device}"])
    if execute(store, run.id, log=lambda line: print(line, file=sys.stderr)) != RunStatus.FINISHED:
        raise RuntimeError(f"parent {method} run ended {store.get_run(run.id).status}: {store.get_run(run.id).error}")
    return run.id


def workbench_case(store: Any, method: str, preset: str, overrides: list[str], parents: dict[str, int],
                   device: Any, sync_debug: bool = False) -> tuple[int, dict[str, Any]]:
    """(run id, its speed): a real run trained in-process, timed by its own metric rows."""
    import warnings

    import torch

    from workbench.engine.execute import execute
    from workbench.jobs import create_run
    from workbench.store import RunStatus

    run = create_run(store, method, preset=preset, overrides=overrides, parents=parents)
    reset_memory(device)
    with warnings.catch_warnings(record=True) as caught:
        if sync_debug:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        try:
            status = execute(store, run.id, log=lambda line: print(line, file=sys.stderr))
        finally:
            if sync_debug:
                torch.cuda.set_sync_debug_mode("default")
    syncs: dict[str, int] = {}
    for w in caught:
        if "synchroniz" in str(w.message):
            where = f"{os.path.relpath(w.filename)}:{w.lineno}"
            syncs[where] = syncs.get(where, 0) + 1
    if status != RunStatus.FINISHED:
        raise RuntimeError(f"workbench run ended {store.get_run(run.id).status}: {store.get_run(run.id).error}")
    walls = {step: wall for _, step, _, _, _, wall in store.metrics(run.id, key="train/loss")}
    waits = [value for _, step, _, _, value, _ in store.metrics(run.id, key="train/data_wait") if step > WARM]
    last = max(walls)
    per_step = (walls[last] - walls[WARM]) / (last - WARM)
    return run.id, {"s_per_step": per_step, "data_wait": round(sum(waits) / max(1, len(waits)), 3),
                    "peak_gib": peak_memory(device), **({"syncs": syncs} if sync_debug else {})}


class PlainLoop:
    """The reference: the run's model and loss (its method's `build` and `step`), fused AdamW,
    bf16 autocast on a GPU, batches drawn from the dataset's images held on the device and
    normalised and flipped there, nothing else."""

    def __init__(self, store: Any, run_id: int, device: Any, channels_last: bool = False,
                 compile_model: bool = False) -> None:
        import numpy as np
        import torch

        from workbench.data import DataInfo, shapes
        from workbench.engine.checkpoint import parent_runs
        from workbench.engine.device import autocast_dtype
        from workbench.methods import config_from_dict, get_method

        run = store.get_run(run_id)
        self.cfg = cfg = config_from_dict(run.method, run.config)
        splits, meta = shapes.load(cfg.image_size)
        torch.manual_seed(cfg.seed)
        self.device, self.amp = device, autocast_dtype(cfg.precision, device)
        self.images = torch.from_numpy(np.array(splits["train"].images)).to(device).permute(0, 3, 1, 2)
        self.labels = torch.from_numpy(splits["train"].labels).to(device)
        self.mean = torch.tensor(meta["mean"], device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(meta["std"], device=device).view(1, 3, 1, 1) * 255
        info = DataInfo(list(meta["classes"]), tuple(meta["mean"]), tuple(meta["std"]), cfg.image_size)
        self.method = get_method(run.method)(cfg, info, parent_runs(store, run_id, weights=True))
        self.model = self.method.build().to(device)
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.format)
        if compile_model:
            self.model.compile()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.peak_lr(), weight_decay=cfg.weight_decay,
                                           fused=device.type in ("cpu", "cuda"))
        self.model.train()
        self.step_count = 0

    def batch(self) -> tuple[Any, Any]:
        import torch

        idx = torch.randint(0, len(self.labels), (self.cfg.batch_size,), device=self.device)
        x = (self.images[idx].float() - self.mean) / self.std
        flip = torch.rand(x.shape[0], device=self.device) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        return x.contiguous(memory_format=self.format), self.labels[idx]

    def step(self) -> None:
        import torch

        from workbench.engine.device import autocast

        images, labels = self.batch()
        self.method.on_step(self.step_count, 10_000)
        with autocast(self.device, self.amp):
            loss = self.method.step(self.model, (images, labels))["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.step_count += 1

    def time(self, steps: int) -> float:
        """Seconds per step over `steps` steps after WARM."""
        for _ in range(WARM):
            self.step()
        sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        sync(self.device)
        return (time.perf_counter() - start) / steps

    def flops(self) -> int:
        """FLOPs of one training step (forward and backward), as torch's flop counter counts them."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            self.step()
        return int(counter.get_total_flops())

    def syncs(self) -> list[str]:
        """Where one step waits for the GPU: the source lines CUDA's sync debug mode warns at."""
        import warnings

        import torch

        if self.device.type != "cuda":
            return []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                self.step()
                sync(self.device)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sorted({f"{os.path.relpath(w.filename)}:{w.lineno}" for w in caught
                       if "synchroniz" in str(w.message)})

    def attention_kernels(self) -> list[str]:
        """The GPU kernels of one step whose names say attention (flash, cuDNN, memory-efficient, math)."""
        from torch.profiler import ProfilerActivity, profile

        if self.device.type != "cuda":
            return []
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            self.step()
            sync(self.device)
        names = {e.key for e in prof.key_averages()}
        return sorted(n[:90] for n in names if any(s in n.lower() for s in ("flash", "fmha", "attention", "sdpa",
                                                                              "efficient")))


def matmul_tflops(device: Any) -> float:
    """The measured rate of a large matrix product (bf16 on a GPU, fp32 on a CPU), TFLOP/s."""
    import torch

    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    reps = 10
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12


def first_metric_s(store: Any, preset: str, batch: int, device: str) -> float:
    """Seconds from Start (the Runner starting a real worker process) to the run's first metric row."""
    from workbench.jobs import Runner, create_run
    from workbench.store import RunStatus
    from workbench.studies import wait_for

    run = create_run(store, "vit", preset=preset, overrides=[*common_overrides(batch, 5, device),
                                                             "max_steps=2", "log_every=1"])
    started = time.time()
    status = wait_for(store, Runner(store), run.id, interval=0.2)
    if status != RunStatus.FINISHED:
        raise RuntimeError(f"run ended {status}: {store.get_run(run.id).error}")
    return min(wall for *_, wall in store.metrics(run.id)) - started


def run_case(result: dict, name: str, fn: Callable[[], dict], deadline: float) -> None:
    """One case into `result`; an error is recorded, not raised; past the deadline it is left out."""
    if time.monotonic() > deadline:
        result[name] = {"skipped": "time budget spent"}
        return
    start = time.monotonic()
    try:
        result[name] = fn()
    except Exception as exc:  # a bench reports every case it can
        traceback.print_exc()
        result[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    result[name]["case_s"] = round(time.monotonic() - start, 1)
    print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny presets at 32 px (runs on a CPU)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per loop (after 15 warm-up steps)")
    parser.add_argument("--cases", nargs="+", default=[c[0] for c in CASES])
    parser.add_argument("--budget-s", type=float, default=1e9, help="start no case after this many seconds")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="the device's bf16 dense peak "
                        "(default: from the GPU's name; on a CPU the measured fp32 matrix product)")
    parser.add_argument("--out", default="", help="also write the JSON line to this file")
    parser.add_argument("--set", nargs="*", default=[], help="more KEY=VALUE for the workbench runs")
    parser.add_argument("--jpegs", type=int, default=10_000, help="images in the files cases' folder")
    parser.add_argument("--workbench-only", action="store_true", help="no plain loop (diagnosis)")
    parser.add_argument("--sync-debug", action="store_true", help="count where the workbench run waits "
                        "for the GPU (CUDA's sync debug mode; slows it)")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget_s
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-gpu-bench-"))
    import timm
    import torch

    from workbench.store import Store

    store = Store()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    preset, dev = ("tiny" if args.small else "paper"), ("cuda" if device.type == "cuda" else "cpu")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    measured = matmul_tflops(device)
    datasheet = args.peak_tflops or next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in gpu), 0.0)
    peak = datasheet or measured
    result: dict[str, Any] = {
        "bench": "gpu", "device": gpu or "cpu", "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None, "timm": timm.__version__,
        "preset": preset, "batch": args.batch, "steps": args.steps, "warmup": WARM,
        "peak_tflops": round(peak, 3), "peak_source": "datasheet bf16 dense" if datasheet else "measured matmul",
        "matmul_tflops": round(measured, 3)}
    parents: dict[str, int] = {}

    def case(method: str, extra: tuple[str, ...], compile_model: bool) -> Callable[[], dict]:
        def measure() -> dict:
            if method in PARENTS and method not in parents:
                role, parent_method = PARENTS[method]
                parents[method] = train_parent(store, parent_method, preset, dev)
            links = {PARENTS[method][0]: parents[method]} if method in PARENTS else {}
            if FILES in extra and store.get_dataset("jpegs") is None:
                from data import registered_folder  # bench/data.py, beside this script

                registered_folder(store, "jpegs", args.jpegs)
            overrides = [*common_overrides(args.batch, args.steps, dev), *extra,
                         *(["compile=true"] if compile_model else []), *args.set]
            run_id, ours = workbench_case(store, method, preset, overrides, links, device,
                                          args.sync_debug and device.type == "cuda")
            out: dict[str, Any] = {"workbench_images_per_s": round(args.batch / ours["s_per_step"], 1),
                                   "workbench_peak_gib": ours["peak_gib"], "data_wait": ours["data_wait"],
                                   **({"workbench_syncs": ours["syncs"]} if "syncs" in ours else {})}
            layouts = [False, True] if method == "cnn" and device.type == "cuda" else [False]
            if args.workbench_only:
                return out
            for channels_last in layouts:
                reset_memory(device)
                plain = PlainLoop(store, run_id, device, channels_last, compile_model)
                per_step = plain.time(args.steps)
                suffix = "_channels_last" if channels_last else ""
                out[f"plain{suffix}_images_per_s"] = round(args.batch / per_step, 1)
                out[f"plain{suffix}_peak_gib"] = peak_memory(device)
                if not channels_last:
                    flops = plain.flops()
                    out["gflops_per_image"] = round(flops / args.batch / 1e9, 2)
                    out["plain_mfu"] = round(flops / per_step / (peak * 1e12), 4)
                    out["workbench_mfu"] = round(flops / ours["s_per_step"] / (peak * 1e12), 4)
                    out["ratio"] = round(per_step / ours["s_per_step"], 3)
                    if not compile_model:
                        out["plain_syncs_per_step"] = plain.syncs()
                    if method == "vit" and not compile_model:
                        out["attention_kernels"] = plain.attention_kernels()
                del plain
            return out
        return measure

    for name, method, extra, compile_model in CASES:
        if name in args.cases:
            run_case(result, name, case(method, extra, compile_model), deadline)
    if "first_metric" in args.cases or args.cases == [c[0] for c in CASES]:
        run_case(result, "first_metric", lambda: {"start_to_first_metric_s": round(
            first_metric_s(store, preset, args.batch, dev), 2)}, deadline)
    line = json.dumps(result)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
