"""What every ViT method's config shares, free of torch: the backbone's geometry and its
checks, the fields a fine-tune inherits from its encoder, and DeiT's recipe (the `vit` and `deit`
paper presets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import param
from workbench.errors import ConfigError
from workbench.methods.start import InitConfig

# DeiT-B's recipe (facebookresearch/deit, main.py's defaults and README): 1024 images a step (here
# 4 accumulated batches of 256), lr 5e-4 per 512 images (blr 2.5e-4 per 256), 300 epochs, warmup 5,
# RandAugment m9, random erasing 0.25, mixup 0.8, CutMix 1.0, repeated augmentation 3, EMA
# 0.99996, label smoothing 0.1, no gradient clipping; the timm crop's default scale, 0.08-1
DEIT_RECIPE: dict[str, Any] = dict(
    batch_size=1024, accum_steps=4, blr=2.5e-4, epochs=300, warmup_epochs=5.0, augment="randaugment",
    randaug="rand-m9-mstd0.5-inc1", crop_min=0.08, reprob=0.25, mixup=0.8, cutmix=1.0, repeated_aug=3,
    ema=True, ema_decay=0.99996, label_smoothing=0.1, grad_clip=0.0)


def check_patch_size(image_size: int, patch_size: int) -> None:
    """Patches must tile the image exactly; the message lists the sizes that do."""
    if image_size % patch_size:
        divisors = [p for p in range(2, min(image_size, 33)) if image_size % p == 0]
        raise ConfigError("patch_size", f"patch size {patch_size} does not divide image size {image_size}; "
                                        f"choose one of {divisors}")


@dataclass(kw_only=True)
class ViTBackboneConfig(InitConfig):
    """The ViT encoder shape shared by every ViT-family method."""

    inspections: ClassVar[tuple[str, ...]] = ("attention",)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # about a minute on a 2-core laptop CPU with the built-in 32 px shapes
        "tiny": dict(image_size=32, patch_size=4, width=64, depth=2, heads=4, mlp_ratio=2.0,
                     batch_size=64, epochs=8, lr=3e-3, warmup_epochs=1.0, drop_path=0.0),
        "small": {},
        # ViT-B/16 geometry (224/16 = 14x14 tokens); each method's preset adds its paper's recipe
        # (README, "The paper presets", gives each value's source)
        "paper": dict(image_size=224, patch_size=16, width=768, depth=12, heads=12, mlp_ratio=4.0,
                      weight_decay=0.05, drop_path=0.1),
    }

    patch_size: int = param(4, "patch side in pixels; must divide the image size", min=1, max=256)
    width: int = param(192, "token width (embedding dimension)", min=8, max=4096)
    depth: int = param(6, "transformer blocks", min=1, max=64)
    heads: int = param(3, "attention heads; must divide the width", min=1, max=64)
    mlp_ratio: float = param(4.0, "MLP hidden width as a multiple of the token width", min=0.5, max=16.0)
    drop_path: float = param(0.1, "stochastic depth rate", min=0.0, max=0.9)
    layer_scale: float = param(0.0, "LayerScale: every block's residual branches scaled by learned per-channel "
                                    "factors that start at this value (0: off; BEiT 0.1; timm's init_values)",
                               min=0.0, max=1.0)

    def check(self) -> None:
        super().check()
        check_patch_size(self.image_size, self.patch_size)
        if self.width % self.heads:
            raise ConfigError("heads", f"{self.heads} heads do not divide width {self.width}; "
                                       f"choose a width that is a multiple of the head count")

    @property
    def grid_size(self) -> int:
        """Patches per image side."""
        return self.image_size // self.patch_size


ENCODER_SHAPE = ("image_size", "patch_size", "width", "depth", "heads", "mlp_ratio", "layer_scale")
