"""Masked patch prediction, the ViT paper's own self-supervised pre-training.

Half of the patch embeddings (configurable) are corrupted, BERT-style: of those, 80 % are
replaced by a learned [mask] embedding, 10 % by another random patch's embedding and 10 % are
left as they are. The ViT then predicts, for each corrupted patch, one of three targets:

- `color3bit`: its mean colour quantised to 3 bits per channel (8^3 = 512 classes, CE);
- `color3bit_4x4`: the 3-bit mean colour of each cell of a 4 x 4 grid over the patch (16 CE terms);
- `pixel_l2`: its (normalised) pixels, by L2 regression (the paper found this one worst).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.draw import labelled_grid
from workbench.methods.base import Batch, MaskedMethod, masked_rows, mean_of
from workbench.methods.mpp import Config
from workbench.methods.vit.method import MaskedTokenEncoder, patchify, unpatchify

LEVELS = 8  # 3 bits per channel
SNAPSHOT_IMAGES = 8
SPLIT = (0.8, 0.1)  # of the corrupted: [mask] embedding, another patch's embedding (rest: unchanged)


def corrupt(embeddings: Tensor, mask: Tensor, mask_token: Tensor,
            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """embeddings [B, N, D], mask [B, N] -> (corrupted embeddings, how [B, N]: 0 untouched,
    1 [mask] embedding, 2 another random patch's embedding, 3 corrupted but left unchanged)."""
    b, n, d = embeddings.shape
    where = generator.device if generator is not None else embeddings.device  # training's: on the device
    u = torch.rand((b, n), generator=generator, device=where).to(embeddings.device)
    other = torch.randint(0, b * n, (b, n), generator=generator, device=where).to(embeddings.device)
    to_mask = mask & (u < SPLIT[0])
    to_swap = mask & (u >= SPLIT[0]) & (u < SPLIT[0] + SPLIT[1])
    swapped = embeddings.reshape(b * n, d)[other]
    out = torch.where(to_swap.unsqueeze(-1), swapped, embeddings)
    out = torch.where(to_mask.unsqueeze(-1), mask_token.to(out.dtype), out)
    how = mask.long() * 3 - to_mask.long() * 2 - to_swap.long()
    return out, how


def color_targets(pixels: Tensor, patch_size: int, cells: int = 1) -> Tensor:
    """pixels [B, 3, H, W] in [0, 1] -> 3-bit mean-colour class ids [B, N, cells*cells]
    (class = 64·r + 8·g + b, each channel quantised to 8 levels)."""
    pooled = F.avg_pool2d(pixels.float(), kernel_size=patch_size // cells)
    q = (pooled * LEVELS).floor().clamp(0, LEVELS - 1).long()
    ids = q[:, 0] * LEVELS * LEVELS + q[:, 1] * LEVELS + q[:, 2]  # [B, g*cells, g*cells]
    b, side = ids.shape[0], ids.shape[1] // cells
    return ids.view(b, side, cells, side, cells).permute(0, 1, 3, 2, 4).reshape(b, side * side, cells * cells)


def class_colours(ids: Tensor) -> Tensor:
    """Class ids [...] -> the centre colour of each 3-bit bin, [..., 3] in [0, 1]."""
    levels = torch.stack([ids // (LEVELS * LEVELS), ids // LEVELS % LEVELS, ids % LEVELS], dim=-1)
    return (levels.float() + 0.5) / LEVELS


class MppModel(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        outputs = {"color3bit": LEVELS ** 3, "color3bit_4x4": 16 * LEVELS ** 3,
                   "pixel_l2": cfg.patch_size ** 2 * 3}[cfg.target]
        self.encoder = MaskedTokenEncoder(cfg)
        self.head = nn.Linear(cfg.width, outputs)

    def no_weight_decay(self) -> set[str]:
        return self.encoder.no_weight_decay()

    def forward(self, images: Tensor, mask: Tensor, rows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """-> predictions [M, outputs] at `rows` [M] (`masked_rows` of `mask` [B, N]): the head only
        where the loss reads it (the 4x4 target's 8,192 outputs a patch made it most of the step's
        work when applied to every patch)."""
        embeddings, _ = corrupt(self.encoder.embed(images), mask, self.encoder.mask_token, generator)
        return self.head(self.encoder.encode(embeddings).flatten(0, 1)[rows])


class MppMethod(MaskedMethod):
    cfg: Config
    _eval_generator: torch.Generator | None = None

    def build(self) -> MppModel:
        return MppModel(self.cfg)

    def step(self, model: MppModel, batch: Batch) -> dict[str, Tensor]:
        images = batch[0]
        mask = self.mask(images.shape[0], images.device)
        rows, valid = masked_rows(mask, self.cfg.corrupt_ratio)
        pred = model(images, mask, rows, self._eval_generator).float()  # [M, outputs]
        if self.cfg.target == "pixel_l2":
            target = patchify(images, self.cfg.patch_size).flatten(0, 1)[rows].float()
            return {"loss": mean_of((pred - target).square().mean(-1), valid)}
        cells = 4 if self.cfg.target == "color3bit_4x4" else 1
        # colour targets are defined on real colours: the pixels, not the normalised images
        target = color_targets(self.pixels(images), self.cfg.patch_size, cells).flatten(0, 1)[rows]  # [M, c*c]
        logits = pred.view(*target.shape, LEVELS ** 3)
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(target.shape)
        return {"loss": mean_of(loss.mean(-1), valid),
                "target_acc": mean_of((logits.argmax(-1) == target).float().mean(-1), valid)}

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        # fixed corruption too, drawn on the model's device (draws copied there would wait for it)
        self._eval_generator = torch.Generator(device=next(model.parameters()).device).manual_seed(self.cfg.seed)
        try:
            return super().evaluate(model, batches)
        finally:
            self._eval_generator = None

    @torch.no_grad()
    def snapshot(self, model: MppModel, batch: Batch) -> dict[str, np.ndarray]:
        """Original, corrupted patches greyed, and the prediction at corrupted patches (colour
        targets painted as their bin's colour) over the original elsewhere."""
        images = batch[0][:SNAPSHOT_IMAGES]
        mask = self.mask(images.shape[0], images.device, self.fixed_rng())
        rows, valid = masked_rows(mask, self.cfg.corrupt_ratio)
        corrupted = model(images, mask, rows, torch.Generator().manual_seed(self.cfg.seed)).float()
        pred = corrupted.new_zeros(*mask.shape, corrupted.shape[-1])  # [B, N, outputs]: read only where masked
        pred[mask] = corrupted[valid]
        p = self.cfg.patch_size
        original = patchify(self.pixels(images), p)  # [B, N, P*P*3] in [0, 1]
        if self.cfg.target == "pixel_l2":
            guess = patchify(self.pixels(unpatchify(pred, p)), p)
        else:
            cells = 4 if self.cfg.target == "color3bit_4x4" else 1
            colours = class_colours(pred.view(*pred.shape[:2], cells * cells, -1).argmax(-1))  # [B, N, c*c, 3]
            grid = colours.view(*pred.shape[:2], cells, cells, 3)
            grid = grid.repeat_interleave(p // cells, 2).repeat_interleave(p // cells, 3)  # [B, N, P, P, 3]
            guess = grid.reshape(*pred.shape[:2], -1)
        shown = torch.where(mask.unsqueeze(-1), guess, original)
        greyed = torch.where(mask.unsqueeze(-1), torch.full_like(original, 110 / 255), original)

        def to_uint8(patches: Tensor) -> np.ndarray:
            return (unpatchify(patches, p) * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()

        return {"predictions": labelled_grid([to_uint8(original), to_uint8(greyed), to_uint8(shown)],
                                             ["original", "corrupted", "predicted"])}

    def exportable(self, model: MppModel) -> nn.Module:
        return model.encoder.vit


METHOD = MppMethod
