"""Training augmentations on the device: crops, flips, RandAugment, mixup."""

import pytest
import torch

from workbench.data import DataInfo
from workbench.data.loading import BatchTransform, mix, random_resized_crop
from workbench.errors import ConfigError
from workbench.methods import get_method, make_config

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 4


def test_evaluation_batches_are_only_normalised() -> None:
    images, labels = _batch()
    for augment in ("none", "flip", "crop_flip", "randaugment"):
        x, y = BatchTransform(MEAN, STD, torch.device("cpu"), augment, 0.8, 4)(images, labels, train=False)
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


def test_mixup_blends_images_and_labels_with_one_weight() -> None:
    x = torch.randn(6, 3, 4, 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(1)
    mixed, soft = mix(x, labels, 0.8, 3)
    torch.manual_seed(1)  # the same draws, by hand
    lam = float(torch.distributions.Beta(0.8, 0.8).sample())
    order = torch.randperm(6)
    assert 0 < lam < 1 and not torch.equal(order, torch.arange(6))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[order])
    one_hot = torch.nn.functional.one_hot(labels, 3).float()
    assert torch.allclose(soft, lam * one_hot + (1 - lam) * one_hot[order])
    assert torch.allclose(soft.sum(-1), torch.ones(6))
    method = get_method("vit")(make_config("vit", "tiny"), DataInfo(["a", "b", "c"], MEAN, STD, 32))
    model = method.build()
    out = method.step(model, (torch.randn(6, 3, 32, 32), soft))  # soft labels train a classifier
    assert torch.isfinite(out["loss"]) and 0 <= float(out["top1"]) <= 1


def test_mixup_is_refused_without_labels() -> None:
    with pytest.raises(ConfigError) as err:
        make_config("mae", "tiny", ["mixup=0.8"])
    assert err.value.field == "mixup"
    assert make_config("deit", "tiny", ["mixup=0.8", "augment=randaugment"]).mixup == 0.8
