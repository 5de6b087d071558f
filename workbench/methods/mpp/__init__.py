"""Masked patch prediction: the `mpp` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import param
from workbench.errors import ConfigError
from workbench.methods.backbone import ViTBackboneConfig


@dataclass(kw_only=True)
class Config(ViTBackboneConfig):
    loss: ClassVar[str] = "masked patch prediction"
    position: ClassVar[int] = 8
    description: ClassVar[str] = ("ViT masked patch prediction (the ViT paper's self-supervision): corrupt half "
                                  "the patch embeddings, predict their mean colours or pixels.")
    needs_labels: ClassVar[bool] = False
    key_metric: ClassVar[str] = "val/loss"
    key_metric_higher_is_better: ClassVar[bool] = False
    mask_fields: ClassVar[tuple[str, str | None, bool] | None] = ("corrupt_ratio", None, True)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(epochs=8, lr=2e-3),
        "small": {},
        # ViT-B/16 self-supervision: 50 % corruption, 3-bit mean colour target
        "paper": dict(epochs=300, batch_size=4096, accum_steps=16, lr=2e-4, warmup_epochs=10.0, weight_decay=0.1),
    }

    corrupt_ratio: float = param(0.5, "share of patch embeddings corrupted: of those 80 % become [mask], "
                                      "10 % another patch's embedding, 10 % stay", min=0.05, max=0.95)
    target: str = param("color3bit", "what to predict per corrupted patch: its 3-bit mean colour (512 classes), "
                                     "a 4x4 grid of 3-bit mean colours, or its pixels (L2)",
                        choices=("color3bit", "color3bit_4x4", "pixel_l2"))
    drop_path: float = param(0.0, "stochastic depth rate", min=0.0, max=0.9)

    def check(self) -> None:
        super().check()
        if self.target == "color3bit_4x4" and self.patch_size % 4:
            raise ConfigError("target", f"color3bit_4x4 splits each patch into 4 x 4 cells; patch size "
                                        f"{self.patch_size} is not a multiple of 4")
