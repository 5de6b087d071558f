import numpy as np
import pytest

from workbench.data.masking import block_min_area, make_mask, mask_count


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
