"""A method defined outside the workbench, in this one module and nowhere else: a linear
classifier on raw pixels. `WORKBENCH_METHODS=tests.methods.pixels_plugin` makes it a method
named `pixels_plugin` (tests/methods/test_plugin.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from workbench.config import TrainConfig, param
from workbench.methods.base import ClassifierMethod


@dataclass(kw_only=True)
class Config(TrainConfig):
    description: ClassVar[str] = "A linear classifier on raw pixels (a plug-in method of the tests)."
    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": dict(batch_size=32, epochs=1, warmup_epochs=0.0)}

    hidden: int = param(0, "hidden units before the classifier (0: linear)", min=0, max=4096)


class PixelsMethod(ClassifierMethod):
    cfg: Config

    def build(self) -> nn.Module:
        inputs, classes = 3 * self.cfg.image_size ** 2, self.data.num_classes
        if not self.cfg.hidden:
            return nn.Sequential(nn.Flatten(), nn.Linear(inputs, classes))
        return nn.Sequential(nn.Flatten(), nn.Linear(inputs, self.cfg.hidden), nn.GELU(),
                             nn.Linear(self.cfg.hidden, classes))


METHOD = PixelsMethod
