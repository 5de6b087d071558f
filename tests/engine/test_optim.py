"""timm's AdamW and cosine schedule as the references use them: linear warmup, down to 0, layer
decay through each group's lr_scale, and MAE's blr rule."""

import math

import pytest
import torch

from workbench.engine.optim import build_optimizer, build_scheduler, current_lr
from workbench.methods import make_config


def _rates(cfg, warmup: int, total: int) -> list[list[float]]:
    w = torch.nn.Parameter(torch.zeros(2))
    groups = [{"params": [w], "weight_decay": 0.0, "lr_scale": 1.0},
              {"params": [torch.nn.Parameter(torch.zeros(2))], "weight_decay": 0.0, "lr_scale": 0.5}]
    optimizer = build_optimizer(groups, cfg)
    scheduler = build_scheduler(optimizer, warmup, total)
    rates = []
    for step in range(total + 1):
        rates.append([g["lr"] for g in optimizer.param_groups] + [current_lr(optimizer)])
        scheduler.step_update(step + 1)
    return rates


def test_linear_warmup_then_cosine_to_zero_with_each_groups_scale() -> None:
    cfg = make_config("vit", "tiny", {"lr": 0.01})
    rates = _rates(cfg, warmup=10, total=110)
    assert rates[0][0] == pytest.approx(0.001) and rates[5][0] == pytest.approx(0.0055)  # linear warmup from peak/10
    assert rates[10][0] == pytest.approx(0.01) and rates[10][1] == pytest.approx(0.005)  # the peak; lr_scale 0.5
    assert rates[60][0] == pytest.approx(0.005, rel=1e-6)  # half-way down the cosine
    assert rates[110][0] == pytest.approx(0.0, abs=1e-12)  # down to 0, as the references
    assert all(r[2] == pytest.approx(r[0]) for r in rates)  # train/lr reports the unscaled rate
    assert rates[35][0] == pytest.approx(0.005 * (1 + math.cos(math.pi * 25 / 100)))


def test_blr_scales_with_the_batch_as_maes_rule() -> None:
    assert make_config("vit", "tiny", {"blr": 1.5e-4, "batch_size": 4096}).peak_lr() == pytest.approx(2.4e-3)
    assert make_config("vit", "tiny", {"blr": 1.5e-4, "batch_size": 128}).peak_lr() == pytest.approx(7.5e-5)
    assert make_config("vit", "tiny", {"lr": 0.003}).peak_lr() == 0.003  # blr 0: lr as given
