"""AdamW with decoupled weight decay on weight matrices only, and warmup + cosine schedule."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from workbench.config import TrainConfig
from workbench.methods.base import no_weight_decay_names


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    skip = no_weight_decay_names(model)
    decay, plain = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (plain if name in skip else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


def warmup_cosine(warmup_steps: int, total_steps: int, floor: float = 0.01) -> Callable[[int], float]:
    """LR multiplier: linear from ~0 to 1 over warmup, then cosine down to `floor`."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor
