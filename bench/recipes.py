"""The same tiny ViT on the built-in shapes with the old recipe (flips, label smoothing off) and
with DeiT's regularisers (mixup 0.8 + CutMix 1.0, random erasing 0.25, an EMA of the weights),
over a few seeds. Prints one JSON line: each recipe's final and peak (best epoch) top-1, mean and
sd; the EMA's too. A final well below the peak is overfitting.
Whichever way it goes is the result: such regularisers are meant for long training.

    python bench/recipes.py [--epochs 20] [--seeds 2] [--recipes old deit]
"""

from __future__ import annotations

import argparse
import json
import statistics

from common import bench_store, train_tiny

RECIPES = {
    "old": ["augment=flip"],
    "deit": ["augment=flip", "mixup=0.8", "cutmix=1.0", "reprob=0.25", "ema=true", "ema_decay=0.999"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES),
                        help="which recipes (default both; one alone where a long budget leaves time for one)")
    args = parser.parse_args()
    store = bench_store()
    result: dict[str, float] = {}
    for name in args.recipes:
        overrides = RECIPES[name]
        finals: dict[str, list[float]] = {"top1": [], "peak_top1": [], "ema_top1": [], "ema_peak_top1": []}
        for seed in range(args.seeds):
            run = store.get_run(train_tiny(store, "vit", [*overrides, f"epochs={args.epochs}", f"seed={seed}"]))
            extremes = store.metric_extremes(run.id, prefix="val")  # key -> (min, max) over the epochs
            finals["top1"].append(run.summary["val/top1"])
            finals["peak_top1"].append(extremes["val/top1"][1])
            if "val_ema/top1" in run.summary:
                finals["ema_top1"].append(run.summary["val_ema/top1"])
                finals["ema_peak_top1"].append(extremes["val_ema/top1"][1])
        for key, values in finals.items():
            if values:
                result[f"{name}_{key}_mean"] = round(statistics.mean(values), 4)
                result[f"{name}_{key}_sd"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
    if {"old", "deit"} <= set(args.recipes):
        result["gain"] = round(max(result["deit_top1_mean"], result.get("deit_ema_top1_mean", 0))
                               - result["old_top1_mean"], 4)
    print(json.dumps({"bench": "recipes", "epochs": args.epochs, "seeds": args.seeds, **result}))


if __name__ == "__main__":
    main()
