"""Does MAE pre-training pay off at tiny scale? Pre-train a tiny MAE on the built-in shapes
(labels unused), then fine-tune it and linearly probe it, and train the same ViT shape from
random init with the same fine-tuning budget. Prints one JSON line with every top-1 and
`finetune_vs_scratch` (the ratio of fine-tuned to from-scratch top-1).

    python bench/mae_finetune.py [--pretrain-epochs 30] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import time

from common import bench_store, train_tiny


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=10, help="budget of fine-tuning and of the scratch run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    store = bench_store()
    common = [f"seed={args.seed}", f"epochs={args.epochs}"]
    seconds: dict[str, float] = {}

    def run(name: str, method: str, overrides: list[str], parents: dict[str, int] | None = None) -> int:
        start = time.perf_counter()
        run_id = train_tiny(store, method, overrides, parents, name=name)
        seconds[name] = round(time.perf_counter() - start, 1)
        return run_id

    mae = run("mae", "mae", [f"seed={args.seed}", f"epochs={args.pretrain_epochs}"])
    finetuned = run("finetune", "finetune", common, {"encoder": mae})
    probe = run("linear probe", "finetune", [*common, "mode=linear", "lr=0.01", "weight_decay=0.0"],
                {"encoder": mae})
    scratch = run("scratch", "vit", common)
    top1 = {name: store.get_run(i).summary["val/top1"]
            for name, i in [("finetune", finetuned), ("linear_probe", probe), ("scratch", scratch)]}
    print(json.dumps({"bench": "mae_finetune", "pretrain_epochs": args.pretrain_epochs, "epochs": args.epochs,
                      "mae_val_loss": round(store.get_run(mae).summary["val/loss"], 4),
                      **{f"top1_{k}": round(v, 4) for k, v in top1.items()},
                      "finetune_vs_scratch": round(top1["finetune"] / top1["scratch"], 3),
                      "seconds": seconds}))


if __name__ == "__main__":
    main()
