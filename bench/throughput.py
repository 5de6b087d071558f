"""Training speed of each method: a real workbench worker against a plain PyTorch loop that
trains the same model with the same loss (the method's own `build` and `step`) on the same
images, normalised and flipped alike (the workbench's default augmentation), with AdamW and
nothing else: no data loader, no metrics, no store (`gpu.PlainLoop`, which bench/gpu.py times
on a GPU). Prints one JSON line with images/s of both and their ratio per method (workbench /
plain; 1.0 = no cost for everything the workbench adds).

    python bench/throughput.py [--steps 200] [--methods vit swin cnn mae deit mpp dvae]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from gpu import PlainLoop
from overhead import WARMUP, workbench_run

# methods that train without a parent run; deit alone (distill=none) for the same reason
OVERRIDES = {"deit": ("distill=none",)}


def plain_loop(run_id: int, steps: int) -> float:
    """Seconds per step of `gpu.PlainLoop` over run `run_id`'s model and loss (AdamW, the images in
    memory, normalised and flipped as the workbench's default augmentation does) on the CPU."""
    import torch

    from workbench.store import Store

    return PlainLoop(Store(), run_id, torch.device("cpu")).time(steps - WARMUP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--methods", nargs="+", default=["vit", "swin", "cnn", "mae", "deit", "mpp", "dvae"])
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-bench-"))
    from workbench.methods import make_config

    result: dict = {"bench": "throughput", "steps": args.steps}
    for name in args.methods:
        batch = make_config(name, "tiny").batch_size
        ours, _, run_id = workbench_run(args.steps, name, OVERRIDES.get(name, ()))  # then the same model, plain
        plain = plain_loop(run_id, args.steps)
        result[name] = {"plain_images_per_s": round(batch / plain, 1), "workbench_images_per_s": round(batch / ours, 1),
                        "ratio": round(plain / ours, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
