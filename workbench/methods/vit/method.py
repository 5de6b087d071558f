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

from workbench.config import ViTBackboneConfig
from workbench.methods.base import ClassifierMethod
from workbench.methods.vit import Config


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


METHOD = VitMethod
