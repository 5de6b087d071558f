"""Training speed of each method: a real workbench run against a plain PyTorch loop that
trains the same model with the same loss (the method's own `build` and `step`) on the same
images, normalised and flipped alike (the workbench's default augmentation), with AdamW and
nothing else: no data loader, no metrics, no store (`gpu.PlainLoop`, which bench/gpu.py times
on a GPU). Prints one JSON line with images/s of both and their ratio per method (workbench /
plain; 1.0 = no cost for everything the workbench adds).

The workbench run trains in this process as its worker would (`engine.execute`, as bench/gpu.py
does), so both sides run in the same process: launched as a worker process the same run's step
time wandered more between tries than any cost being measured (a cnn run: 75-102 ms a step).
Each round times both, in alternating order; noise only ever adds time, so each side's best
round is its figure (as `timeit` takes the minimum), and every round's ratio is printed too.

    python bench/throughput.py [--steps 200] [--rounds 3] [--methods vit swin cnn mae deit mpp dvae]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from gpu import PlainLoop, common_overrides, workbench_case

# methods that train without a parent run; deit alone (distill=none) for the same reason
OVERRIDES = {"deit": ["distill=none"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["vit", "swin", "cnn", "mae", "deit", "mpp", "dvae"])
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-bench-"))
    import torch

    from workbench.methods import make_config
    from workbench.store import Store

    store, cpu = Store(), torch.device("cpu")
    result: dict = {"bench": "throughput", "steps": args.steps, "rounds": args.rounds,
                    "threads": torch.get_num_threads()}
    for name in args.methods:
        batch = make_config(name, "tiny").batch_size
        overrides = common_overrides(batch, args.steps, "cpu") + OVERRIDES.get(name, [])
        ours, plain = [], []
        for round_ in range(args.rounds):
            def workbench() -> int:
                run_id, timing = workbench_case(store, name, "tiny", overrides, {}, cpu)
                ours.append(timing["s_per_step"])
                return run_id

            if round_ % 2 == 0:
                run_id = workbench()
                plain.append(PlainLoop(store, run_id, cpu).time(args.steps))
            else:  # the plain loop first; its model from the previous round's run
                plain.append(PlainLoop(store, run_id, cpu).time(args.steps))
                run_id = workbench()
        result[name] = {"plain_images_per_s": round(batch / min(plain), 1),
                        "workbench_images_per_s": round(batch / min(ours), 1),
                        "ratio": round(min(plain) / min(ours), 3),
                        "round_ratios": [round(p / o, 3) for p, o in zip(plain, ours)]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
