"""Training speed of each method: a real workbench worker against a plain PyTorch loop that
trains the same model with the same loss (the method's own `build` and `step`) on the same
normalised images, with AdamW and nothing else: no data pipeline, no augmentation, no
metrics, no store. Prints one JSON line with images/s of both and their ratio per method
(workbench / plain; 1.0 = no cost for everything the workbench adds).

    python bench/throughput.py [--steps 200] [--methods vit swin cnn mae deit mpp dvae]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from overhead import WARMUP, workbench_run

# methods that train without a parent run; deit alone (distill=none) for the same reason
OVERRIDES = {"deit": ("distill=none",)}


def plain_loop(method_name: str, steps: int) -> float:
    """Seconds per step of a bare loop over the method's model and loss."""
    import torch

    from workbench.data import shapes
    from workbench.engine.optim import build_optimizer
    from workbench.methods import get_method, make_config
    from workbench.methods.base import DataInfo

    cfg = make_config(method_name, "tiny", list(OVERRIDES.get(method_name, ())))
    torch.manual_seed(0)
    splits, meta = shapes.load(cfg.image_size)
    images = torch.tensor(splits["train"].images[:]).permute(0, 3, 1, 2).float()
    images = (images / 255 - torch.tensor(meta["mean"]).view(1, 3, 1, 1)) / torch.tensor(meta["std"]).view(1, 3, 1, 1)
    labels = torch.from_numpy(splits["train"].labels).long()
    method = get_method(method_name)(cfg, DataInfo(list(shapes.CLASSES), meta["mean"], meta["std"], cfg.image_size))
    model = method.build()
    optimizer = build_optimizer(method.param_groups(model), cfg)
    model.train()
    start = 0.0
    for step in range(steps):
        idx = torch.randint(0, len(labels), (cfg.batch_size,))
        method.on_step(step, steps)
        loss = method.step(model, (images[idx], labels[idx]))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step + 1 == WARMUP:
            start = time.perf_counter()
    return (time.perf_counter() - start) / (steps - WARMUP)


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
        plain = plain_loop(name, args.steps)
        ours, _ = workbench_run(args.steps, name, OVERRIDES.get(name, ()))
        result[name] = {"plain_images_per_s": round(batch / plain, 1), "workbench_images_per_s": round(batch / ours, 1),
                        "ratio": round(plain / ours, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
