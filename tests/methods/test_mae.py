"""MAE: visible-only encoder, masked-only loss, de-normalised reconstructions."""

import numpy as np
import pytest
import torch

from workbench.data import DataInfo
from workbench.errors import ConfigError
from workbench.methods import get_method, make_config

INFO = DataInfo([f"c{i}" for i in range(10)], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 32)


@pytest.fixture
def mae():
    torch.manual_seed(0)
    method = get_method("mae")(make_config("mae", "tiny"), INFO)
    model = method.build().eval()
    images = torch.randn(3, 3, 32, 32)
    mask = method.mask(3, torch.device("cpu"), np.random.default_rng(0))
    return method, model, images, mask


def test_patchify_round_trip(mae) -> None:
    _, model, images, _ = mae
    patches = model.patchify(images)
    assert patches.shape == (3, 64, 4 * 4 * 3)
    assert torch.equal(patches[1, 9].reshape(4, 4, 3), images[1, :, 4:8, 4:8].permute(1, 2, 0))  # patch (1, 1)
    assert torch.equal(model.unpatchify(patches), images)


def test_encoder_sees_only_visible_patches_exactly_like_a_timm_block_stack(mae) -> None:
    _, model, images, mask = mae
    latent, ids_restore = model.forward_encoder(images, mask)
    assert latent.shape == (3, 1 + 16, 64) and mask.sum(1).tolist() == [48] * 3
    enc = model.encoder
    for b in range(3):  # by hand: embed, add positions, keep the visible tokens, run timm's blocks
        tokens = enc.patch_embed(images[b:b + 1]) + enc.pos_embed[:, 1:]
        visible = tokens[:, ~mask[b]]
        x = torch.cat([enc.cls_token + enc.pos_embed[:, :1], visible], dim=1)
        for block in enc.blocks:
            x = block(x)
        assert torch.allclose(latent[b:b + 1], enc.norm(x), atol=1e-5)
    # no leakage: scrambling the masked patches' pixels changes nothing the encoder outputs
    noisy = model.unpatchify(torch.where(mask.unsqueeze(-1), torch.randn(3, 64, 48) * 5, model.patchify(images)))
    assert torch.allclose(model.forward_encoder(noisy, mask)[0], latent, atol=1e-6)
    # and ids_restore puts the visible-first shuffle back into image order
    shuffled = torch.argsort(mask.to(torch.int8), dim=1, stable=True)
    assert torch.equal(torch.gather(shuffled, 1, ids_restore), torch.arange(64).expand(3, -1))


def test_loss_counts_masked_patches_only(mae) -> None:
    _, model, images, mask = mae
    loss, pred = model(images, mask)
    per_patch = ((pred - model.patchify(images)) ** 2).mean(-1)
    assert torch.allclose(loss, per_patch[mask].mean())
    assert not torch.allclose(loss, per_patch.mean())  # the visible patches would change it
    target = model.targets(images, norm_pix=True)
    assert torch.allclose(target.mean(-1), torch.zeros(3, 64), atol=1e-5)
    assert torch.allclose(target.std(-1), torch.ones(3, 64), atol=1e-2)


def test_reconstruction_is_denormalised_with_each_patch_statistics(mae, monkeypatch) -> None:
    method, model, images, mask = mae
    method.cfg.norm_pix_loss = True
    # a perfect model: predicts the normalised target of every patch
    monkeypatch.setattr(model, "forward", lambda x, m, norm_pix: (0.0, model.targets(x, norm_pix)))
    panels = method.reconstruct(model, images, mask)
    assert list(panels) == ["original", "masked input", "reconstruction", "recon + visible"]
    for key in ("reconstruction", "recon + visible"):
        assert np.abs(panels[key].astype(int) - panels["original"].astype(int)).max() <= 1
    assert (panels["masked input"] == 110).all(axis=-1).mean() == pytest.approx(0.75, abs=0.05)


@pytest.mark.parametrize("ratio", ["1.0", "0", "0.99"])
def test_mask_ratio_out_of_range_is_refused(ratio: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config("mae", "tiny", [f"mask_ratio={ratio}"])
    assert err.value.field == "mask_ratio" and "[0.05, 0.95]" in str(err.value)


def test_decoder_heads_must_divide_decoder_width() -> None:
    with pytest.raises(ConfigError) as err:
        make_config("mae", "tiny", ["decoder_width=52", "decoder_heads=3"])
    assert err.value.field == "decoder_heads"
    with pytest.raises(ConfigError, match="splits the decoder_width into 4 equal parts"):
        make_config("mae", "tiny", ["decoder_width=50", "decoder_heads=5"])  # a sentence, not timm's assertion
