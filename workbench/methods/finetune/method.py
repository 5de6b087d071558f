"""Fine-tuning and linear probing of a pre-trained encoder: what pre-training is for.

The parent run's encoder (a timm ViT) is rebuilt as a classifier for this run's dataset.
`full` trains every weight, with layer-wise learning-rate decay (deeper blocks learn
faster, as in BEiT and MAE fine-tuning). `linear` freezes the encoder and trains only a
linear head behind a BatchNorm without affine parameters (MAE's linear probe), so it
measures how linearly separable the pre-trained features are.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from workbench.errors import WorkbenchError
from workbench.methods.base import ClassifierMethod, load_parent_module, param_groups
from workbench.methods.finetune import Config
from workbench.methods.vit.method import build_vit


class FinetuneMethod(ClassifierMethod):
    cfg: Config

    def build(self) -> VisionTransformer:
        self.label_smoothing = self.cfg.label_smoothing
        linear = self.cfg.mode == "linear"
        cfg = dataclasses.replace(self.cfg, drop_path=0.0) if linear else self.cfg
        # full + avg: a fresh LayerNorm after pooling (MAE fine-tuning); otherwise the encoder's own norm
        model = build_vit(cfg, self.data.num_classes, global_pool=self.cfg.pool,
                          fc_norm=None if not linear and self.cfg.pool == "avg" else False)
        if "encoder" in self.parents:  # else the encoder's weights come from `init`, loaded by the trainer
            encoder = load_parent_module(self.parents["encoder"], self.data)
            missing, unexpected = model.load_state_dict(encoder.state_dict(), strict=False)
            stray = [k for k in missing + unexpected if not k.startswith(("head.", "fc_norm.", "norm."))]
            if stray:
                raise WorkbenchError(f"the encoder of run {self.parents['encoder'].run_id} does not fit this "
                                     f"classifier (mismatched weights: {', '.join(stray[:5])})")
        if linear:
            model.requires_grad_(False)
            model.head = nn.Sequential(nn.BatchNorm1d(self.cfg.width, affine=False),
                                       nn.Linear(self.cfg.width, self.data.num_classes))
            nn.init.trunc_normal_(model.head[1].weight, std=0.01)
            nn.init.zeros_(model.head[1].bias)
        return model

    def init_target(self, model: VisionTransformer) -> VisionTransformer:
        return model  # not the copy with a folded probe head `exportable` makes

    def exportable(self, model: VisionTransformer) -> nn.Module:
        """The classifier; a linear probe's BatchNorm (no affine, fixed statistics in eval) is folded
        into its linear layer, so the result is a plain timm ViT with a plain linear head."""
        if self.cfg.mode != "linear":
            return model
        norm, linear = model.head
        scale = (norm.running_var + norm.eps).rsqrt()
        folded = nn.Linear(linear.in_features, linear.out_features)
        with torch.no_grad():
            folded.weight.copy_(linear.weight * scale)
            folded.bias.copy_(linear.bias - linear.weight @ (norm.running_mean * scale))
        plain = copy.deepcopy(model)
        plain.head = folded
        return plain

    def param_groups(self, model: nn.Module) -> list[dict]:
        linear = self.cfg.mode == "linear"
        return param_groups(model, self.cfg.weight_decay, layer_decay=None if linear else self.cfg.layer_decay)


METHOD = FinetuneMethod
