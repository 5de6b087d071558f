"""Training augmentations: crops, flips, timm's RandAugment, RandomErasing and Mixup/CutMix, and
DeiT's repeated augmentation."""

import random

import numpy as np
import pytest
import torch

from workbench.data import DataInfo
from workbench.data.loading import (
    ArrayDataset,
    BatchTransform,
    EpochBatchSampler,
    RandAugmented,
    randaugment_transform,
    random_resized_crop,
)
from workbench.errors import ConfigError
from workbench.methods import get_method, make_config

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 4


def test_evaluation_batches_are_only_normalised() -> None:
    images, labels = _batch()
    for augment in ("none", "flip", "crop_flip", "randaugment"):
        x, y = BatchTransform(MEAN, STD, torch.device("cpu"), augment, mixup=0.8, cutmix=1.0,
                              num_classes=4, reprob=1.0)(images, labels, train=False)
        assert torch.allclose(x * 0.25 + 0.5, images / 255.0, atol=1e-6) and torch.equal(y, labels)


def test_random_resized_crop_zooms_each_image_differently() -> None:
    torch.manual_seed(0)
    ramp = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(4, 3, 32, 32).contiguous()
    out = random_resized_crop(ramp)
    assert out.shape == ramp.shape
    spans = out[:, 0, 16, -1] - out[:, 0, 16, 0]  # a crop narrows the horizontal range of the ramp
    assert (spans <= 2.0 + 1e-5).all() and (spans < 1.95).any() and len(set(spans.round(decimals=3).tolist())) == 4
    x, _ = BatchTransform(MEAN, STD, torch.device("cpu"), "randaugment")(*_batch(), train=True)
    assert x.shape == (8, 3, 32, 32) and torch.isfinite(x).all()


def test_cutmix_pastes_a_box_and_its_labels_sum_to_one() -> None:
    images = torch.stack([torch.full((3, 32, 32), float(v), dtype=torch.float32) for v in range(6)]).to(torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    # augment=none: no crops or flips, but mixing is still done (it was skipped before)
    transform = BatchTransform((0, 0, 0), (1 / 255,) * 3, torch.device("cpu"), "none", cutmix=1.0, num_classes=3)
    np.random.seed(0)
    x, soft = transform(images, labels, train=True)
    assert soft.shape == (6, 3) and torch.allclose(soft.sum(-1), torch.ones(6))
    for i in range(6):  # timm pairs image i with image 5-i: a box of it, its share of the label
        share = float((x[i] == 5 - i).float().mean())
        assert 0 < share < 1 and set(x[i].unique().tolist()) == {float(i), float(5 - i)}
        one_hot = torch.nn.functional.one_hot(labels, 3).float()
        assert torch.allclose(soft[i], (1 - share) * one_hot[i] + share * one_hot[5 - i], atol=1e-6)
    method = get_method("vit")(make_config("vit", "tiny"), DataInfo(["a", "b", "c"], MEAN, STD, 32))
    out = method.step(method.build(), (torch.randn(6, 3, 32, 32), soft))  # soft labels train a classifier
    assert torch.isfinite(out["loss"]) and 0 <= float(out["top1"]) <= 1


def test_random_erasing_replaces_a_rectangle_with_noise() -> None:
    images = torch.full((8, 3, 32, 32), 128, dtype=torch.uint8)
    transform = BatchTransform(MEAN, STD, torch.device("cpu"), "flip", reprob=1.0)
    torch.manual_seed(0)
    random.seed(0)  # timm places the rectangles with Python's generator
    x, _ = transform(images, torch.zeros(8, dtype=torch.long), train=True)
    plain = (128 / 255 - MEAN[0]) / STD[0]  # every channel's value outside the rectangle, normalised
    changed = ((x - plain).abs() > 1e-4).any(1).float().mean(dim=(1, 2))  # share of pixels erased, per image
    assert ((changed > 0.01) & (changed < 0.5)).all()


def test_crop_min_bounds_how_far_crops_zoom_in() -> None:
    ramp = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(64, 3, 32, 32).contiguous()
    torch.manual_seed(0)
    wide = random_resized_crop(ramp, scale=(0.9, 1.0))
    narrow = random_resized_crop(ramp, scale=(0.05, 0.1))
    span = lambda out: (out[:, 0, 16, -1] - out[:, 0, 16, 0]).abs()  # noqa: E731
    assert span(wide).min() > span(narrow).max()


def test_repeated_augmentation_repeats_each_image_in_its_batch() -> None:
    sampler = EpochBatchSampler(96, 12, seed=1, shuffle=True, drop_last=True, repeats=3)
    batches = list(sampler)
    assert len(batches) == 8 and all(len(b) == 12 for b in batches)  # the epoch keeps its length
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == 32 and all(flat.count(i) == 3 for i in set(flat))
    assert all(b[k] == b[k + 1] == b[k + 2] for b in batches for k in range(0, 12, 3))
    assert make_config("deit", "tiny", ["repeated_aug=3"]).repeated_aug == 3


def _images(n: int = 32) -> ArrayDataset:
    g = np.random.default_rng(0)
    return ArrayDataset(g.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 4)


def test_timms_randaugment_recipe_is_checked() -> None:
    with pytest.raises(ConfigError, match="randaug: 'rand-mx9' is not a RandAugment recipe"):
        make_config("vit", "tiny", ["augment=randaugment", "randaug=rand-mx9"])
    with pytest.raises(ConfigError, match="decode=device decodes on the GPU; use decode=loader"):
        make_config("vit", "tiny", ["augment=randaugment", "decode=device"])
    x, y = RandAugmented(_images(), "rand-m9-mstd0.5-inc1", MEAN, seed=0).__getitems__([3, 1, 2])
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.uint8 and y.tolist() == [3, 1, 2]


def test_a_batchs_randaugment_depends_on_the_seed_and_its_images_not_on_the_process() -> None:
    """The same batch augments alike whatever the global generators were (a loader process's or the
    training process's), leaves them as they were, and differs with another seed or other images."""

    data = _images()
    augmented = RandAugmented(data, "rand-m9-mstd0.5-inc1", MEAN, seed=0)
    first = augmented.__getitems__([5, 6, 7, 8])[0]
    random.seed(99)
    np.random.seed(99)
    before = random.random(), np.random.random()
    random.seed(99)
    np.random.seed(99)
    again = augmented.__getitems__([5, 6, 7, 8])[0]
    assert torch.equal(first, again) and (random.random(), np.random.random()) == before
    assert not torch.equal(first, data.__getitems__([5, 6, 7, 8])[0])  # augmented at all
    assert not torch.equal(first, RandAugmented(data, "rand-m9-mstd0.5-inc1", MEAN, seed=1).__getitems__(
        [5, 6, 7, 8])[0])
    assert not torch.equal(first[1:], augmented.__getitems__([4, 6, 7, 8])[0][1:])  # another batch: other draws


def test_randaugments_top_magnitude_posterizes_to_black_not_a_crash() -> None:
    """DeiT's recipe (`inc1`) at magnitude 10 keeps 0 bits: black, as Pillow made it before it refused 0."""
    from PIL import Image

    transform = randaugment_transform("rand-m10-inc1", MEAN)
    op = next(op for op in transform.ops if op.name == "PosterizeIncreasing")
    op.prob = 1.0  # always applied
    image = Image.fromarray(np.full((8, 8, 3), 200, np.uint8))
    assert np.asarray(op(image)).max() == 0
    assert np.asarray(next(o for o in randaugment_transform("rand-m5-inc1", MEAN).ops
                           if o.name == "PosterizeIncreasing").aug_fn(image, 2)).max() == 192  # 2 bits kept


def test_mixup_is_refused_without_labels() -> None:
    with pytest.raises(ConfigError) as err:
        make_config("mae", "tiny", ["mixup=0.8"])
    assert err.value.field == "mixup"
    assert make_config("deit", "tiny", ["mixup=0.8", "augment=randaugment"]).mixup == 0.8
    with pytest.raises(ConfigError, match="cutmix blends labels"):
        make_config("mae", "tiny", ["cutmix=1.0"])
    with pytest.raises(ConfigError, match="63 images per process and batch is odd"):
        make_config("vit", "tiny", ["cutmix=1.0", "batch_size=63"])
