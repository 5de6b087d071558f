"""MAE: the `mae` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import grad_clip_param, param
from workbench.errors import ConfigError
from workbench.methods.backbone import ViTBackboneConfig


@dataclass(kw_only=True)
class Config(ViTBackboneConfig):
    loss: ClassVar[str] = "pixel error on the masked patches"
    position: ClassVar[int] = 2
    description: ClassVar[str] = ("Masked autoencoder: the encoder sees only the visible patches, a light decoder "
                                  "reconstructs the masked ones' pixels.")
    needs_labels: ClassVar[bool] = False
    key_metric: ClassVar[str] = "val/loss"
    key_metric_higher_is_better: ClassVar[bool] = False
    mask_fields: ClassVar[tuple[str, str | None, bool] | None] = ("mask_ratio", "mask_strategy", True)  # equal counts batch
    inspections: ClassVar[tuple[str, ...]] = ("attention", "reconstruct")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(decoder_width=48, decoder_depth=1, decoder_heads=3, epochs=8, lr=2e-3, adam_beta2=0.95),
        "small": {},
        # facebookresearch/mae PRETRAIN.md and main_pretrain.py: 4096 images a step (16 x 256 here),
        # blr 1.5e-4, 800 epochs, warmup 40, wd 0.05, AdamW(0.9, 0.95), crop 0.2-1 + flip, normalised
        # pixel targets, no clipping; 75 % random masking, a 512-d 8-block decoder (models_mae.py)
        "paper": dict(decoder_width=512, decoder_depth=8, decoder_heads=16, norm_pix_loss=True, epochs=800,
                      batch_size=4096, accum_steps=16, blr=1.5e-4, weight_decay=0.05, warmup_epochs=40.0,
                      adam_beta2=0.95, augment="crop_flip", crop_min=0.2, drop_path=0.0),
    }

    grad_clip: float = grad_clip_param(0.0, "MAE's reference")
    mask_ratio: float = param(0.75, "share of patches masked (and dropped from the encoder)", min=0.05, max=0.95)
    mask_strategy: str = param("random", "which patches: random (the paper's best), block or grid",
                               choices=("random", "block", "grid"))
    decoder_width: int = param(128, "decoder token width (narrower than the encoder)", min=8, max=4096)
    decoder_depth: int = param(2, "decoder transformer blocks", min=1, max=32)
    decoder_heads: int = param(4, "decoder attention heads; must divide the decoder width", min=1, max=64)
    norm_pix_loss: bool = param(False, "predict each patch's pixels normalised by its own mean and variance")
    drop_path: float = param(0.0, "stochastic depth rate in the encoder", min=0.0, max=0.9)

    def check(self) -> None:
        super().check()
        for name in ("width", "decoder_width"):  # its fixed 2-D sin-cos tables split the width in four
            if getattr(self, name) % 4:
                raise ConfigError(name, f"MAE's fixed 2-D sin-cos position table splits the {name} into 4 equal "
                                        f"parts; choose a multiple of 4")
        if self.decoder_width % self.decoder_heads:
            raise ConfigError("decoder_heads", f"{self.decoder_heads} heads do not divide decoder width "
                                               f"{self.decoder_width}")
        if round(self.grid_size ** 2 * (1 - self.mask_ratio)) < 1:
            raise ConfigError("mask_ratio", f"mask ratio {self.mask_ratio} leaves no visible patch of "
                                            f"{self.grid_size ** 2}; lower it")
