"""What a trained run does with one image, for the GUI's Inspect view and `workbench inspect`:

- `reconstruct`: a masked method's four panels (original | masked input | reconstruction |
  reconstruction + visible) for any image, checkpoint, mask ratio, strategy and seed, with
  the per-image MSE over the masked pixels. The mask comes from the same masking module,
  with the same seed, as the GUI's preview shows.
- `attention`: the [CLS] token's attention of every head in the last block, and attention
  rollout over all blocks (Abnar & Zuidema), overlaid on the image, with the colour scale and
  the model's own top predictions for the image (when it has a classifier head). timm's fused
  attention never materialises the weights, so it is switched off for this one forward pass.

An image is `val:N` (the N-th validation image of the run's dataset) or a path to a file.
This imports torch; the GUI runs it in a separate process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.models.vision_transformer import VisionTransformer

from workbench.data.masking import STRATEGIES, make_mask
from workbench.draw import INK, LABEL_PX, caption, fit, font, labelled_grid, paper
from workbench.engine.checkpoint import Trained, load_trained
from workbench.errors import DataError, WorkbenchError
from workbench.store import Store

# perceptually ordered colours for attention heat (dark = ignored, bright = attended)
HEAT = np.array([(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)], dtype=np.float32)


def read_image(store: Store, trained: Trained, source: str) -> np.ndarray:
    """[S, S, 3] uint8 at the run's image size, from `val:N` or an image file."""
    size = trained.data.image_size
    if source.startswith("val:"):
        from workbench.data.loading import load_data

        val = load_data(trained.method.cfg, store, fill=False).val  # one image: no cache filled for it
        index = int(source[4:])
        if not 0 <= index < len(val):
            raise DataError(f"image {source}: the validation split has {len(val)} images (val:0 to val:{len(val) - 1})")
        return val[index][0].permute(1, 2, 0).numpy()
    from workbench.data.folders import load_image

    path = Path(source).expanduser()
    try:
        return load_image(path, size)
    except OSError as exc:
        raise DataError(f"cannot read {path} as an image ({exc}); choose a JPEG, PNG, WebP, BMP or TIFF "
                        f"file") from None


def _batch(image: np.ndarray, trained: Trained) -> torch.Tensor:
    x = torch.from_numpy(image).permute(2, 0, 1).float().unsqueeze(0) / 255.0
    mean = torch.tensor(trained.data.mean).view(1, 3, 1, 1)
    std = torch.tensor(trained.data.std).view(1, 3, 1, 1)
    return (x - mean) / std


def reconstruct(store: Store, run_id: int, source: str, *, ratio: float | None = None, strategy: str | None = None,
                seed: int = 0, step: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """(the four-panel image, {mse, masked, visible, step}); ratio and strategy default to the run's."""
    trained = load_trained(store, run_id, step)
    cfg, method = trained.method.cfg, trained.method
    spec = cfg.mask_spec()
    if spec is None or not hasattr(method, "reconstruct"):
        raise WorkbenchError(f"run {run_id} is a {trained.run.method} run; only methods that reconstruct pixels "
                             f"(mae) can show reconstructions")
    strategy = strategy or spec[0]
    ratio = spec[1] if ratio is None else ratio
    if strategy not in STRATEGIES:
        raise WorkbenchError(f"unknown mask strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    grid = cfg.image_size // cfg.patch_size
    if not 0.0 < ratio < 1.0 or round(grid * grid * (1 - ratio)) < 1:
        raise WorkbenchError(f"mask ratio {ratio} must leave at least one of the {grid * grid} patches visible "
                             f"and mask at least one; choose a value between 0.05 and 0.95")
    image = read_image(store, trained, source)
    mask = torch.from_numpy(make_mask(strategy, 1, (grid, grid), ratio, np.random.default_rng(seed), exact=spec[2]))
    with torch.no_grad():
        panels = method.reconstruct(trained.model, _batch(image, trained), mask)
    pixel_mask = np.kron(mask[0].numpy().reshape(grid, grid), np.ones((cfg.patch_size, cfg.patch_size))) > 0
    error = (panels["reconstruction"][0].astype(np.float32) - image.astype(np.float32)) / 255.0
    mse = float((error[pixel_mask] ** 2).mean())
    masked = int(mask.sum())
    return labelled_grid(list(panels.values()), list(panels), side=192), {
        "mse": mse, "masked": masked, "visible": grid * grid - masked, "step": trained.step,
        "ratio": ratio, "strategy": strategy, "seed": seed}


def _find_vit(module: torch.nn.Module) -> VisionTransformer | None:
    return next((m for m in module.modules() if isinstance(m, VisionTransformer)), None)


def attention_maps(vit: VisionTransformer, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(last block's [CLS] attention per head [H, g, g], rollout over all blocks [g, g]) for one
    image; both over the patch tokens only."""
    captured: list[torch.Tensor] = []
    hooks, fused = [], []
    for block in vit.blocks:
        fused.append(block.attn.fused_attn)
        block.attn.fused_attn = False  # materialise the softmax so attn_drop sees it
        hooks.append(block.attn.attn_drop.register_forward_hook(lambda _m, args, _out: captured.append(args[0])))
    try:
        with torch.no_grad():
            vit.forward_features(x)
    finally:
        for hook in hooks:
            hook.remove()
        for block, was in zip(vit.blocks, fused):
            block.attn.fused_attn = was
    prefix = vit.num_prefix_tokens
    grid = int(round((captured[-1].shape[-1] - prefix) ** 0.5))
    if prefix:
        last = captured[-1][0, :, 0, prefix:]  # every head, the first prefix token ([CLS]) attending to patches
    else:  # no [CLS]: how much attention each patch receives on average
        last = captured[-1][0].mean(1)
    rollout = torch.eye(captured[0].shape[-1])
    for attn in captured:
        a = attn[0].mean(0)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[0])
        rollout = (a / a.sum(-1, keepdim=True)) @ rollout
    row = rollout[0, prefix:] if prefix else rollout.mean(0)
    return last.reshape(-1, grid, grid).numpy(), row.reshape(grid, grid).numpy()


def heat_overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """`heat` [g, g] scaled to its own range, coloured and laid over `image` [S, S, 3] uint8."""
    side = image.shape[0]
    h = (heat - heat.min()) / max(float(heat.max() - heat.min()), 1e-12)
    h = np.kron(h, np.ones((side // heat.shape[0], side // heat.shape[1])))
    pos = h * (len(HEAT) - 1)
    low = np.clip(np.floor(pos).astype(int), 0, len(HEAT) - 2)
    colour = HEAT[low] + (pos - low)[..., None] * (HEAT[low + 1] - HEAT[low])
    return (0.35 * image + 0.65 * colour).clip(0, 255).astype(np.uint8)


def colour_bar(width: int) -> np.ndarray:
    """[h, width, 4]: the HEAT scale from 'low' to 'high' attention, labelled, for under a grid."""
    from PIL import Image, ImageDraw

    bar_w, left = max(width // 2, 60), 8
    ramp = np.linspace(0, len(HEAT) - 1, bar_w)
    low = np.clip(np.floor(ramp).astype(int), 0, len(HEAT) - 2)
    colours = (HEAT[low] + (ramp - low)[:, None] * (HEAT[low + 1] - HEAT[low])).astype(np.uint8)
    strip = paper(width, 2 * LABEL_PX + 16)
    strip.paste(Image.fromarray(np.repeat(colours[None], 10, axis=0)), (left, 4))
    draw = ImageDraw.Draw(strip)
    draw.text((left, 16), "low", fill=INK, font=font())
    draw.text((left + bar_w - int(font().getlength("high")), 16), "high", fill=INK, font=font())
    draw.text((left + bar_w + 10, 2), fit("attention; each map scaled to its own range", width - bar_w - 20),
              fill=INK, font=font())
    return np.asarray(strip)


def top_predictions(model: torch.nn.Module, x: torch.Tensor, classes: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The classifier's k most likely classes for one image [1, 3, S, S]; [] for an encoder (no head)."""
    if getattr(model, "num_classes", 0) != len(classes) or not classes:
        return []
    with torch.no_grad():
        probs = model.eval()(x).float().softmax(-1)[0]
    conf, idx = probs.topk(min(k, len(classes)))
    return [(classes[int(i)], float(c)) for c, i in zip(conf, idx)]


def attention(store: Store, run_id: int, source: str, *, step: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """(image | each head's last-block [CLS] attention | rollout, with a colour scale and the
    model's prediction, {heads, blocks, step, prediction})."""
    trained = load_trained(store, run_id, step)
    model = trained.method.exportable(trained.model)
    vit = _find_vit(model)
    if vit is None:
        raise WorkbenchError(f"run {run_id} is a {trained.run.method} run without a ViT inside; attention maps "
                             f"need a ViT-family run (vit, deit, mae, beit, mpp, finetune)")
    image = read_image(store, trained, source)
    x = _batch(image, trained)
    heads, rollout = attention_maps(vit, x)
    prediction = top_predictions(model, x, list(trained.data.classes))
    columns = [image[None], *(heat_overlay(image, h)[None] for h in heads), heat_overlay(image, rollout)[None]]
    headers = ["image", *(f"head {i + 1}" for i in range(len(heads))), "rollout"]
    grid = labelled_grid(columns, headers, side=160)
    said = ("prediction: " + " · ".join(f"{name} {p:.0%}" for name, p in prediction) if prediction else
            "no prediction: this model is an encoder without a classifier head")
    grid = np.concatenate([grid, caption(grid.shape[1], [said]), colour_bar(grid.shape[1])], axis=0)
    return grid, {"heads": len(heads), "blocks": len(vit.blocks), "step": trained.step,
                  "prediction": [[name, p] for name, p in prediction]}


def diagnose(store: Store, run_id: int, *, weights: str = "best") -> tuple[dict[str, Any], np.ndarray | None, str]:
    """A classifier's diagnostics (confusion, per-class precision and recall, top-5) on its validation
    set for any of its weights, as training stores them at its end; the mistakes gallery, and which
    weights were used."""
    from workbench.data.loading import BatchTransform, load_data, make_loader
    from workbench.methods.base import ClassifierMethod

    trained = load_trained(store, run_id, weights=weights)
    if not isinstance(trained.method, ClassifierMethod):
        raise WorkbenchError(f"run {run_id} is a {trained.run.method} run, not a classifier; diagnostics are for "
                             f"vit, deit, swin, cnn and finetune runs")
    cfg = trained.method.cfg
    transform = BatchTransform.for_run(cfg, trained.data, torch.device("cpu"))
    loader = make_loader(load_data(cfg, store, fill=False).val, cfg, train=False)
    with torch.no_grad():
        data, images = trained.method.report(trained.model, (transform(x, y, False) for x, y in loader))
    return data["diagnostics"], images.get("mistakes"), trained.weights
