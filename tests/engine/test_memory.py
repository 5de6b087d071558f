"""A CPU run that cannot fit in memory is refused before its first step, in a sentence (the
out-of-memory killer would end it mid-step with no word), and the measuring changes nothing the
run draws or keeps."""

import contextlib
import random

import numpy as np
import psutil
import torch

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
