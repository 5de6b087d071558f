"""MAE (He et al., "Masked Autoencoders Are Scalable Vision Learners").

Mask a large share of the patches (75 % by default) and drop them: the encoder, a timm ViT
with fixed 2-D sin-cos position embeddings, sees only the visible ones. The encoded tokens
are put back in image order with a learned [mask] token at every masked position, get the
decoder's own position embeddings, and a narrow, shallow decoder predicts each patch's
pixels. The loss is the MSE over masked patches only, optionally against per-patch
normalised pixels (`norm_pix_loss`). Only the encoder is exported and fine-tuned.
"""

from __future__ import annotations

import numpy as np
import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from workbench.data.masking import mask_count
from workbench.draw import MASK_GREY, labelled_grid
from workbench.methods.base import Batch, MaskedMethod
from workbench.methods.mae import Config
from workbench.methods.vit.method import (
    build_vit,
    freeze_sincos_2d,
    patchify,
    unpatchify,
)

SNAPSHOT_IMAGES = 8


class MaskedAutoencoder(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.patch_size, self.grid = cfg.patch_size, cfg.grid_size
        self.encoder = build_vit(cfg, num_classes=0, pos_embed="sincos-2d")
        num_patches = self.grid ** 2
        self.decoder_embed = nn.Linear(cfg.width, cfg.decoder_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_width))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, cfg.decoder_width))
        self.decoder_blocks = nn.ModuleList(Block(cfg.decoder_width, cfg.decoder_heads, cfg.mlp_ratio, qkv_bias=True)
                                            for _ in range(cfg.decoder_depth))
        self.decoder_norm = nn.LayerNorm(cfg.decoder_width)
        self.decoder_pred = nn.Linear(cfg.decoder_width, cfg.patch_size ** 2 * 3)
        self._init_decoder()
        freeze_sincos_2d(self.decoder_pos_embed, self.grid)

    def _init_decoder(self) -> None:
        nn.init.normal_(self.mask_token, std=0.02)
        for module in [self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred]:
            for m in module.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "pos_embed", "mask_token", "decoder_pos_embed"}

    def patchify(self, images: Tensor) -> Tensor:
        return patchify(images, self.patch_size)

    def unpatchify(self, patches: Tensor) -> Tensor:
        return unpatchify(patches, self.patch_size)

    def forward_encoder(self, images: Tensor, mask: Tensor, visible: int | None = None) -> tuple[Tensor, Tensor]:
        """images [B, 3, H, W], mask [B, N] (True = masked, the same count in every row) ->
        latent [B, 1 + N_visible, D] and ids_restore [B, N] (undoes the visible-first shuffle).
        `visible` (N_visible), when the caller knows it, spares reading the count back from the
        GPU: a wait for the device on every step."""
        enc = self.encoder
        x = enc.patch_embed(images) + enc.pos_embed[:, 1:]
        ids_shuffle = torch.argsort(mask.to(torch.int8), dim=1, stable=True)  # visible first, in order
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        visible = mask.shape[1] - int(mask[0].sum()) if visible is None else visible
        ids_keep = ids_shuffle[:, :visible]
        x = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = enc.norm_pre(torch.cat([cls, x], dim=1))
        return enc.norm(enc.blocks(x)), ids_restore

    def forward_decoder(self, latent: Tensor, ids_restore: Tensor) -> Tensor:
        """latent [B, 1 + N_visible, D] -> predicted pixels [B, N, P*P*3] for every patch."""
        x = self.decoder_embed(latent)
        b, n = ids_restore.shape
        tokens = torch.cat([x[:, 1:], self.mask_token.expand(b, n + 1 - x.shape[1], -1)], dim=1)
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = torch.cat([x[:, :1], tokens], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def targets(self, images: Tensor, norm_pix: bool) -> Tensor:
        target = self.patchify(images)
        if norm_pix:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def forward(self, images: Tensor, mask: Tensor, norm_pix: bool = False,
                visible: int | None = None) -> tuple[Tensor, Tensor]:
        """-> (MSE over masked patches only, predicted patches [B, N, P*P*3])."""
        pred = self.forward_decoder(*self.forward_encoder(images, mask, visible))
        per_patch = ((pred.float() - self.targets(images, norm_pix)) ** 2).mean(-1)
        return (per_patch * mask).sum() / mask.sum(), pred


class MaeMethod(MaskedMethod):
    cfg: Config

    def build(self) -> MaskedAutoencoder:
        return MaskedAutoencoder(self.cfg)

    def step(self, model: MaskedAutoencoder, batch: Batch) -> dict[str, Tensor]:
        images = batch[0]
        patches = (self.cfg.image_size // self.cfg.patch_size) ** 2
        visible = patches - mask_count(patches, self.cfg.mask_spec()[1])  # every row has it (exact masks)
        loss, _ = model(images, self.mask(images.shape[0], images.device), self.cfg.norm_pix_loss, visible)
        return {"loss": loss}

    @torch.no_grad()
    def reconstruct(self, model: MaskedAutoencoder, images: Tensor, mask: Tensor) -> dict[str, np.ndarray]:
        """The four panels as uint8 [B, H, W, 3]: original, masked input, reconstruction, and the
        reconstruction with the visible patches pasted back. With `norm_pix_loss` the prediction
        is de-normalised with each original patch's own mean and variance."""
        _, pred = model(images, mask, self.cfg.norm_pix_loss)
        pred = pred.float()
        if self.cfg.norm_pix_loss:
            target = model.patchify(images)
            pred = pred * (target.var(-1, keepdim=True) + 1e-6).sqrt() + target.mean(-1, keepdim=True)
        patch_mask = mask.unsqueeze(-1).float()
        recon = model.unpatchify(pred)
        pasted = model.unpatchify(pred * patch_mask + model.patchify(images) * (1 - patch_mask))
        masked = self.to_uint8(images)
        pixel_mask = model.unpatchify(patch_mask.expand(-1, -1, pred.shape[-1])).permute(0, 2, 3, 1).cpu().numpy() > 0
        masked[pixel_mask] = MASK_GREY
        return {"original": self.to_uint8(images), "masked input": masked, "reconstruction": self.to_uint8(recon),
                "recon + visible": self.to_uint8(pasted)}

    @torch.no_grad()
    def snapshot(self, model: MaskedAutoencoder, batch: Batch) -> dict[str, np.ndarray]:
        images = batch[0][:SNAPSHOT_IMAGES]
        panels = self.reconstruct(model, images, self.mask(images.shape[0], images.device, self.fixed_rng()))
        return {"reconstructions": labelled_grid(list(panels.values()), list(panels))}

    def exportable(self, model: MaskedAutoencoder) -> nn.Module:
        return model.encoder


METHOD = MaeMethod
