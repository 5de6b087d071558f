"""Swin Transformer: the `swin` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.config import grad_clip_param, param
from workbench.errors import ConfigError
from workbench.methods.backbone import check_patch_size
from workbench.methods.start import InitConfig


def int_list(field: str, text: str) -> list[int]:
    """'2,2,6' -> [2, 2, 6], naming the field when it is not a list of positive whole numbers."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ConfigError(field, f"{text!r} is not a comma-separated list of positive whole numbers (e.g. 2,2,6)")
    return values


@dataclass(kw_only=True)
class Config(InitConfig):
    position: ClassVar[int] = 9
    description: ClassVar[str] = ("Swin Transformer classifier (timm): attention inside shifted windows, a "
                                  "hierarchy of stages that halve the token grid.")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(image_size=32, patch_size=4, embed_dim=32, depths="2,2", heads="2,4", window_size=4,
                     mlp_ratio=2.0, batch_size=64, epochs=8, lr=2e-3, warmup_epochs=1.0, drop_path=0.0, label_smoothing=0.0),
        "small": {},
        # Swin-T: 224 px, patch 4, window 7, depths 2-2-6-2
        "paper": dict(image_size=224, patch_size=4, embed_dim=96, depths="2,2,6,2", heads="3,6,12,24",
                      window_size=7, batch_size=256, epochs=300, lr=1e-3, weight_decay=0.05, warmup_epochs=20.0,
                      drop_path=0.2, label_smoothing=0.1),
    }

    grad_clip: float = grad_clip_param(5.0, "Swin's reference")
    patch_size: int = param(2, "patch side in pixels of the first stage", min=1, max=64)
    embed_dim: int = param(64, "token width of the first stage (doubles at every stage)", min=8, max=1024)
    depths: str = param("2,2,6", "blocks per stage, comma-separated (each stage halves the token grid)")
    heads: str = param("2,4,8", "attention heads per stage, comma-separated")
    window_size: int = param(4, "attention window side, in tokens", min=1, max=64)
    mlp_ratio: float = param(4.0, "MLP hidden width as a multiple of the token width", min=0.5, max=16.0)
    drop_path: float = param(0.1, "stochastic depth rate", min=0.0, max=0.9)
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy", min=0.0, max=0.5)

    def check(self) -> None:
        super().check()
        depths, heads = int_list("depths", self.depths), int_list("heads", self.heads)
        if len(heads) != len(depths):
            raise ConfigError("heads", f"{len(heads)} head counts for {len(depths)} stages; give one per stage")
        check_patch_size(self.image_size, self.patch_size)
        grid = self.image_size // self.patch_size
        if grid % 2 ** (len(depths) - 1):
            raise ConfigError("depths", f"{len(depths)} stages halve the {grid}x{grid} token grid "
                                        f"{len(depths) - 1} times, which does not divide it; use fewer stages "
                                        f"or a smaller patch size")
        for stage in range(len(depths)):
            side, width = grid // 2 ** stage, self.embed_dim * 2 ** stage
            if side > self.window_size and side % self.window_size:
                fits = [w for w in range(2, side) if side % w == 0]
                raise ConfigError("window_size", f"window {self.window_size} does not tile the {side}x{side} token "
                                                 f"grid of stage {stage + 1}; choose one of {fits} (or >= {side}: "
                                                 f"timm then attends over the whole grid)")
            if width % heads[stage]:
                raise ConfigError("heads", f"{heads[stage]} heads do not divide stage {stage + 1}'s width {width}")
