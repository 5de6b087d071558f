"""What a pretrained start is worth: a tiny ViT trained on five of the built-in shape classes
(circle, ring, triangle, square, pentagon; all their training images), then a ViT on the other
five (star, cross, crescent, heart, arrow) with only `--per-class` training images each, started
from those weights (`init=run:ID`, the head re-initialised) vs from random weights, the same
budget. Both splits are written as image folders and registered like a user's own data.
Prints one JSON line: each start's val top-1 per seed, mean and sd, and the gain.

    python bench/pretrained.py [--per-class 40] [--epochs 30] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from common import bench_store, train_tiny
from PIL import Image

SOURCE, TARGET = range(0, 5), range(5, 10)


def write_folder(folder: Path, images, labels, classes: list[str], keep: range, per_class: int | None) -> None:
    """Images of the classes in `keep` as folder/CLASS/N.png, at most `per_class` of each."""
    counts = {c: 0 for c in keep}
    for image, label in zip(images, labels):
        label = int(label)
        if label in counts and (per_class is None or counts[label] < per_class):
            (folder / classes[label]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / classes[label] / f"{counts[label]:05d}.png")
            counts[label] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--source-epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    store = bench_store()
    from workbench.data import registry, shapes

    splits, meta = shapes.load(32)
    root = Path(os.environ["WORKBENCH_HOME"]) / "bench-data"
    for name, keep, per_class in (("five-a", SOURCE, None), ("five-b", TARGET, args.per_class)):
        write_folder(root / name / "train", splits["train"].images, splits["train"].labels, meta["classes"], keep,
                     per_class)
        write_folder(root / name / "val", splits["val"].images, splits["val"].labels, meta["classes"], keep, None)
        registry.register(store, name, "imagefolder", root / name / "train", val_path=root / name / "val")
    start = time.perf_counter()
    source = train_tiny(store, "vit", ["dataset=five-a", f"epochs={args.source_epochs}"], name="source: 5 classes")
    result: dict = {"bench": "pretrained", "per_class": args.per_class, "epochs": args.epochs, "seeds": args.seeds,
                    "source_top1": round(store.get_run(source).summary["val/top1"], 4)}
    # a small set: more epochs than the tiny preset, a smaller batch (200 images are 4 steps an epoch)
    budget = ["dataset=five-b", f"epochs={args.epochs}", "batch_size=50", "warmup_epochs=3"]
    for label, extra in (("scratch", []), ("pretrained", [f"init=run:{source}"])):
        scores = [store.get_run(train_tiny(store, "vit", [*budget, *extra, f"seed={seed}"])).summary["val/top1"]
                  for seed in args.seeds]
        result[label] = {"top1": [round(s, 4) for s in scores], "mean": round(statistics.mean(scores), 4),
                         "sd": round(statistics.stdev(scores), 4) if len(scores) > 1 else None}
    result["gain"] = round(result["pretrained"]["mean"] - result["scratch"]["mean"], 4)
    result["wall_s"] = round(time.perf_counter() - start)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
