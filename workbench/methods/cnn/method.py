"""Supervised CNN classifier from timm: RegNet (DeiT's teacher family) or ResNet.

Built from scratch with `timm.create_model(arch, pretrained=False)` (nothing is downloaded).
Its main use is as a DeiT teacher; it is also the convolutional baseline of any comparison.
"""

from __future__ import annotations

import timm
from torch import nn

from workbench.methods.base import ClassifierMethod
from workbench.methods.cnn import Config


class CnnMethod(ClassifierMethod):
    cfg: Config

    def build(self) -> nn.Module:
        self.label_smoothing = self.cfg.label_smoothing
        return timm.create_model(self.cfg.arch, pretrained=False, num_classes=self.data.num_classes,
                                 drop_rate=self.cfg.drop_rate)


METHOD = CnnMethod
