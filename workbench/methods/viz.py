"""Small image helpers the methods' snapshots share (numpy + Pillow only)."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GOOD = (40, 170, 80)
BAD = (215, 50, 50)
MASK_GREY = 110  # masked patches, in reconstructions and in the GUI's mask preview alike


@functools.lru_cache(maxsize=4)
def font(size: int = 11) -> ImageFont.ImageFont:
    """A font with accents and most scripts when the system has DejaVu, else Pillow's own."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def tile(images: Sequence[np.ndarray], columns: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Lay equal-sized images [H, W, 3] out in a grid with `pad` pixels between them."""
    h, w = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    out = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), fill, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return out


def upscale(image: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour upscale so patch boundaries stay visible."""
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST))


def prediction_grid(images: np.ndarray, labels: Sequence[int], preds: Sequence[int], conf: Sequence[float],
                    classes: Sequence[str], columns: int = 8, side: int = 72) -> np.ndarray:
    """Each image with a green (right) or red (wrong) frame and 'predicted  confidence' below."""
    tiles = []
    for img, y, p, c in zip(images, labels, preds, conf):
        canvas = Image.new("RGB", (side + 4, side + 18), GOOD if y == p else BAD)
        canvas.paste(Image.fromarray(upscale(img, side)), (2, 2))
        ImageDraw.Draw(canvas).text((3, side + 3), f"{classes[p][:8]} {c:.0%}", fill=(255, 255, 255), font=font(10))
        tiles.append(np.asarray(canvas))
    return tile(tiles, columns)


def labelled_grid(columns: Sequence[np.ndarray], headers: Sequence[str], side: int = 96) -> np.ndarray:
    """Columns of images (each [B, H, W, 3]) side by side, one row per image, a header above each."""
    rows = len(columns[0])
    tiles = [upscale(col[r], side) for r in range(rows) for col in columns]
    body = tile(tiles, len(columns))
    head = Image.new("RGB", (body.shape[1], 14), (255, 255, 255))
    draw = ImageDraw.Draw(head)
    for c, text in enumerate(headers):
        draw.text((2 + c * (side + 2) + 2, 1), text[:side // 6], fill=(40, 40, 40), font=font(10))
    return np.concatenate([np.asarray(head), body], axis=0)
