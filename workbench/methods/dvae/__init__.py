"""Discrete VAE tokenizer: the `dvae` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import TrainConfig, param
from workbench.errors import ConfigError
from workbench.methods.backbone import check_patch_size


@dataclass(kw_only=True)
class Config(TrainConfig):
    loss: ClassVar[str] = "reconstruction and KL"
    position: ClassVar[int] = 6
    description: ClassVar[str] = ("Discrete VAE tokenizer for BEiT: maps each image patch to one of K visual "
                                  "tokens (Gumbel-softmax, annealed temperature).")
    needs_labels: ClassVar[bool] = False
    key_metric: ClassVar[str] = "val/recon_hard"
    key_metric_higher_is_better: ClassVar[bool] = False
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(image_size=32, patch_size=4, codebook_size=128, hidden=64, batch_size=64, epochs=6,
                     lr=2e-3, warmup_epochs=0.5, weight_decay=0.0),
        "small": {},
        # BEiT used DALL-E's tokenizer: 8192 tokens, a 14 x 14 grid at 224 px (stride 16)
        "paper": dict(image_size=224, patch_size=16, codebook_size=8192, hidden=256, batch_size=256,
                      epochs=100, lr=1e-3, warmup_epochs=2.0),
    }

    patch_size: int = param(4, "pixels per token side (the BEiT ViT's patch size); a power of 2", min=2, max=64)
    codebook_size: int = param(512, "K: number of visual tokens", min=2, max=16384)
    hidden: int = param(96, "channels of the conv encoder and decoder", min=8, max=1024)
    temp_start: float = param(1.0, "Gumbel-softmax temperature at the start", min=0.01, max=10.0)
    temp_end: float = param(0.0625, "temperature at the end (annealed exponentially; DALL-E: 1/16)",
                            min=0.01, max=10.0)
    kl_weight: float = param(0.01, "weight of the KL to the uniform prior over codes", min=0.0, max=10.0)
    kl_warmup_epochs: float = param(1.0, "ramp the KL weight up from 0 over this many epochs", min=0.0)
    weight_decay: float = param(0.0, "AdamW weight decay", min=0.0, max=10.0)

    def check(self) -> None:
        super().check()
        if self.patch_size & (self.patch_size - 1):
            raise ConfigError("patch_size", f"patch size {self.patch_size} is not a power of 2 (each halving is "
                                            f"one stride-2 convolution); use 2, 4, 8 or 16")
        check_patch_size(self.image_size, self.patch_size)
        if self.temp_end > self.temp_start:
            raise ConfigError("temp_end", f"the end temperature {self.temp_end} is above the start "
                                          f"{self.temp_start}; annealing lowers it")
