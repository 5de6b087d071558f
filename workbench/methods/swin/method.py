"""Swin Transformer (Liu et al.): self-attention inside local windows that shift by half a window
every other block, in stages that merge 2x2 patches (halving the grid, doubling the width).
Built with `timm.create_model`, so its exports are plain timm models too.
"""

from __future__ import annotations

import timm
from torch import nn

from workbench.methods.base import ClassifierMethod
from workbench.methods.swin import Config, int_list


class SwinMethod(ClassifierMethod):
    cfg: Config

    def build(self) -> nn.Module:
        cfg = self.cfg
        self.label_smoothing = cfg.label_smoothing
        return timm.create_model(
            "swin_tiny_patch4_window7_224", pretrained=False, num_classes=self.data.num_classes,
            img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
            depths=tuple(int_list("depths", cfg.depths)), num_heads=tuple(int_list("heads", cfg.heads)),
            window_size=cfg.window_size, mlp_ratio=cfg.mlp_ratio, drop_path_rate=cfg.drop_path)


METHOD = SwinMethod
