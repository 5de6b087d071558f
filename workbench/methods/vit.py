"""Supervised ViT (Dosovitskiy et al.): P x P patches linearly projected, a [CLS] token, a
transformer encoder, and a linear head on the [CLS] output.

The position embedding is selectable so the paper's comparison can be re-run: `learned-1d`
(the paper's choice), fixed `sincos-2d`, or `none`. The model is a plain timm
`VisionTransformer`, so its weights load into timm unchanged.
"""

from __future__ import annotations

import torch
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from timm.models.vision_transformer import VisionTransformer

from workbench.config import ViTBackboneConfig, VitConfig
from workbench.methods.base import ClassifierMethod


def build_vit(cfg: ViTBackboneConfig, num_classes: int, pos_embed: str = "learned-1d", *,
              global_pool: str = "token", fc_norm: bool | None = None,
              model_class: type[VisionTransformer] = VisionTransformer) -> VisionTransformer:
    """A timm ViT (or subclass, such as DeiT's distilled one) with the config's geometry;
    `num_classes=0` gives a headless encoder."""
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
        pos_embed="none" if pos_embed == "none" else "learn",
    )
    if pos_embed == "sincos-2d":
        freeze_sincos_2d(model.pos_embed, cfg.grid_size, num_prefix=model.num_prefix_tokens)
    return model


def freeze_sincos_2d(table: torch.nn.Parameter, grid: int, num_prefix: int = 1) -> None:
    """Fill a [1, prefix + grid*grid, D] position table with fixed 2-D sin-cos values (zeros for the
    prefix tokens, as MAE does) and stop it from training."""
    dim = table.shape[-1]
    sincos = build_sincos2d_pos_embed([grid, grid], dim=dim)
    with torch.no_grad():
        table.zero_()
        table[0, num_prefix:] = sincos.to(table.dtype)
    table.requires_grad_(False)


class VitMethod(ClassifierMethod):
    name = "vit"
    cfg: VitConfig

    def build(self) -> VisionTransformer:
        self.label_smoothing = self.cfg.label_smoothing
        return build_vit(self.cfg, self.data.num_classes, self.cfg.pos_embed)


METHOD = VitMethod
