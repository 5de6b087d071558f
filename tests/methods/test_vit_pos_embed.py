"""ViT position embeddings (the paper's Appendix D.4 comparison): learned 1-D, learned 2-D (X and
Y tables), fixed 2-D sin-cos, none; and the study template that compares them."""

import pytest
import torch
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed

from workbench.data import DataInfo
from workbench.methods import get_method, make_config
from workbench.studies.templates import template_spec

INFO = DataInfo([f"c{i}" for i in range(10)], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 32)
VARIANTS = ["learned-1d", "learned-2d", "sincos-2d", "none"]


def build(pos_embed: str) -> tuple[object, torch.nn.Module]:
    torch.manual_seed(0)
    method = get_method("vit")(make_config("vit", "tiny", {"pos_embed": pos_embed}), INFO)
    return method, method.build()


def trained_ids(method, model: torch.nn.Module) -> set[int]:
    return {id(p) for group in method.param_groups(model) for p in group["params"]}


@pytest.mark.parametrize("pos_embed", VARIANTS)
def test_vit_position_embeddings(pos_embed: str) -> None:
    method, model = build(pos_embed)
    table = model.pos_embed
    if pos_embed == "none":
        assert table is None
        return
    assert table.shape == (1, 1 + 64, 64)  # [CLS] + 8 x 8 patches
    assert table.requires_grad == (pos_embed != "sincos-2d")
    if pos_embed == "sincos-2d":
        assert torch.all(table[0, 0] == 0)  # the [CLS] slot carries no position
        # a 2-D table: each channel encodes either the row or the column, so it is constant along the other
        grid = table[0, 1:].reshape(8, 8, 64)
        by_row = (grid - grid[:1]).abs().amax(dim=(0, 1)) < 1e-6
        by_col = (grid - grid[:, :1]).abs().amax(dim=(0, 1)) < 1e-6
        assert torch.all(by_row | by_col) and (by_row & ~by_col).sum() >= 16 and (by_col & ~by_row).sum() >= 16
        assert id(table) not in trained_ids(method, model)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize("method_name", ["vit", "mae"])
def test_sincos_2d_starts_with_patch_content_above_position(method_name: str) -> None:
    """A frozen full-amplitude table drowned the patches at init (top-1 0.21 where none gets 0.41).
    Now: the patch embedding is initialised like a linear layer (xavier, as MAE's reference), and the
    table has no part shared by every patch (the mean over patches is a frozen bias, no position),
    so the position signal is well below the patch content at init."""
    torch.manual_seed(0)
    if method_name == "vit":
        model = build("sincos-2d")[1]
    else:
        model = get_method("mae")(make_config("mae", "tiny"), INFO).build().encoder
    weight = model.patch_embed.proj.weight  # [D, 3, P, P]: fan in 48, fan out 64
    bound = (6 / (48 + 64)) ** 0.5
    assert weight.abs().max() <= bound and abs(weight.std() - bound / 3 ** 0.5) < 0.01
    table = model.pos_embed[0, 1:]  # [N, D]
    assert table.mean(0).abs().max() < 1e-6  # no offset shared by every patch
    raw = build_sincos2d_pos_embed([8, 8], dim=64)  # timm's table: what tells patches apart is all kept
    assert torch.allclose(table - table[:1], raw - raw[:1], atol=1e-6)
    with torch.no_grad():
        patches = model.patch_embed(torch.randn(64, 3, 32, 32))  # unit-variance pixels, as normalised data
    ratio = table.norm(dim=-1).mean() / patches.norm(dim=-1).mean()
    assert ratio < 0.5, f"position / patch amplitude {ratio:.2f} at init"


def test_learned_2d_is_two_axis_tables_concatenated_per_patch() -> None:
    method, model = build("learned-2d")
    tables = dict(model.parametrizations.pos_embed.named_parameters())
    x_table, y_table = tables["original0"], tables["original1"]
    assert x_table.shape == (8, 32) and y_table.shape == (8, 32)  # [grid width, D/2], [grid height, D/2]
    assert 0.015 < torch.cat([x_table, y_table]).std() < 0.025  # timm's init of pos_embed, as learned-1d
    table = model.pos_embed
    assert table.shape == (1, 1 + 64, 64)
    assert torch.all(table[0, 0] == 0)  # [CLS] has its own learned token; no position of its own
    grid = table[0, 1:].reshape(8, 8, 64)  # [row, column, D], raster order
    for column in range(8):  # every row of a column shares the X half
        assert torch.equal(grid[:, column, :32], x_table[column].expand(8, -1))
    for row in range(8):  # every column of a row shares the Y half
        assert torch.equal(grid[row, :, 32:], y_table[row].expand(8, -1))
    assert not torch.equal(grid[0, 0], grid[0, 1]) and not torch.equal(grid[0, 0], grid[1, 0])

    # both tables learn, without weight decay (as timm's pos_embed), and nothing else is new
    undecayed = {id(p) for g in method.param_groups(model) if g["weight_decay"] == 0.0 for p in g["params"]}
    assert {id(x_table), id(y_table)} <= undecayed
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert x_table.grad.abs().sum() > 0 and y_table.grad.abs().sum() > 0
    _, one_d = build("learned-1d")
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in one_d.parameters()) - 65 * 64 + 2 * 8 * 32


def test_learned_2d_exports_as_a_plain_timm_vit() -> None:
    """The exportable model is timm's own VisionTransformer with the table as `pos_embed`."""
    from timm.models.vision_transformer import VisionTransformer

    method, model = build("learned-2d")
    with torch.no_grad():  # tables unlike their init, so a wrong layout would show
        for p in model.parametrizations.pos_embed.parameters():
            p.copy_(torch.randn_like(p))
    model.eval()
    plain = method.exportable(model)
    assert type(plain) is VisionTransformer and not any(k.startswith("parametrizations") for k in plain.state_dict())
    assert torch.equal(plain.pos_embed, model.pos_embed)
    fresh = VisionTransformer(img_size=32, patch_size=4, num_classes=10, embed_dim=64, depth=2, num_heads=4,
                              mlp_ratio=2.0).eval()
    fresh.load_state_dict(plain.state_dict())
    x = torch.randn(3, 3, 32, 32)
    assert torch.allclose(fresh(x), model(x), atol=1e-5)
    assert model.pos_embed.requires_grad  # the training model keeps its tables


def test_position_embeddings_need_a_width_they_can_split() -> None:
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="width: a sincos-2d position embedding splits the width into 4"):
        make_config("vit", "tiny", {"pos_embed": "sincos-2d", "width": 66, "heads": 3})
    assert make_config("vit", "tiny", {"pos_embed": "learned-2d", "width": 66, "heads": 3}).width == 66


def test_pos_embed_template_compares_the_four_variants() -> None:
    for budget in ("tiny", "paper"):
        spec = template_spec("vit-pos-embed", budget)
        assert [p["pos_embed"] for p in spec.points] == VARIANTS
    seeded = template_spec("vit-pos-embed", seeds=[0, 1])
    assert len(seeded.points) == 8
