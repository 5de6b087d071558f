"""The ViT paper's position-embedding comparison (Appendix D.4, Table 8) at tiny scale: the same
ViT with a learned 1-D, a learned 2-D (X and Y tables), a fixed 2-D sin-cos and no position
embedding, each trained with every seed. Prints one JSON line with each variant's val top-1
per seed, mean and sample sd (the paper: any embedding beats none by about 3 points, 1-D and
2-D about equal). Runs go `--parallel` at a time, each in its own process on its share of the
cores.

    python bench/pos_embed.py [--seeds 0 1 2] [--epochs 8] [--parallel 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time

from common import bench_store, train_tiny

from workbench import paths

VARIANTS = ("learned-1d", "learned-2d", "sincos-2d", "none")


def top1(job: tuple[str, int, int, int]) -> float:
    """Train one (variant, seed, epochs, threads) run in this process; its final val top-1."""
    variant, seed, epochs, threads = job
    store = bench_store()  # the home the parent made (WORKBENCH_HOME is inherited)
    run_id = train_tiny(store, "vit", [f"pos_embed={variant}", f"seed={seed}", f"epochs={epochs}",
                                       f"threads={threads}"], name=f"{variant} seed {seed}")
    return store.get_run(run_id).summary["val/top1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    bench_store()  # one throw-away home for every run
    threads = max(1, paths.cpus() // args.parallel)
    jobs = [(variant, seed, args.epochs, threads) for seed in args.seeds for variant in VARIANTS]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.parallel, maxtasksperchild=1) as pool:
        values = pool.map(top1, jobs, chunksize=1)
    result: dict = {"bench": "pos_embed", "epochs": args.epochs, "seeds": args.seeds, "parallel": args.parallel}
    for variant in VARIANTS:
        scores = [v for (name, *_), v in zip(jobs, values) if name == variant]
        result[variant] = {"top1": [round(v, 4) for v in scores], "mean": round(statistics.mean(scores), 4),
                           "sd": round(statistics.stdev(scores), 4) if len(scores) > 1 else None}
    result["wall_s"] = round(time.perf_counter() - start)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
