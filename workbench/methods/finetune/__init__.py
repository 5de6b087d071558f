"""Fine-tuning and linear probing: the `finetune` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from workbench.config import ParentInfo, grad_clip_param, param
from workbench.errors import ConfigError
from workbench.methods.backbone import ENCODER_SHAPE, ViTBackboneConfig


@dataclass(kw_only=True)
class Config(ViTBackboneConfig):
    position: ClassVar[int] = 3
    description: ClassVar[str] = ("Fine-tune or linearly probe a pre-trained encoder (MAE, BEiT, masked patch "
                                  "prediction, or weights from init) as a classifier on a labelled dataset.")
    parent_roles: ClassVar[dict[str, tuple[str, ...]]] = {"encoder": ("mae", "beit", "mpp")}
    inherits: ClassVar[dict[str, tuple[str, ...]]] = {"encoder": ENCODER_SHAPE}
    suggests: ClassVar[dict[str, tuple[str, ...]]] = {"encoder": ("dataset",)}  # fine-tuned where pre-trained
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(epochs=8, lr=2e-3),
        "small": {},
        # facebookresearch/mae FINETUNE.md and main_finetune.py (ViT-B): 1024 images a step (4 x 256
        # here), blr 5e-4, layer decay 0.65, 100 epochs, warmup 5, wd 0.05, drop path 0.1, RandAugment
        # m9, random erasing 0.25, mixup 0.8, CutMix 1.0, label smoothing 0.1, no clipping. The linear
        # probe's (LINPROBE.md: LARS, blr 0.1, batch 16384, 90 epochs) is the studies' probe follow-up
        "paper": dict(epochs=100, batch_size=1024, accum_steps=4, blr=5e-4, weight_decay=0.05, warmup_epochs=5.0,
                      layer_decay=0.65, drop_path=0.1, label_smoothing=0.1, augment="randaugment",
                      randaug="rand-m9-mstd0.5-inc1", crop_min=0.08, reprob=0.25, mixup=0.8, cutmix=1.0),
    }

    grad_clip: float = grad_clip_param(0.0, "MAE's fine-tuning reference")
    mode: str = param("full", "full: train every weight; linear: freeze the encoder, train a linear head "
                              "(after a BatchNorm without affine, as MAE's linear probe)",
                      choices=("full", "linear"))
    layer_decay: float = param(0.75, "layer-wise learning-rate decay in full mode (1: off)", min=0.05, max=1.0)
    pool: str = param("avg", "image feature: avg (mean of patch tokens) or token ([CLS])", choices=("avg", "token"))
    label_smoothing: float = param(0.0, "label smoothing of the cross-entropy", min=0.0, max=0.5)
    drop_path: float = param(0.0, "stochastic depth rate (full mode)", min=0.0, max=0.9)

    def required_parents(self) -> dict[str, tuple[str, ...]]:
        """The encoder comes from a pre-training run, or from `init` (weights from elsewhere)."""
        return {} if self.init.strip() else dict(self.parent_roles)

    def check_parents(self, parents: Mapping[str, ParentInfo]) -> None:
        if self.init.strip() and parents:
            raise ConfigError("init", "the encoder comes either from a parent run or from init, not both; "
                                      "clear init, or drop the encoder parent")
        super().check_parents(parents)
