"""dVAE tokenizer, BEiT masked image modelling and ViT masked patch prediction."""

import numpy as np
import pytest
import torch

from tests.conftest import finished_run
from workbench.data import DataInfo
from workbench.errors import ConfigError
from workbench.export.exporter import as_timm
from workbench.jobs import create_run
from workbench.methods import get_method, make_config
from workbench.methods.base import ParentRun
from workbench.methods.mpp.method import class_colours, color_targets, corrupt
from workbench.store import Store

INFO = DataInfo([f"c{i}" for i in range(10)], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 32)


def _dvae(**overrides):
    torch.manual_seed(0)
    method = get_method("dvae")(make_config("dvae", "tiny", overrides), INFO)
    return method, method.build()


def test_dvae_tokenizes_to_the_patch_grid_and_anneals() -> None:
    method, model = _dvae()
    tokens = model.tokenize(torch.randn(2, 3, 32, 32))
    assert tokens.shape == (2, 64) and tokens.dtype == torch.long and int(tokens.max()) < 128
    assert model.decode_tokens(tokens).shape == (2, 3, 32, 32)
    method.on_step(0, 100)
    assert method.temperature == pytest.approx(1.0) and method.kl_weight == 0.0
    method.on_step(99, 100)
    assert method.temperature == pytest.approx(0.0625) and method.kl_weight == pytest.approx(0.01)
    method.on_step(50, 100)
    assert 0.0625 < method.temperature < 1.0
    with pytest.raises(ConfigError) as err:
        make_config("dvae", "tiny", ["patch_size=6", "image_size=36"])
    assert err.value.field == "patch_size" and "power of 2" in str(err.value)


def _beit(mask_ratio: float = 0.4, **overrides):
    dvae_method, dvae = _dvae()
    state = dvae.state_dict()
    parent = ParentRun(3, "dvae", dvae_method.cfg, lambda: state)
    cfg = make_config("beit", "tiny", {"mask_ratio": mask_ratio, **overrides})
    method = get_method("beit")(cfg, INFO, {"tokenizer": parent})
    return method, method.build()


def test_beits_layer_scale_starts_at_its_value_and_exports_to_plain_timm() -> None:
    assert make_config("beit", "paper", {}).layer_scale == 0.1 and make_config("beit", "tiny", {}).layer_scale == 0
    _, model = _beit(layer_scale=0.1)
    block = model.encoder.vit.blocks[0]
    assert torch.equal(block.ls1.gamma, torch.full((64,), 0.1)) and torch.equal(block.ls2.gamma, torch.full((64,), 0.1))
    vit = get_method("vit")(make_config("vit", "tiny", {"layer_scale": 0.1}), INFO).build().eval()
    with torch.no_grad():
        vit.blocks[1].ls2.gamma.mul_(3)  # learned values travel with the weights
        rebuilt, _ = as_timm(vit)  # a strict load: plain timm rebuilds the LayerScale
        x = torch.randn(2, 3, 32, 32)
        assert torch.allclose(rebuilt(x), vit(x), atol=1e-6)


def test_beit_masks_blockwise_and_learns_only_at_masked_positions() -> None:
    method, model = _beit()
    images = torch.randn(4, 3, 32, 32)
    mask = method.mask(4, torch.device("cpu"), np.random.default_rng(1))
    assert (mask.sum(1) <= round(0.4 * 64)).all() and (mask.sum(1) >= 10).all()
    logits, targets = model(images, mask)
    assert logits.shape == (4, 64, 128) and torch.equal(targets, model.tokenizer.tokenize(images))
    logits.retain_grad()
    torch.nn.functional.cross_entropy(logits[mask], targets[mask]).backward()
    assert logits.grad[~mask].abs().sum() == 0 and logits.grad[mask].abs().sum() > 0
    # the [mask] embedding replaced the masked patches' embeddings, before position embeddings
    enc = model.encoder
    embedded = enc.masked(enc.embed(images), mask)
    assert torch.equal(embedded[mask], enc.mask_token.expand(int(mask.sum()), -1, -1)[:, 0])
    assert not any(p.requires_grad for p in model.tokenizer.parameters())
    assert method.exportable(model) is enc.vit  # the tokenizer is not shipped


def test_beit_step_reports_masked_token_accuracy() -> None:
    method, model = _beit()
    out = method.step(model, (torch.randn(4, 3, 32, 32), None))
    assert set(out) == {"loss", "mask_acc"} and 0 <= float(out["mask_acc"]) <= 1
    batches = [(torch.randn(4, 3, 32, 32), torch.zeros(4)), (torch.randn(2, 3, 32, 32), torch.zeros(2))]
    metrics = method.evaluate(model.eval(), batches)
    tokens = torch.cat([model.tokenizer.tokenize(images).flatten() for images, _ in batches])
    assert metrics["majority_acc"] == pytest.approx(float(tokens.bincount().max() / tokens.numel()))
    assert method._counts is None  # training steps after it count nothing


def test_mpp_corruption_splits_80_10_10() -> None:
    g = torch.Generator().manual_seed(0)
    embeddings = torch.randn(64, 256, 8, generator=g)
    mask = torch.rand(64, 256, generator=g) < 0.5
    token = torch.full((1, 1, 8), 7.0)
    out, how = corrupt(embeddings, mask, token, torch.Generator().manual_seed(1))
    corrupted = int(mask.sum())
    shares = [float((how == k).sum()) / corrupted for k in (1, 2, 3)]
    assert shares == pytest.approx([0.8, 0.1, 0.1], abs=0.02)
    assert torch.equal(out[~mask], embeddings[~mask])  # untouched outside the corrupted set
    assert (out[how == 1] == 7.0).all()
    assert torch.equal(out[how == 3], embeddings[how == 3])
    swapped = out[how == 2]
    flat = embeddings.reshape(-1, 8)
    assert all((flat == row).all(-1).any() for row in swapped[:50])  # some other patch's embedding


def test_three_bit_colour_targets_on_hand_made_patches() -> None:
    pixels = torch.zeros(1, 3, 8, 8)
    pixels[0, 0, :4, :4] = 1.0  # patch 0: pure red
    pixels[0, :, :4, 4:] = 1.0  # patch 1: white
    pixels[0, 2, 4:, :4] = 0.5  # patch 2: half blue -> level 4
    ids = color_targets(pixels, 4)[0, :, 0].tolist()
    assert ids == [7 * 64, 511, 4, 0]  # red, white, 64*0 + 8*0 + 4, black
    cells = color_targets(pixels, 4, cells=4)
    assert cells.shape == (1, 4, 16) and (cells[0, 0] == 448).all()
    pixels[0, 1, 0, 0] = 1.0  # one green pixel in the top-left cell of patch 0 only
    cells = color_targets(pixels, 4, cells=4)
    assert cells[0, 0, 0] == 448 + 7 * 8 and (cells[0, 0, 1:] == 448).all()
    assert torch.allclose(class_colours(torch.tensor(448)), torch.tensor([15 / 16, 1 / 16, 1 / 16]))


@pytest.mark.parametrize("target", ["color3bit", "color3bit_4x4", "pixel_l2"])
def test_mpp_targets_train(target: str) -> None:
    torch.manual_seed(0)
    method = get_method("mpp")(make_config("mpp", "tiny", {"target": target}), INFO)
    model = method.build()
    out = method.step(model, (torch.rand(4, 3, 32, 32), None))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and model.encoder.mask_token.grad.abs().sum() > 0
    if target != "pixel_l2":
        assert "target_acc" in out


def test_beit_parent_and_ratio_checks(store: Store) -> None:
    with pytest.raises(ConfigError, match="needs a finished dvae run as its tokenizer"):
        create_run(store, "beit", preset="tiny")
    tokenizer = finished_run(store, "dvae", patch_size=8)
    beit = create_run(store, "beit", preset="tiny", parents={"tokenizer": tokenizer})
    assert beit.config["patch_size"] == 8  # the grid follows the tokenizer
    with pytest.raises(ConfigError) as err:
        create_run(store, "beit", preset="tiny", overrides=["patch_size=4"], parents={"tokenizer": tokenizer})
    assert err.value.field == "patch_size" and "differs from the tokenizer" in str(err.value)
    with pytest.raises(ConfigError) as err:
        create_run(store, "beit", preset="tiny", overrides=["mask_ratio=0.7"], parents={"tokenizer": tokenizer})
    assert err.value.field == "mask_ratio" and "[0.05, 0.6]" in str(err.value)
    with pytest.raises(ConfigError) as err:
        make_config("mpp", "tiny", ["target=color3bit_4x4", "patch_size=2"])
    assert err.value.field == "target"
