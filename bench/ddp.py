"""Data-parallel step cost: one global batch trained by one process, and by N processes with
gloo (NCCL on GPUs, one per GPU) in two ways: a flat all-reduce of every gradient after the
backward pass (the workbench's hand-written path before DDP, written here as the reference) and
PyTorch's DistributedDataParallel over `distributed.StepModule` (today's: bucketed, overlapped with
the backward pass). Images/s of each and DDP's over the flat all-reduce's, one JSON line.

    python bench/ddp.py [--method vit] [--batch 128] [--steps 40] [--procs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time

from workbench import paths

WARM = 10


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train(rank: int, world: int, mode: str, args: argparse.Namespace, port: int, out: str) -> None:
    """One process of `mode` (single, flat or ddp): WARM + args.steps steps; rank 0 writes its seconds."""
    import torch
    import torch.distributed as dist

    from workbench.data import DataInfo
    from workbench.engine.distributed import Ranks, wrap
    from workbench.methods import get_method, make_config

    cuda = torch.cuda.is_available()
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if not cuda:
        torch.set_num_threads(max(1, paths.cpus() // world))
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    cfg = make_config(args.method, "tiny", [f"batch_size={args.batch}"])
    torch.manual_seed(0)
    method = get_method(args.method)(cfg, DataInfo([str(i) for i in range(10)], (0.5,) * 3, (0.25,) * 3,
                                                   cfg.image_size))
    model = method.build().to(device)
    stepper = wrap(method, model, Ranks(rank, world, rank), device) if mode == "ddp" else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    share = args.batch // world
    images = torch.randn(share, 3, cfg.image_size, cfg.image_size, device=device)
    labels = torch.randint(0, 10, (share,), device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    for step in range(WARM + args.steps):
        if step == WARM:
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        result = stepper(images, labels) if stepper is not None else method.step(model, (images, labels))
        result["loss"].backward()
        if mode == "flat":  # every gradient in one buffer, one all-reduce, averaged, copied back
            flat = torch.cat([p.grad.flatten() for p in params])
            dist.all_reduce(flat)
            flat /= world
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        optimizer.step()
    if cuda:
        torch.cuda.synchronize(device)
    if rank == 0:
        with open(out, "w") as f:
            f.write(str(time.perf_counter() - start))
    if world > 1:
        dist.destroy_process_group()


def measure(mode: str, world: int, args: argparse.Namespace) -> float:
    """Images/s of `mode` with `world` processes for the global batch args.batch."""
    import torch.multiprocessing as mp

    out = tempfile.mktemp(prefix="wb-ddp-")
    mp.spawn(_train, args=(world, mode, args, _port(), out), nprocs=world)
    with open(out) as f:
        seconds = float(f.read())
    os.unlink(out)
    return args.batch * args.steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="vit")
    parser.add_argument("--batch", type=int, default=128, help="the global batch")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--procs", type=int, default=0, help="processes (default: the GPUs, or 2 on a CPU)")
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-bench-"))
    import torch

    args.procs = args.procs or (torch.cuda.device_count() if torch.cuda.is_available() else 2)
    single = measure("single", 1, args)
    flat = measure("flat", args.procs, args)
    ddp = measure("ddp", args.procs, args)
    backend = f"nccl x{torch.cuda.device_count()}" if torch.cuda.is_available() else "gloo (CPU)"
    print(json.dumps({"bench": "ddp", "method": args.method, "batch": args.batch, "steps": args.steps,
                      "procs": args.procs, "backend": backend, "cpu_cores": paths.cpus(),
                      "single_images_per_s": round(single, 1), "flat_allreduce_images_per_s": round(flat, 1),
                      "ddp_images_per_s": round(ddp, 1), "ddp_vs_flat": round(ddp / flat, 3),
                      "ddp_vs_single": round(ddp / single, 3)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
