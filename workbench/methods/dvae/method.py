"""Discrete VAE tokenizer (as in DALL-E, used by BEiT), small enough to train here.

A conv encoder maps the image to logits over K codes at each position of the patch grid (one
position per ViT patch). Training relaxes the discrete choice with Gumbel-softmax, whose
temperature is annealed from `temp_start` to `temp_end`; a 1x1 conv holds the codebook and a
conv decoder reconstructs the image. Loss = MSE + w·KL(q || uniform), where w ramps up from 0
over `kl_warmup_epochs` (starting at full weight tends to collapse the codebook on small data).
Tokenizing takes the argmax code at each position.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.draw import labelled_grid
from workbench.methods.base import Batch, Method
from workbench.methods.dvae import Config

SNAPSHOT_IMAGES = 8


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class DiscreteVAE(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        h, k = cfg.hidden, cfg.codebook_size
        halvings = int(math.log2(cfg.patch_size))
        down: list[nn.Module] = [nn.Conv2d(3, h, 3, padding=1)]
        up: list[nn.Module] = [nn.Conv2d(h, h, 3, padding=1)]
        for _ in range(halvings):
            down += [nn.ReLU(), nn.Conv2d(h, h, 4, stride=2, padding=1), ResBlock(h)]
            up += [ResBlock(h), nn.ReLU(), nn.ConvTranspose2d(h, h, 4, stride=2, padding=1)]
        self.encoder = nn.Sequential(*down, nn.ReLU(), nn.Conv2d(h, k, 1))
        self.codebook = nn.Conv2d(k, h, 1, bias=False)  # one-hot code -> its embedding
        self.decoder = nn.Sequential(*up, nn.ReLU(), nn.Conv2d(h, 3, 3, padding=1))
        self.codebook_size = k

    def logits(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] -> code logits [B, K, H/P, W/P]."""
        return self.encoder(images)

    def decode(self, codes: Tensor) -> Tensor:
        """(Soft) one-hot codes [B, K, g, g] -> images [B, 3, H, W]."""
        return self.decoder(self.codebook(codes))

    @torch.no_grad()
    def tokenize(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] -> token ids [B, g*g] in raster order (BEiT's targets)."""
        return self.logits(images).argmax(1).flatten(1)

    def decode_tokens(self, tokens: Tensor) -> Tensor:
        """Token ids [B, g*g] -> images, through hard one-hot codes."""
        g = int(round(tokens.shape[1] ** 0.5))
        one_hot = F.one_hot(tokens.view(-1, g, g), self.codebook_size).permute(0, 3, 1, 2).float()
        return self.decode(one_hot)


class DvaeMethod(Method):
    cfg: Config

    def build(self) -> DiscreteVAE:
        self.temperature, self.kl_weight = self.cfg.temp_start, self.cfg.kl_weight
        return DiscreteVAE(self.cfg)

    def on_step(self, step: int, total: int) -> None:
        cfg = self.cfg
        progress = step / max(1, total - 1)
        self.temperature = cfg.temp_start * (cfg.temp_end / cfg.temp_start) ** progress
        ramp_steps = cfg.kl_warmup_epochs * total / cfg.epochs
        self.kl_weight = cfg.kl_weight * min(1.0, step / ramp_steps) if ramp_steps else cfg.kl_weight

    def step(self, model: DiscreteVAE, batch: Batch) -> dict[str, Tensor]:
        images = batch[0]
        logits = model.logits(images).float()
        if model.training:
            codes = F.gumbel_softmax(logits, tau=self.temperature, hard=False, dim=1)
            recon = model.decode(codes)
        else:  # evaluate what BEiT will use: the argmax tokens
            recon = model.decode_tokens(logits.argmax(1).flatten(1))
        mse = F.mse_loss(recon.float(), images.float())
        log_q = F.log_softmax(logits, dim=1)
        kl = (log_q.exp() * (log_q + math.log(model.codebook_size))).sum(1).mean()
        usage = code_counts(logits.argmax(1).flatten(), model.codebook_size)
        usage = usage / usage.sum()
        perplexity = torch.exp(-(usage * usage.clamp_min(1e-12).log()).sum())
        out = {"loss": mse + self.kl_weight * kl, "kl": kl, "perplexity": perplexity,
               "codes_used": (usage > 0).sum().float(), "temperature": torch.tensor(self.temperature)}
        out["recon" if model.training else "recon_hard"] = mse
        return out

    @torch.no_grad()
    def snapshot(self, model: DiscreteVAE, batch: Batch) -> dict[str, np.ndarray]:
        images = batch[0][:SNAPSHOT_IMAGES]
        tokens = model.tokenize(images)
        recon = model.decode_tokens(tokens)
        g = int(round(tokens.shape[1] ** 0.5))
        # each token id as a colour, so the token map reads as an image
        palette = np.random.default_rng(0).integers(40, 230, (model.codebook_size, 3), dtype=np.uint8)
        token_map = palette[tokens.view(-1, g, g).cpu().numpy()]
        return {"tokens": labelled_grid([self.to_uint8(images), self.to_uint8(recon), token_map],
                                        ["original", "from tokens", "token map"])}


def code_counts(codes: Tensor, codebook_size: int) -> Tensor:
    """How often each code occurs in codes [N] (ids): [codebook_size] float32, on their device. As
    `bincount`, which on a GPU reads its input's range back to the host first, waiting for it."""
    return torch.zeros(codebook_size, device=codes.device).index_add_(0, codes, torch.ones_like(
        codes, dtype=torch.float32))


METHOD = DvaeMethod
