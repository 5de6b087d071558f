"""Which patches to mask: the one implementation that MAE, BEiT, masked patch prediction and
the GUI's mask preview all call (numpy only, so the preview needs no torch).

A mask is a boolean array [B, N] over the patch grid in raster order, True = masked.

- `random`: per-sample uniform noise, argsort, mask all but the first N·(1−ratio) (MAE).
- `block`: BEiT's blockwise masking: rectangles of random area and aspect ratio are added
  until the target count is reached (without overshooting it).
- `grid`: a regular pattern: one patch kept in each k×k cell, at a random offset per image
  (k = 2 gives 75 %, as in the MAE paper's grid ablation).

`exact=True` tops up or trims at random so every image has exactly round(N·ratio) masked
patches (MAE needs equal counts to batch the visible tokens); random always is exact, grid
is exact when 1−ratio = 1/k² and k divides the grid.
"""

from __future__ import annotations

import math

import numpy as np

STRATEGIES = ("random", "block", "grid")


def mask_count(num_patches: int, ratio: float) -> int:
    """Masked patches per image for `ratio`."""
    return int(round(num_patches * ratio))


def make_mask(strategy: str, batch: int, grid: tuple[int, int], ratio: float, rng: np.random.Generator,
              *, exact: bool = True) -> np.ndarray:
    """Masks [batch, H*W] bool for a grid of H x W patches."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio {ratio} must be in [0, 1)")
    h, w = grid
    target = mask_count(h * w, ratio)
    if strategy == "random":
        noise = rng.random((batch, h * w))
        order = np.argsort(noise, axis=1)
        mask = np.zeros((batch, h * w), dtype=bool)
        np.put_along_axis(mask, order[:, h * w - target:], True, axis=1)
        return mask
    if strategy == "block":
        mask = np.stack([_block_mask(h, w, target, rng).ravel() for _ in range(batch)])
    elif strategy == "grid":
        mask = np.stack([_grid_mask(h, w, ratio, rng).ravel() for _ in range(batch)])
    else:
        raise ValueError(f"unknown mask strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return _to_count(mask, target, rng) if exact else mask


def block_min_area(h: int, w: int) -> int:
    """The smallest block, in patches: BEiT's 16 at its 14 x 14 grid (MaskingGenerator's
    min_num_patches=16 in the reference's run_beit_pretraining.py), scaled with the grid's area."""
    return max(1, round(16 * h * w / (14 * 14)))


def _block_mask(h: int, w: int, target: int, rng: np.random.Generator, max_aspect: float = 1 / 0.3,
                attempts: int = 10) -> np.ndarray:
    """BEiT blockwise masking (Bao et al., Algorithm 1) at this grid's scale."""
    mask = np.zeros((h, w), dtype=bool)
    count = 0
    min_area = min(block_min_area(h, w), max(1, target))
    log_aspect = (math.log(1 / max_aspect), math.log(max_aspect))
    while count < target:
        grown = 0
        for _ in range(attempts):
            area = rng.uniform(min_area, max(min_area, target - count))
            aspect = math.exp(rng.uniform(*log_aspect))
            bh = int(round(math.sqrt(area * aspect)))
            bw = int(round(math.sqrt(area / aspect)))
            if 0 < bh <= h and 0 < bw <= w:
                top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
                new = bh * bw - mask[top:top + bh, left:left + bw].sum()
                if 0 < new <= target - count:
                    mask[top:top + bh, left:left + bw] = True
                    grown = int(new)
                    break
        if grown == 0:
            break
        count += grown
    return mask


def _grid_mask(h: int, w: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Keep one patch per k x k cell, k = round(1 / sqrt(1 - ratio)), at a random offset."""
    k = max(1, int(round(1 / math.sqrt(max(1e-6, 1 - ratio)))))
    dy, dx = rng.integers(0, k, size=2)
    keep = np.zeros((h, w), dtype=bool)
    keep[dy::k, dx::k] = True
    return ~keep


def _to_count(mask: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Mask or unmask random patches of each row until it has exactly `target` masked."""
    mask = mask.copy()
    for row in mask:
        have = int(row.sum())
        if have < target:
            row[rng.choice(np.flatnonzero(~row), target - have, replace=False)] = True
        elif have > target:
            row[rng.choice(np.flatnonzero(row), have - target, replace=False)] = False
    return mask
