"""BEiT: the `beit` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import grad_clip_param, param
from workbench.methods.backbone import ViTBackboneConfig


@dataclass(kw_only=True)
class Config(ViTBackboneConfig):
    loss: ClassVar[str] = "cross-entropy over the tokenizer's codes"
    position: ClassVar[int] = 7
    description: ClassVar[str] = ("BEiT: blockwise-masked patches replaced by a [mask] embedding; the ViT predicts "
                                  "each masked patch's visual token from a dVAE tokenizer.")
    needs_labels: ClassVar[bool] = False
    parent_roles: ClassVar[dict[str, tuple[str, ...]]] = {"tokenizer": ("dvae",)}
    inherits: ClassVar[dict[str, tuple[str, ...]]] = {"tokenizer": ("image_size", "patch_size")}
    key_metric: ClassVar[str] = "val/mask_acc"
    mask_fields: ClassVar[tuple[str, str | None, bool] | None] = ("mask_ratio", "mask_strategy", False)  # up to the ratio
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(epochs=8, lr=2e-3),
        "small": {},
        # microsoft/unilm beit/README and run_beit_pretraining.py (BEiT-B): 2048 images a step (8 x 256
        # here), lr 1.5e-3, 800 epochs, warmup 10, wd 0.05, AdamW(0.9, 0.999), clip 3.0, drop path 0.1,
        # 40 % blockwise masking (75 of 196 patches), crop 0.08-1 + flip, layer-scale 0.1
        "paper": dict(epochs=800, batch_size=2048, accum_steps=8, lr=1.5e-3, warmup_epochs=10.0, weight_decay=0.05,
                      drop_path=0.1, adam_beta2=0.999, augment="crop_flip", crop_min=0.08, layer_scale=0.1),
    }

    grad_clip: float = grad_clip_param(3.0, "BEiT's reference")
    mask_ratio: float = param(0.4, "share of patches masked (BEiT: up to 40 %)", min=0.05, max=0.6)
    mask_strategy: str = param("block", "which patches: block (BEiT) or random", choices=("block", "random"))
    drop_path: float = param(0.0, "stochastic depth rate", min=0.0, max=0.9)
