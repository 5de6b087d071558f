import numpy as np
import pytest
import torch

from workbench.data import check_dataset, shapes
from workbench.data.loading import (
    ArrayDataset,
    BatchTransform,
    EpochBatchSampler,
    load_data,
    make_loader,
)
from workbench.errors import ConfigError
from workbench.methods import make_config


def test_drawing_is_deterministic_and_classes_look_different() -> None:
    a = shapes.draw(32, 3, np.random.default_rng([1, 1, 7]))
    b = shapes.draw(32, 3, np.random.default_rng([1, 1, 7]))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    c = shapes.draw(32, 4, np.random.default_rng([1, 1, 7]))  # same colours and pose, other shape
    assert not np.array_equal(a, c)
    assert shapes.draw(96, 0, np.random.default_rng(0)).shape == (96, 96, 3)


def test_cache_is_generated_once_balanced_and_normalised(home) -> None:
    splits, meta = shapes.load(32)
    assert meta["classes"] == list(shapes.CLASSES) and len(meta["classes"]) == 10
    assert len(splits["train"].images) == 5000 and len(splits["val"].images) == 1000
    assert np.bincount(splits["train"].labels).tolist() == [500] * 10
    assert all(0.2 < s < 0.45 for s in meta["std"]) and all(0.3 < m < 0.8 for m in meta["mean"])
    stamp = (shapes.cache_dir(32) / "train_images.npy").stat().st_mtime_ns
    again, _ = shapes.load(32)
    assert (shapes.cache_dir(32) / "train_images.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(again["val"].images[5], splits["val"].images[5])
    assert not list(shapes.cache_dir(32).parent.glob("*.tmp-*"))  # no temp folder left


def test_unknown_dataset_is_refused(store) -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'; available: shapes"):
        check_dataset(store, "imagenet", needs_labels=True)


def test_epoch_order_is_seeded_and_skip_resumes_mid_epoch() -> None:
    sampler = EpochBatchSampler(100, 8, seed=3, shuffle=True, drop_last=True)
    sampler.set_epoch(2)
    full = list(sampler)
    assert len(full) == 12 and len({i for b in full for i in b}) == 96
    sampler.set_epoch(2, skip=5)
    assert list(sampler) == full[5:]
    sampler.set_epoch(3)
    assert list(sampler) != full
    other = EpochBatchSampler(100, 8, seed=4, shuffle=True, drop_last=True)
    other.set_epoch(2)
    assert list(other) != full


def test_batched_fetch_equals_item_fetch() -> None:
    rng = np.random.default_rng(0)
    ds = ArrayDataset(rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8), np.arange(20))
    images, labels = ds.__getitems__([7, 2, 19, 2])
    for k, i in enumerate([7, 2, 19, 2]):
        assert torch.equal(images[k], ds[i][0]) and labels[k] == i


def test_loader_and_transform(home) -> None:
    cfg = make_config("vit", "tiny")
    data = load_data(cfg)
    loader = make_loader(data.train, cfg, train=True)
    images, labels = next(iter(loader))
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.uint8 and labels.shape == (64,)
    t = BatchTransform(data.info.mean, data.info.std, torch.device("cpu"))
    x, y = t(images, labels, train=False)
    assert torch.equal(y, labels)
    assert abs(float(x.mean())) < 0.5 and 0.5 < float(x.std()) < 1.5
    mean = torch.tensor(data.info.mean).view(1, 3, 1, 1)
    std = torch.tensor(data.info.std).view(1, 3, 1, 1)
    assert torch.allclose(x * std + mean, images / 255.0, atol=1e-5)
    flipped, _ = t(images, labels, train=True)
    per_image = [torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2)) for i in range(len(x))]
    assert all(per_image) and not torch.equal(flipped, x)  # each image as is or mirrored, some mirrored
