"""ViT vs Swin vs MobileViT on the same data and epoch budget, each near 0.9 M parameters (each
with its own tiny-preset recipe: learning rate, warm-up, augmentation). Prints one JSON line with
every model's parameter count, top-1 and training images/s, and each one's ratio to ViT.

    python bench/backbones.py [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import statistics

from common import bench_store, train_tiny

# (label, method, overrides): sized to ~0.9 M parameters each at 32 px and 10 classes
MODELS = (
    ("vit", "vit", ["width=128", "depth=7", "heads=4"]),                    # 0.94 M, 8x8 tokens of 4x4 px
    ("swin", "swin", ["embed_dim=48", "depths=2,2,2", "heads=3,6,12"]),    # 0.88 M, 8x8 -> 4x4 -> 2x2 tokens
    ("mobilevit", "cnn", ["arch=mobilevit_xxs"]),                           # 0.95 M, timm's smallest MobileViT
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    store = bench_store()
    result: dict = {"bench": "backbones", "epochs": args.epochs}
    for label, method, overrides in MODELS:
        run_id = train_tiny(store, method, [*overrides, f"epochs={args.epochs}"], name=label)
        run = store.get_run(run_id)
        speeds = [value for _, _, _, _, value, _ in store.metrics(run_id, key="train/images_per_s")]
        result[f"{label}_params"] = run.summary["params"]
        result[f"{label}_top1"] = round(run.summary["val/top1"], 4)
        result[f"{label}_images_per_s"] = round(statistics.median(speeds), 1)
    for label, _, _ in MODELS[1:]:
        result[f"{label}_vs_vit_top1"] = round(result[f"{label}_top1"] / result["vit_top1"], 3)
        result[f"{label}_vs_vit_speed"] = round(result[f"{label}_images_per_s"] / result["vit_images_per_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
