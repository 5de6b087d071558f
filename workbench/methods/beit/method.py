"""BEiT (Bao et al.): BERT-style masked image modelling over visual tokens.

A finished `dvae` run tokenizes every image into one visual token per patch. Up to 40 % of
the patches are masked blockwise, their embeddings replaced by a learned [mask] embedding
before the position embeddings are added (the encoder sees all N + 1 tokens), and a linear
head predicts the visual token of each masked patch: cross-entropy on masked positions
only. The tokenizer stays frozen and is not part of what is exported or fine-tuned.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.draw import labelled_grid
from workbench.methods.base import (
    Batch,
    MaskedMethod,
    load_parent_module,
    masked_rows,
    mean_of,
)
from workbench.methods.beit import Config
from workbench.methods.dvae.method import DiscreteVAE, code_counts
from workbench.methods.vit.method import MaskedTokenEncoder

SNAPSHOT_IMAGES = 8


class BeitPretrain(nn.Module):
    def __init__(self, cfg: Config, tokenizer: DiscreteVAE) -> None:
        super().__init__()
        self.encoder = MaskedTokenEncoder(cfg)
        self.lm_head = nn.Linear(cfg.width, tokenizer.codebook_size)
        self.tokenizer = tokenizer.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "BeitPretrain":
        super().train(mode)
        self.tokenizer.eval()
        return self

    def no_weight_decay(self) -> set[str]:
        return self.encoder.no_weight_decay()

    def forward(self, images: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """images [B, 3, H, W], mask [B, N] -> (token logits [B, N, K], target token ids [B, N])."""
        targets = self.tokenizer.tokenize(images)
        tokens = self.encoder.encode(self.encoder.masked(self.encoder.embed(images), mask))
        return self.lm_head(tokens), targets


class BeitMethod(MaskedMethod):
    cfg: Config
    _counts: Tensor | None = None  # while evaluating: how often each token was a target [K]

    def build(self) -> BeitPretrain:
        tokenizer = load_parent_module(self.parents["tokenizer"], self.data)
        return BeitPretrain(self.cfg, tokenizer)

    def step(self, model: BeitPretrain, batch: Batch) -> dict[str, Tensor]:
        images = batch[0]
        mask = self.mask(images.shape[0], images.device)
        logits, targets = model(images, mask)
        if self._counts is not None:  # evaluating: count the tokens for the majority bar
            self._counts.add_(code_counts(targets.flatten(), len(self._counts)))
        rows, valid = masked_rows(mask, self.cfg.mask_spec()[1])
        picked, target = logits.flatten(0, 1)[rows], targets.flatten()[rows]  # [M, K], [M]
        return {"loss": mean_of(F.cross_entropy(picked.float(), target, reduction="none"), valid),
                "mask_acc": mean_of((picked.argmax(-1) == target).float(), valid)}

    @torch.no_grad()
    def evaluate(self, model: BeitPretrain, batches) -> dict[str, float]:
        """MIM loss and masked-token accuracy on fixed masks, beside the accuracy of always guessing
        the most frequent token (the bar a model that learned nothing would reach)."""
        self._counts = counts = torch.zeros(model.lm_head.out_features, device=model.lm_head.weight.device)
        try:  # `step` counts the tokens it made, on the device; read once at the end
            metrics = super().evaluate(model, batches)
        finally:
            self._counts = None
        metrics["majority_acc"] = float(counts.max() / counts.sum().clamp_min(1))
        return metrics

    @torch.no_grad()
    def snapshot(self, model: BeitPretrain, batch: Batch) -> dict[str, np.ndarray]:
        """Original, masked input, and the image decoded from the predicted tokens at masked
        positions (the tokenizer's own tokens elsewhere) beside the tokenizer's reconstruction."""
        images = batch[0][:SNAPSHOT_IMAGES]
        mask = self.mask(images.shape[0], images.device, self.fixed_rng())
        logits, targets = model(images, mask)
        predicted = torch.where(mask, logits.argmax(-1), targets)
        masked = self.to_uint8(images)
        p = self.cfg.patch_size
        pixel_mask = mask.view(-1, self.cfg.grid_size, self.cfg.grid_size).repeat_interleave(p, 1)
        masked[pixel_mask.repeat_interleave(p, 2).cpu().numpy()] = 110
        tokenizer = model.tokenizer
        return {"predictions": labelled_grid(
            [self.to_uint8(images), masked, self.to_uint8(tokenizer.decode_tokens(predicted)),
             self.to_uint8(tokenizer.decode_tokens(targets))],
            ["original", "masked input", "predicted tokens", "true tokens"])}

    def exportable(self, model: BeitPretrain) -> nn.Module:
        return model.encoder.vit


METHOD = BeitMethod

