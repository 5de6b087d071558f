"""AdamW over the method's parameter groups, and the warmup + cosine schedule."""

from __future__ import annotations

import math
from typing import Callable

import torch

from workbench.config import TrainConfig


def build_optimizer(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over `Method.param_groups`; each group's lr is the run's lr times its `lr_scale`."""
    groups = [{**{k: v for k, v in g.items() if k != "lr_scale"}, "lr": cfg.lr * g.get("lr_scale", 1.0)}
              for g in groups]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.adam_beta2))


def warmup_cosine(warmup_steps: int, total_steps: int, floor: float = 0.01) -> Callable[[int], float]:
    """LR multiplier: linear from ~0 to 1 over warmup, then cosine down to `floor`."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor
