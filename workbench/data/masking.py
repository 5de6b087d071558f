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
is exact when 1−ratio = 1/k² and k divides the grid. Without it, no image has more than
round(N·ratio) (BEiT's "up to the ratio"; a grid's 1 − 1/k² above it is trimmed at random), which
the losses' fixed-size picking of masked patches relies on (`methods.base.masked_rows`).
"""

from __future__ import annotations

import math

import numpy as np

STRATEGIES = ("random", "block", "grid")


def mask_count(num_patches: int, ratio: float) -> int:
    """Masked patches per image for `ratio`."""
    return int(round(num_patches * ratio))


def make_mask(strategy: str, batch: int, grid: tuple[int, int], ratio: float, rng: np.random.Generator,
              *, exact: bool = True, keep: slice = slice(None)) -> np.ndarray:
    """Masks [batch, H*W] bool for a grid of H x W patches, or only the rows `keep` selects of them
    (the same rows, drawn alike: one of several processes keeps its own share of the whole batch's
    masks, and `random` then sorts only those rows' noise)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio {ratio} must be in [0, 1)")
    h, w = grid
    target = mask_count(h * w, ratio)
    if strategy == "random":
        noise = rng.random((batch, h * w))[keep]
        order = np.argsort(noise, axis=1)
        mask = np.zeros(noise.shape, dtype=bool)
        np.put_along_axis(mask, order[:, h * w - target:], True, axis=1)
        return mask
    if strategy == "block":
        mask = _block_masks(batch, h, w, target, rng).reshape(batch, h * w)
    elif strategy == "grid":
        mask = _grid_masks(batch, h, w, ratio, rng).reshape(batch, h * w)
    else:
        raise ValueError(f"unknown mask strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return _to_count(mask, target, rng, at_most=not exact)[keep]


def block_min_area(h: int, w: int) -> int:
    """The smallest block, in patches: BEiT's 16 at its 14 x 14 grid (MaskingGenerator's
    min_num_patches=16 in the reference's run_beit_pretraining.py), scaled with the grid's area."""
    return max(1, round(16 * h * w / (14 * 14)))


def _block_masks(batch: int, h: int, w: int, target: int, rng: np.random.Generator, max_aspect: float = 1 / 0.3,
                 attempts: int = 10) -> np.ndarray:
    """[batch, h, w] bool: BEiT blockwise masking (Bao et al., Algorithm 1) at this grid's scale, for
    the whole batch at once. Each round proposes one block to every image still growing; a block is
    added when it masks new patches without passing the target, and an image stops at the target or
    after `attempts` proposals in a row that were not added. (Image by image, in Python, this took
    27 ms for 256 images at 14 x 14, and each of N processes draws the N processes' batch.)"""
    mask = np.zeros((batch, h, w), dtype=bool)
    count = np.zeros(batch, dtype=np.int64)
    misses = np.zeros(batch, dtype=np.int64)  # proposals in a row not added
    min_area = min(block_min_area(h, w), max(1, target))
    log_aspect = (math.log(1 / max_aspect), math.log(max_aspect))
    ys, xs = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    growing = np.flatnonzero(count < target)
    while growing.size:
        room = target - count[growing]
        area = rng.uniform(min_area, np.maximum(min_area, room))
        aspect = np.exp(rng.uniform(*log_aspect, size=growing.size))
        bh = np.rint(np.sqrt(area * aspect)).astype(np.int64)
        bw = np.rint(np.sqrt(area / aspect)).astype(np.int64)
        top = rng.integers(0, np.maximum(h - bh + 1, 1))[:, None, None]
        left = rng.integers(0, np.maximum(w - bw + 1, 1))[:, None, None]
        block = (ys >= top) & (ys < top + bh[:, None, None]) & (xs >= left) & (xs < left + bw[:, None, None])
        new = (block & ~mask[growing]).sum((1, 2))
        added = (bh > 0) & (bh <= h) & (bw > 0) & (bw <= w) & (new > 0) & (new <= room)
        mask[growing[added]] |= block[added]
        count[growing] += np.where(added, new, 0)
        misses[growing] = np.where(added, 0, misses[growing] + 1)
        growing = growing[(count[growing] < target) & (misses[growing] < attempts)]
    return mask


def _grid_masks(batch: int, h: int, w: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """[batch, h, w] bool: one patch kept per k x k cell, k = round(1 / sqrt(1 - ratio)), at a random
    offset per image."""
    k = max(1, int(round(1 / math.sqrt(max(1e-6, 1 - ratio)))))
    dy, dx = rng.integers(0, k, size=(2, batch, 1, 1))
    keep = ((np.arange(h)[None, :, None] - dy) % k == 0) & ((np.arange(w)[None, None, :] - dx) % k == 0)
    return ~keep


def _to_count(mask: np.ndarray, target: int, rng: np.random.Generator, at_most: bool = False) -> np.ndarray:
    """Mask or unmask random patches of each row until it has exactly `target` masked (`at_most`:
    only unmask, in rows over it)."""
    mask = mask.copy()
    counts = mask.sum(1)
    for i in np.flatnonzero(counts > target if at_most else counts != target):
        row = mask[i]  # a view: set in place
        have = int(row.sum())
        if have < target:
            row[rng.choice(np.flatnonzero(~row), target - have, replace=False)] = True
        elif have > target:
            row[rng.choice(np.flatnonzero(row), have - target, replace=False)] = False
    return mask
