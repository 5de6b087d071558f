"""Supervised ViT (Dosovitskiy et al.): P x P patches linearly projected, a [CLS] token, a
transformer encoder, and a linear head on the [CLS] output.

The position embedding is selectable so the paper's comparison (Appendix D.4) can be re-run:
`learned-1d` (the paper's choice), `learned-2d` (the paper's 2-D variant: learned X and Y
tables), fixed `sincos-2d`, or `none`. The model is a timm `VisionTransformer`; a learned-2d
table is a parametrization of its `pos_embed`, materialised as a plain parameter on export,
so the weights load into plain timm unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch.nn.utils import parametrize

from workbench.methods.backbone import ViTBackboneConfig
from workbench.methods.base import ClassifierMethod
from workbench.methods.vit import Config


def build_vit(cfg: ViTBackboneConfig, num_classes: int, pos_embed: str = "learned-1d", *,
              global_pool: str = "token", fc_norm: bool | None = None,
              model_class: type[VisionTransformer] = VisionTransformer) -> VisionTransformer:
    """A timm ViT (or subclass, such as DeiT's distilled one) with the config's geometry;
    `num_classes=0` gives a headless encoder. `learned-2d` makes the plain ViT only."""
    if pos_embed == "learned-2d":
        if model_class is not VisionTransformer:
            raise ValueError(f"learned-2d position embeddings are built for the plain ViT, not {model_class.__name__}")
        model_class = AxisPositionViT
    model = model_class(
        global_pool=global_pool,
        fc_norm=fc_norm,
        img_size=cfg.image_size,
        patch_size=cfg.patch_size,
        num_classes=num_classes,
        embed_dim=cfg.width,
        depth=cfg.depth,
        num_heads=cfg.heads,
        mlp_ratio=cfg.mlp_ratio,
        drop_path_rate=cfg.drop_path,
        init_values=cfg.layer_scale or None,
        pos_embed="none" if pos_embed == "none" else "learn",
    )
    if pos_embed == "sincos-2d":
        # as MAE's reference: the patch embedding initialised like the linear layer it is (flattened
        # [D, 3*P*P]), which makes the patches about 1.6x stronger than the conv's default init
        weight = model.patch_embed.proj.weight
        torch.nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        freeze_sincos_2d(model.pos_embed, cfg.grid_size, num_prefix=model.num_prefix_tokens, centred=True)
    return model


def freeze_sincos_2d(table: torch.nn.Parameter, grid: int, num_prefix: int = 1, *, centred: bool = False) -> None:
    """Fill a [1, prefix + grid*grid, D] position table with fixed 2-D sin-cos values (zeros for the
    prefix tokens, as MAE does) and stop it from training.

    `centred` subtracts the table's mean over the patches [D]: the same vector for every patch, so
    no position, only a frozen bias on the patch embeddings (whose own learned bias can add it
    back). Uncentred, its low-frequency cosines put a shared offset of norm ~0.9 sqrt(D/2) on
    every patch token, larger than the patch content at init, which LayerNorm then shrinks."""
    dim = table.shape[-1]
    sincos = build_sincos2d_pos_embed([grid, grid], dim=dim)
    if centred:
        sincos = sincos - sincos.mean(dim=0)
    with torch.no_grad():
        table.zero_()
        table[0, num_prefix:] = sincos.to(table.dtype)
    table.requires_grad_(False)


class AxisPositions(torch.nn.Module):
    """The ViT paper's 2-D position embedding (Appendix D.4) as a parametrization of timm's
    `pos_embed` [1, prefix + gh*gw, D]: two learned tables, X [gw, D/2] and Y [gh, D/2], and the
    patch in row i, column j gets concat(X[j], Y[i]). The prefix tokens ([CLS]) get zeros: their
    own token is learned already, so a learned position for it would add nothing.

    timm code reading `model.pos_embed` sees the whole table; the tables themselves are the
    parameters `parametrizations.pos_embed.original0` (X) and `original1` (Y)."""

    def __init__(self, grid: tuple[int, int], num_prefix: int) -> None:
        super().__init__()
        self.grid, self.num_prefix = tuple(grid), num_prefix

    def forward(self, x_table: torch.Tensor, y_table: torch.Tensor) -> torch.Tensor:
        """X [gw, D/2], Y [gh, D/2] -> the table [1, prefix + gh*gw, D], patches in raster order."""
        gh, gw = self.grid
        columns = x_table.unsqueeze(0).expand(gh, -1, -1)  # [gh, gw, D/2]: the same X down a column
        rows = y_table.unsqueeze(1).expand(-1, gw, -1)  # [gh, gw, D/2]: the same Y along a row
        patches = torch.cat([columns, rows], dim=-1).reshape(1, gh * gw, -1)
        return torch.cat([patches.new_zeros(1, self.num_prefix, patches.shape[-1]), patches], dim=1)

    def right_inverse(self, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The X and Y tables of a table of this form: the X halves of the first row of patches,
        the Y halves of the first column. At registration they start from timm's init of
        `pos_embed` (truncated normal, std 0.02), as learned-1d does."""
        gh, gw = self.grid
        half = table.shape[-1] // 2
        patches = table[0, self.num_prefix:].reshape(gh, gw, -1)
        return patches[0, :, :half].clone(), patches[:, 0, half:].clone()


class AxisPositionViT(VisionTransformer):
    """A timm ViT whose `pos_embed` is computed by `AxisPositions` from learned X and Y tables;
    they are not weight-decayed, like timm's own `pos_embed`."""

    TABLES = ("parametrizations.pos_embed.original0", "parametrizations.pos_embed.original1")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parametrize.register_parametrization(self, "pos_embed",
                                             AxisPositions(self.patch_embed.grid_size, self.num_prefix_tokens))

    def no_weight_decay(self) -> set[str]:
        return {*super().no_weight_decay(), *self.TABLES}


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, P*P*C]: patches in raster order, pixels (row, col, channel)."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int = 3) -> torch.Tensor:
    """[B, N, P*P*C] -> [B, C, H, W] for a square grid of patches."""
    b, n, _ = patches.shape
    g, p = int(round(n ** 0.5)), patch_size
    x = patches.reshape(b, g, g, p, p, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(b, channels, g * p, g * p)


class MaskedTokenEncoder(torch.nn.Module):
    """A timm ViT whose patch embeddings can be replaced before the position embeddings are
    added (BERT-style corruption, as BEiT and ViT's masked patch prediction do): the encoder
    sees all N + 1 tokens, some of them a learned [mask] embedding."""

    def __init__(self, cfg: ViTBackboneConfig) -> None:
        super().__init__()
        self.vit = build_vit(cfg, num_classes=0)
        self.mask_token = torch.nn.Parameter(torch.zeros(1, 1, cfg.width))
        torch.nn.init.trunc_normal_(self.mask_token, std=0.02)

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "pos_embed", "mask_token"}

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> patch embeddings [B, N, D], before any position information."""
        return self.vit.patch_embed(images)

    def encode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Patch embeddings [B, N, D] (some replaced) -> encoded patch tokens [B, N, D]."""
        vit = self.vit
        x = vit.norm_pre(vit._pos_embed(embeddings))  # prepends [CLS], adds position embeddings
        return vit.norm(vit.blocks(x))[:, vit.num_prefix_tokens:]

    def masked(self, embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Replace the embeddings at mask [B, N] (True) with the [mask] embedding."""
        return torch.where(mask.unsqueeze(-1), self.mask_token.to(embeddings.dtype), embeddings)


class VitMethod(ClassifierMethod):
    cfg: Config

    def build(self) -> VisionTransformer:
        self.label_smoothing = self.cfg.label_smoothing
        return build_vit(self.cfg, self.data.num_classes, self.cfg.pos_embed)

    def init_target(self, model: VisionTransformer) -> VisionTransformer:
        return model  # not the plain copy `exportable` makes of a learned-2d model

    def exportable(self, model: VisionTransformer) -> VisionTransformer:
        """The classifier as a plain timm ViT: a learned-2d table becomes timm's `pos_embed`
        parameter (a copy; the training model keeps its X and Y tables)."""
        if not isinstance(model, AxisPositionViT):
            return model
        state = {k: v for k, v in model.state_dict().items() if k not in AxisPositionViT.TABLES}
        plain = build_vit(self.cfg, self.data.num_classes).to(model.pos_embed.device)
        plain.load_state_dict({**state, "pos_embed": model.pos_embed.detach()})  # [1, 1 + N, D]
        return plain.train(model.training)


METHOD = VitMethod
