"""The ViT paper's masked-patch-prediction ablation at tiny scale: pre-train the same ViT with
each target (3-bit mean colour, 4x4 grid of 3-bit colours, pixel L2) on the same budget, then
linearly probe each encoder. Prints one JSON line with the three probe accuracies (the paper
found pixel L2 worst) and, for reference, a probe of an untrained encoder of the same shape.

    python bench/mpp_targets.py [--epochs 8] [--probe-epochs 5]
"""

from __future__ import annotations

import argparse
import json

from common import bench_store, train_tiny


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--probe-epochs", type=int, default=5)
    args = parser.parse_args()
    store = bench_store()

    def run(method: str, overrides: list[str], parents: dict[str, int] | None = None) -> int:
        return train_tiny(store, method, overrides, parents)

    probe = [f"epochs={args.probe_epochs}", "mode=linear", "lr=0.01", "weight_decay=0.0", "warmup_epochs=0.5"]
    result: dict[str, float] = {}
    for target in ("color3bit", "color3bit_4x4", "pixel_l2"):
        encoder = run("mpp", [f"epochs={args.epochs}", f"target={target}"])
        result[f"probe_top1_{target}"] = round(store.get_run(run("finetune", probe, {"encoder": encoder}))
                                               .summary["val/top1"], 4)
    untrained = run("mpp", ["max_steps=1"])
    result["probe_top1_untrained"] = round(store.get_run(run("finetune", probe, {"encoder": untrained}))
                                           .summary["val/top1"], 4)
    print(json.dumps({"bench": "mpp_targets", "epochs": args.epochs, "probe_epochs": args.probe_epochs, **result}))


if __name__ == "__main__":
    main()
