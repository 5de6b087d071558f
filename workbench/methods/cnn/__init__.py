"""CNN classifier: the `cnn` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import param
from workbench.methods.start import InitConfig


@dataclass(kw_only=True)
class Config(InitConfig):
    position: ClassVar[int] = 4
    description: ClassVar[str] = ("Supervised convolutional classifier from timm (RegNet as in DeiT, ResNet, "
                                  "MobileViT): a teacher for DeiT, or a baseline.")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # ResNet-10-T: RegNets learn slowly from scratch at 32 px; this reaches ~70 % in 3 epochs
        "tiny": dict(arch="resnet10t", image_size=32, batch_size=64, epochs=3, lr=2e-3, warmup_epochs=0.5,
                     label_smoothing=0.0),
        "small": {},
        # DeiT's teacher: RegNetY-16GF at 224 px
        "paper": dict(arch="regnety_160", image_size=224, batch_size=256, epochs=300, lr=1e-3, warmup_epochs=5.0),
    }

    arch: str = param("regnety_002", "timm architecture (built from scratch, never downloaded)",
                      choices=("regnety_002", "regnetx_002", "regnety_160", "resnet10t", "resnet18", "resnet50",
                               "mobilevit_xxs", "mobilevit_xs", "mobilevitv2_050"))
    drop_rate: float = param(0.0, "dropout before the classifier", min=0.0, max=0.9)
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy", min=0.0, max=0.5)
