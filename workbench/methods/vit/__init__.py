"""Supervised ViT: the `vit` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import ViTBackboneConfig, param


@dataclass(kw_only=True)
class Config(ViTBackboneConfig):
    position: ClassVar[int] = 1
    description: ClassVar[str] = "Supervised ViT classifier: patches, [CLS] token, transformer encoder."
    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": dict(label_smoothing=0.0)}

    pos_embed: str = param("learned-1d", "position embedding: learned 1-D (the paper's), fixed 2-D sin-cos, or none",
                           choices=("learned-1d", "sincos-2d", "none"))
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy", min=0.0, max=0.5)
