"""How close the memory check of a CPU run (`workbench.engine.system.memory_short`) comes to what
a training step takes: per method, at the paper geometry (ViT-B/16 at 224 px; a small one with
--small), the check's lower bound for a batch (the activations its probes of two and four images
measure, for that batch, plus AdamW's two moments) against the peak resident memory
two real steps (forward, backward, AdamW) add, each method in a fresh process. A ratio above
1.0 is the backward pass's own temporaries, which the check leaves out; below 1.0 the check
would refuse runs that fit. Prints one JSON line.

    python bench/memory.py [--batch 16] [--small] [--methods vit mae swin cnn]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

METHODS = ("vit", "mae", "mpp", "swin", "cnn")  # those that need no parent run


def one(method: str, batch: int, small: bool) -> dict:
    """The check's bound and the measured peak growth of one step, in this process."""
    import psutil
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import bench_store

    from workbench.data.loading import BatchTransform, load_data
    from workbench.engine.optim import build_optimizer
    from workbench.engine.system import step_memory
    from workbench.methods import get_method, make_config

    cfg = make_config(method, "tiny" if small else "paper", ["accum_steps=1", f"batch_size={batch}"])
    data = load_data(cfg, bench_store())
    runner = get_method(method)(cfg, data.info, {})
    model = runner.build()
    optimizer = build_optimizer(runner.param_groups(model), cfg)
    transform = BatchTransform.for_run(cfg, data.info, torch.device("cpu"))

    def step(n: int) -> torch.Tensor:
        return runner.step(model, transform(*data.train.__getitems__(list(range(n))), True))["loss"]

    memory = step_memory(model, step, contextlib.nullcontext())
    bound = memory.need(batch)
    before = psutil.Process().memory_info().rss
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts here: loading's is not counted
    for _ in range(2):  # from the second on, AdamW's moments are there during the forward and backward passes
        optimizer.zero_grad(set_to_none=True)
        step(batch).backward()
        optimizer.step()
    peak = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:"))  # Linux: kB
    grown = peak - before
    return {"mib_per_image": round(memory.per_image / 2 ** 20, 2), "mib_per_step": round(memory.per_step / 2 ** 20, 2), "bound_gib": round(bound / 2 ** 30, 3),
            "measured_gib": round(grown / 2 ** 30, 3), "measured_over_bound": round(grown / bound, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--small", action="store_true", help="the tiny preset's geometry (CI)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a method measured in this process
    args = parser.parse_args()
    if args.one:
        with contextlib.redirect_stdout(sys.stderr):  # stdout: only the JSON line
            result = one(args.one, args.batch, args.small)
        print(json.dumps(result))
        return
    out: dict = {"bench": "memory", "preset": "tiny" if args.small else "paper", "batch": args.batch}
    for method in args.methods:
        done = subprocess.run([sys.executable, __file__, "--one", method, "--batch", str(args.batch),
                               *(["--small"] if args.small else [])], capture_output=True, text=True,
                              env=os.environ)
        out[method] = (json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0
                       else {"error": done.stderr.strip().splitlines()[-1]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
