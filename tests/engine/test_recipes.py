"""The training recipes' arithmetic in the real training loop: gradient accumulation equals one big
batch, timm's EMA follows its recursion and is evaluated and checkpointed beside the weights,
and a checkpoint restores every random generator a step draws from."""

import random

import numpy as np
import pytest
import timm
import torch

from workbench.cli import main
from workbench.data.loading import load_data
from workbench.engine.checkpoint import (
    Checkpoints,
    load_trained,
    restore_rng,
    rng_states,
)
from workbench.engine.execute import execute
from workbench.engine.trainer import Training, train
from workbench.errors import WorkbenchError
from workbench.jobs import create_run
from workbench.methods import make_config
from workbench.store import Store

EXACT = ["augment=none", "drop_path=0.0", "warmup_epochs=0", "label_smoothing=0.0", "batch_size=128"]


def _training(store: Store, *overrides: str) -> Training:
    run = create_run(store, "vit", preset="tiny", overrides=[*EXACT, *overrides])
    return Training(store, run.id, log=lambda _: None)


def _batch(n: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_two_accumulated_batches_of_64_equal_one_of_128(store: Store) -> None:
    one, two = _training(store), _training(store, "accum_steps=2")
    assert two.loader.batch_size is None and two.loader.batch_sampler.batch_size == 64
    images, labels = _batch()
    out_one, n_one = one.train_step([(images, labels)])
    out_two, n_two = two.train_step([(images[:64], labels[:64]), (images[64:], labels[64:])])
    assert n_one == n_two == 128 and out_one["loss"] == pytest.approx(float(out_two["loss"]), abs=1e-6)
    lr = one.optimizer.param_groups[0]["lr"]
    for (name, a), b in zip(one.model.named_parameters(), two.model.parameters()):
        if a.grad is None:
            continue
        assert torch.allclose(a.grad, b.grad, atol=1e-7), name  # the summed gradients are the big batch's
        # the same weights after the step; AdamW's first step is lr * g / (|g| + 1e-8), so where a
        # gradient is itself at the 1e-8 rounding level (4 of 75,082 here) its step may differ by up to 2 lr
        settled = a.grad.abs() > 1e-6
        assert torch.allclose(a[settled], b[settled], atol=1e-6), name
        assert (a - b).abs().max() <= 2 * lr + 1e-7
    assert one.step == two.step == 1


def test_accumulation_trains_whole_epochs_of_steps(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=["accum_steps=4", "epochs=1", "batch_size=128", "warmup_epochs=0"])
    assert train(store, run.id, log=lambda _: None) == "finished"
    row, images = store.get_run(run.id), len(load_data(make_config("vit", "tiny"), store).train)
    assert row.step == row.total_steps == images // 128  # steps of 128 images, 4 batches of 32 each


def test_ema_follows_timms_recursion_and_is_evaluated_saved_and_exported(store: Store, tmp_path) -> None:
    t = _training(store, "ema=true", "ema_decay=0.5", "max_steps=3", "eval_every=3", "checkpoint_every=3")
    images, labels = _batch(64)
    t.train_step([(images, labels)])
    first = [p.detach().clone() for p in t.model.parameters()]
    assert all(torch.equal(e, m) for e, m in zip(t.ema.module.parameters(), first))  # step 1: a copy
    t.train_step([(images, labels)])
    for e, before, now in zip(t.ema.module.parameters(), first, t.model.parameters()):
        assert torch.allclose(e, 0.5 * before + 0.5 * now, atol=1e-7)
    assert not all(torch.equal(e, m) for e, m in zip(t.ema.module.parameters(), t.model.parameters()))

    run = create_run(store, "vit", preset="tiny", overrides=["ema=true", "ema_decay=0.9", "max_steps=6",
                                                             "eval_every=3", "checkpoint_every=3"])
    assert execute(store, run.id, log=lambda _: None) == "finished"
    assert {"val/top1", "val_ema/top1", "val_ema/loss"} <= set(store.get_run(run.id).summary)
    assert [r[1] for r in store.metrics(run.id, key="val_ema/top1")] == [3, 6]
    state, _ = Checkpoints(store, run.id).latest_readable()
    averaged = load_trained(store, run.id, weights="ema").model.state_dict()
    assert all(torch.equal(averaged[k], v) for k, v in state["ema"].items())
    assert not torch.equal(averaged["head.weight"], state["model"]["head.weight"])
    main(["export", str(run.id), "--weights", "ema", "--format", "safetensors", "--out", str(tmp_path / "ema")])
    timm_model = timm.create_model("local-dir:" + str(tmp_path / "ema"), pretrained=True)
    assert torch.equal(timm_model.state_dict()["head.weight"], state["ema"]["head.weight"])  # timm loads the EMA
    plain = create_run(store, "vit", preset="tiny", overrides=["max_steps=2", "checkpoint_every=2"])
    train(store, plain.id, log=lambda _: None)
    with pytest.raises(WorkbenchError, match="trained with ema=false"):
        load_trained(store, plain.id, weights="ema")


def test_a_checkpoint_restores_torch_numpy_and_python_generators() -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    saved = rng_states(torch.device("cpu"))
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    restore_rng(saved, torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]
