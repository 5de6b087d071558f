"""Supervised ViT: the `vit` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import param
from workbench.errors import ConfigError
from workbench.methods.backbone import DEIT_RECIPE, ViTBackboneConfig

# equal parts of the width a position embedding needs: X | Y, or sin | cos of X | Y
WIDTH_MULTIPLE = {"learned-2d": 2, "sincos-2d": 4}


@dataclass(kw_only=True)
class Config(ViTBackboneConfig):
    position: ClassVar[int] = 1
    description: ClassVar[str] = "Supervised ViT classifier: patches, [CLS] token, transformer encoder."
    # `paper`: ViT-B/16 trained as DeiT trains it on ImageNet-1k (the ViT paper pre-trains on JFT-300M)
    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": dict(label_smoothing=0.0), "paper": DEIT_RECIPE}

    pos_embed: str = param(
        "learned-1d",
        "position embedding added to the patch tokens: learned-1d, one learned vector per patch in raster order "
        "(the paper's choice); learned-2d, learned X and Y tables of width/2 each, concatenated per patch (the "
        "paper's 2-D variant); sincos-2d, fixed sin-cos of the row and column less their mean over the "
        "patches, with the patch embedding initialised as MAE's (xavier); or none",
        choices=("learned-1d", "learned-2d", "sincos-2d", "none"))
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy", min=0.0, max=0.5)

    def check(self) -> None:
        super().check()
        multiple = WIDTH_MULTIPLE.get(self.pos_embed, 1)
        if self.width % multiple:
            raise ConfigError("width", f"a {self.pos_embed} position embedding splits the width into {multiple} "
                                       f"equal parts; choose a width that is a multiple of {multiple}")
