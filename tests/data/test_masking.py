import math

import numpy as np
import pytest

from workbench.data.masking import STRATEGIES, block_min_area, make_mask, mask_count


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75, 0.9])
def test_random_masks_have_exact_counts_and_differ_per_image(ratio: float) -> None:
    mask = make_mask("random", 16, (8, 8), ratio, np.random.default_rng(0))
    assert mask.shape == (16, 64) and mask.dtype == bool
    assert (mask.sum(1) == mask_count(64, ratio)).all()
    assert len({row.tobytes() for row in mask}) == 16


def test_grid_keeps_one_patch_per_2x2_cell_at_75_percent() -> None:
    mask = make_mask("grid", 4, (8, 8), 0.75, np.random.default_rng(1)).reshape(4, 8, 8)
    for m in mask:
        kept = ~m
        assert kept.sum() == 16
        cells = kept.reshape(4, 2, 4, 2).sum(axis=(1, 3))
        assert (cells == 1).all()  # exactly one visible patch in every 2 x 2 cell
        ys, xs = np.nonzero(kept)
        assert len(set(ys % 2)) == 1 and len(set(xs % 2)) == 1  # the same offset everywhere: regular


@pytest.mark.parametrize("ratio", [0.5, 0.6, 0.9])
def test_grid_and_block_are_exact_when_asked(ratio: float) -> None:
    for strategy in ("grid", "block"):
        mask = make_mask(strategy, 8, (8, 8), ratio, np.random.default_rng(2), exact=True)
        assert (mask.sum(1) == mask_count(64, ratio)).all(), strategy


def test_masks_not_asked_to_be_exact_never_pass_the_ratio() -> None:
    """BEiT's masks go up to the ratio, and its loss picks at most that many patches an image: a grid
    of 2 x 2 cells (75 %) asked for 60 % is trimmed to 60 %, not left at 75 %."""
    for strategy in STRATEGIES:
        masks = make_mask(strategy, 32, (14, 14), 0.6, np.random.default_rng(4), exact=False)
        assert masks.sum(1).max() <= mask_count(196, 0.6), strategy
    grid = make_mask("grid", 32, (14, 14), 0.6, np.random.default_rng(4), exact=False)
    assert (grid.sum(1) == mask_count(196, 0.6)).all()


def test_block_masks_are_blocky_and_within_one_block_of_target() -> None:
    rng = np.random.default_rng(3)
    grid = (14, 14)
    target = mask_count(196, 0.4)
    masks = make_mask("block", 64, grid, 0.4, rng, exact=False)
    counts = masks.sum(1)
    assert (counts <= target).all() and (counts >= target - 16).all()  # BEiT: up to the ratio
    # blocks, not scattered patches: most masked patches have a masked 4-neighbour
    m = masks.reshape(64, *grid)
    padded = np.pad(m, ((0, 0), (1, 1), (1, 1)))
    neighbours = padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
    assert (m & neighbours).sum() / m.sum() > 0.9
    scattered = make_mask("random", 64, grid, 0.4, np.random.default_rng(3)).reshape(64, *grid)
    padded = np.pad(scattered, ((0, 0), (1, 1), (1, 1)))
    neighbours = padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
    assert (scattered & neighbours).sum() / scattered.sum() < 0.9


@pytest.mark.parametrize("strategy", ["random", "block", "grid"])
def test_same_seed_same_mask(strategy: str) -> None:
    a = make_mask(strategy, 4, (8, 8), 0.75, np.random.default_rng(7))
    b = make_mask(strategy, 4, (8, 8), 0.75, np.random.default_rng(7))
    c = make_mask(strategy, 4, (8, 8), 0.75, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("strategy", ["random", "block", "grid"])
@pytest.mark.parametrize("exact", [True, False])
def test_one_process_share_of_a_batchs_masks_is_those_rows_of_the_whole(strategy: str, exact: bool) -> None:
    """Each of 3 processes keeps rows rank::3 of the 12 images' masks, drawn alike, and leaves its
    generator where the whole draw leaves it (so later draws agree too)."""
    rng = np.random.default_rng(3)
    whole, after = make_mask(strategy, 12, (8, 8), 0.6, rng, exact=exact), rng.random()
    for rank in range(3):
        rng = np.random.default_rng(3)
        share = make_mask(strategy, 12, (8, 8), 0.6, rng, exact=exact, keep=slice(rank, None, 3))
        assert share.shape == (4, 64) and np.array_equal(share, whole[rank::3]) and rng.random() == after


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="must be in"):
        make_mask("random", 1, (4, 4), 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown mask strategy"):
        make_mask("stripes", 1, (4, 4), 0.5, np.random.default_rng(0))


def test_the_smallest_block_scales_with_the_grid_as_beits_16_at_14x14() -> None:
    assert [block_min_area(n, n) for n in (14, 8, 4, 28)] == [16, 5, 1, 64]
    masks = make_mask("block", 32, (14, 14), 0.4, np.random.default_rng(0), exact=False).reshape(32, 14, 14)
    smallest = min(min(_components(m)) for m in masks)
    assert smallest >= 9  # a block of 16 +- rounding; with a minimum of 4 (before) blocks of 4-6 patches occur


def _one_by_one(h: int, w: int, target: int, rng: np.random.Generator) -> np.ndarray:
    """BEiT's Algorithm 1 for one image, as its reference code loops (the workbench's before it drew
    the whole batch at once): up to 10 proposals for each block added."""
    mask, count = np.zeros((h, w), dtype=bool), 0
    min_area, log_aspect = min(block_min_area(h, w), max(1, target)), (math.log(0.3), math.log(1 / 0.3))
    while count < target:
        grown = 0
        for _ in range(10):
            area = rng.uniform(min_area, max(min_area, target - count))
            aspect = math.exp(rng.uniform(*log_aspect))
            bh, bw = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
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


@pytest.mark.parametrize(("side", "ratio"), [(14, 0.4), (8, 0.6)])
def test_block_masks_drawn_for_the_batch_at_once_are_those_of_the_image_by_image_algorithm(
        side: int, ratio: float) -> None:
    """The same distribution: masked count, blocks per image, largest block, and how elongated the
    masks are (|log(rows spanned / columns spanned)|), over 1,000 images each."""
    target = mask_count(side * side, ratio)
    rng = np.random.default_rng(5)
    reference = np.stack([_one_by_one(side, side, target, rng) for _ in range(1000)])
    batched = make_mask("block", 1000, (side, side), ratio, np.random.default_rng(6), exact=False)
    stats = []
    for masks in (reference, batched.reshape(1000, side, side)):
        parts = [_components(m) for m in masks]
        elongation = np.abs(np.log(masks.any(2).sum(1) / masks.any(1).sum(1))).mean()
        stats.append(np.array([masks.sum((1, 2)).mean(), np.mean([len(p) for p in parts]),
                               np.mean([max(p) for p in parts]), elongation]))
    assert (np.abs(stats[0] - stats[1]) < [0.3, 0.08, 2, 0.015]).all(), stats


def _components(mask: np.ndarray) -> list[int]:
    """Sizes of the 4-connected groups of True cells."""
    seen, sizes = np.zeros_like(mask), []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        stack, size = [start], 0
        seen[start] = True
        while stack:
            r, c = stack.pop()
            size += 1
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= nr < mask.shape[0] and 0 <= nc < mask.shape[1] and mask[nr, nc] and not seen[nr, nc]:
                    seen[nr, nc] = True
                    stack.append((nr, nc))
        sizes.append(size)
    return sizes
