"""A CPU run that cannot fit in memory is refused before its first step, in a sentence (the
out-of-memory killer would end it mid-step with no word), and the measuring changes nothing the
run draws or keeps."""

import contextlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from workbench.engine import system
from workbench.engine.execute import execute
from workbench.engine.system import memory_short, saved_for_backward, step_memory
from workbench.jobs import create_run
from workbench.store import RunStatus, Store


def test_what_a_step_keeps_for_backward_is_counted_once_without_the_weights() -> None:
    layer = torch.nn.Linear(256, 128)
    x = torch.randn(10, 256)
    kept = saved_for_backward(lambda: torch.relu(layer(x)).sum(), layer.parameters())
    assert kept == 10 * 256 * 4 + 10 * 128 * 4  # the input (for the weight's gradient) and relu's output


def test_measuring_puts_back_the_random_states_and_batchnorm_statistics() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Dropout(0.5))
    before = [b.clone() for b in model.buffers()]

    def step(n: int) -> torch.Tensor:
        np.random.rand(), random.random()  # what Mixup and augmentations draw
        return model(torch.rand(n, 3, 8, 8)).sum()  # BatchNorm's statistics move, Dropout draws

    def seeded() -> None:
        torch.manual_seed(1), np.random.seed(2), random.seed(3)

    seeded()
    expected = (torch.rand(1).item(), np.random.rand(), random.random())
    seeded()
    memory = step_memory(model, step, contextlib.nullcontext())
    assert memory.per_image > 0 and memory.trained == sum(p.numel() * 4 for p in model.parameters())
    assert memory_short(memory, micro_batch=4, processes=1) == ""
    assert (torch.rand(1).item(), np.random.rand(), random.random()) == expected
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))


def test_a_cpu_run_larger_than_the_machine_is_refused_before_its_first_step(store: Store) -> None:
    run = create_run(store, "vit", preset="paper", overrides=["image_size=96", "depth=24", "batch_size=5000",
                                                              "accum_steps=1", "max_steps=1"])
    assert execute(store, run.id, log=lambda _: None) == RunStatus.FAILED
    error = store.get_run(run.id).error
    total = psutil.virtual_memory().total / 2 ** 30
    needed = float(error.split("needs at least ")[1].split(" GiB")[0])
    assert needed > total and "a batch of 5000 keeps" in error and "raise accum_steps" in error, error
    assert "Traceback" not in error and store.metrics(run.id) == []


def _child_cgroup(tmp_name: str, limit: int) -> Path | None:
    """A child of this process's memory cgroup (v1) capped at `limit` bytes; None where this
    machine does not let it be made (no v1 memory controller, or not root)."""
    groups = [g for g in system._memory_cgroups() if g.limit == "memory.limit_in_bytes"]
    if not groups:
        return None
    child = groups[0].folder / tmp_name
    try:
        child.mkdir()
        (child / "memory.limit_in_bytes").write_text(str(limit))
    except OSError:
        return None
    return child


def test_a_run_in_a_memory_capped_cgroup_is_refused_by_the_cap_not_the_machine(store: Store) -> None:
    """A Slurm job's --mem or a container's limit is where the OOM killer acts: a run that fits the
    machine but not its cgroup's cap is refused, in a sentence that names the cap's free memory."""
    child = _child_cgroup(f"workbench-test-{os.getpid()}", 3 * 2 ** 30)
    if child is None:
        pytest.skip("no writable cgroup v1 memory controller on this machine")
    try:
        run = create_run(store, "vit", preset="paper", overrides=["image_size=96", "batch_size=256", "accum_steps=1",
                                                                  "max_steps=1"])
        code = "import sys; from workbench.worker import main; sys.exit(main())"
        done = subprocess.run(["sh", "-c", f'echo $$ > {child}/cgroup.procs && exec "$0" -c "$1" "$2"',
                               sys.executable, code, str(run.id)], capture_output=True, text=True, timeout=300)
        error = store.get_run(run.id).error or ""
        assert store.get_run(run.id).status == RunStatus.FAILED, done.stdout[-2000:] + done.stderr[-2000:]
        free = float(error.split("this machine has ")[1].split(" GiB")[0])
        assert free < 3.0 < psutil.virtual_memory().total / 2 ** 30 and "a batch of 256 keeps" in error, error
    finally:
        for _ in range(50):  # the group empties once its process has gone
            try:
                child.rmdir()
                break
            except OSError:
                time.sleep(0.1)
