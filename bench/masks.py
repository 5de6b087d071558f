"""How long a training step's masks take to draw on the host, per strategy, at ViT-B/16's 14 x 14
grid: for one process's batch, and for one of 8 processes (each of N data-parallel processes
draws the N processes' masks and keeps its own rows, so that N processes mask as one). The
reference is `random`, one numpy argsort over the batch. Prints one JSON line.

    python bench/masks.py [--batch 256] [--processes 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from workbench.data.masking import make_mask

# (strategy, ratio, exact): MAE's, BEiT's (up to the ratio), and the grid ablation's
STRATEGIES = (("random", 0.75, True), ("block", 0.4, False), ("grid", 0.75, True))


def best_ms(strategy: str, batch: int, ratio: float, exact: bool, rounds: int, processes: int = 1) -> float:
    """The fastest of `rounds` draws of one of `processes` processes' masks (its share of `processes`
    batches), in ms (noise on a shared machine only adds)."""
    rng, times = np.random.default_rng(0), []
    for _ in range(rounds):
        start = time.perf_counter()
        make_mask(strategy, batch * processes, (14, 14), ratio, rng, exact=exact, keep=slice(0, None, processes))
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="one process's images per step")
    parser.add_argument("--processes", type=int, default=8, help="data-parallel processes of the larger case")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    out: dict = {"bench": "masks", "patch_grid": [14, 14], "batch": args.batch, "processes": args.processes}
    for strategy, ratio, exact in STRATEGIES:
        one, all_ = (best_ms(strategy, args.batch, ratio, exact, args.rounds, n) for n in (1, args.processes))
        out[strategy] = {"ratio": ratio, "exact": exact, "ms_one_process": round(one, 3),
                         f"ms_{args.processes}_processes": round(all_, 3)}
    for strategy, _, _ in STRATEGIES[1:]:
        out[strategy]["vs_random"] = round(out[strategy]["ms_one_process"] / out["random"]["ms_one_process"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
