"""Small image helpers the methods' snapshots, the data previews, the GUI and `inspect` share
(numpy + Pillow only: a leaf every layer may use).

Figures are RGBA: the pictures in them opaque (alpha 255), the text and the background between
them ("paper") never fully opaque, so whatever shows a figure tells the two apart. A PNG viewer
shows the paper as its own background; the GUI lays it on its palette and, in a dark theme,
inverts the text's lightness (`workbench.ui.theme.figure`)."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GOOD = (40, 170, 80)
BAD = (215, 50, 50)
MASK_GREY = 110  # masked patches, in reconstructions and in the GUI's mask preview alike
LABEL_PX = 13  # text drawn into images: legible at 1:1, and still at the ~0.7 scale a small view fits it to
HEADER_PX = 2 * (LABEL_PX + 3) + 4  # a labelled grid's header: two lines, whatever the labels
GRID_SIDE = 112  # px per image in a labelled grid
PAPER = (255, 255, 255, 0)  # a figure's background: white where alpha is ignored, else transparent
INK = (40, 40, 40, 254)  # its text: dark grey, a step short of opaque (pictures are opaque)


def ink(colour: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """A colour for text drawn onto paper (`INK` is the usual one)."""
    return (*colour, INK[3])


def paper(width: int, height: int) -> Image.Image:
    """An empty RGBA figure to draw text on and paste pictures into (they stay opaque)."""
    return Image.new("RGBA", (width, height), PAPER)


def rgba(image: np.ndarray) -> np.ndarray:
    """[H, W, 3 or 4] uint8 -> [H, W, 4]: a picture gets alpha 255 (opaque)."""
    if image.shape[-1] == 4:
        return image
    return np.concatenate([image, np.full(image.shape[:-1] + (1,), 255, np.uint8)], axis=-1)


@functools.lru_cache(maxsize=8)
def font(size: int = LABEL_PX) -> ImageFont.ImageFont:
    """A real (FreeType) font: DejaVu when the system has it, else the one inside Pillow."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def fit(text: str, width: int, size: int = LABEL_PX) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels (never clipped mid-glyph)."""
    face = font(size)
    if face.getlength(text) <= width:
        return text
    while text and face.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def fit_name(name: str, suffix: str, width: int, size: int = LABEL_PX) -> str:
    """'triangle… 93%': the name cut so that the suffix (a confidence) always shows whole."""
    return f"{fit(name, width - int(font(size).getlength(' ' + suffix)), size)} {suffix}"


def wrap(text: str, width: int, lines: int = 2, size: int = LABEL_PX) -> list[str]:
    """Words of `text` on at most `lines` lines of `width` pixels; the last one cut to fit."""
    face, out, words = font(size), [], text.split()
    while words and len(out) < lines - 1:
        line = words.pop(0)
        while words and face.getlength(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        out.append(fit(line, width, size))
    if words:
        out.append(fit(" ".join(words), width, size))
    return out


def tile(images: Sequence[np.ndarray], columns: int, pad: int = 2) -> np.ndarray:
    """Lay equal-sized images [H, W, 3 or 4] out in a grid with `pad` pixels of paper between
    them: a figure [h, w, 4]."""
    h, w = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    out = np.empty((rows * (h + pad) + pad, columns * (w + pad) + pad, 4), np.uint8)
    out[:] = PAPER
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = rgba(img)
    return out


def upscale(image: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour upscale so patch boundaries stay visible."""
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST))


def prediction_grid(images: np.ndarray, labels: Sequence[int], preds: Sequence[int], conf: Sequence[float],
                    classes: Sequence[str], columns: int = 6, side: int = 96) -> np.ndarray:
    """Each image with a green (right) or red (wrong) frame, 'predicted  confidence' below, and
    under a wrong one 'is: true class'."""
    tiles = []
    for img, y, p, c in zip(images, labels, preds, conf):
        canvas = Image.new("RGB", (side + 4, side + 2 * LABEL_PX + 13), GOOD if y == p else BAD)
        canvas.paste(Image.fromarray(upscale(img, side)), (2, 2))
        draw = ImageDraw.Draw(canvas)
        draw.text((4, side + 4), fit_name(classes[p], f"{c:.0%}", side - 2), fill=(255, 255, 255), font=font())
        if y != p:
            draw.text((4, side + LABEL_PX + 8), fit(f"is: {classes[y]}", side - 2), fill=(255, 255, 255), font=font())
        tiles.append(np.asarray(canvas))
    return tile(tiles, columns)


def caption(width: int, lines: Sequence[str]) -> np.ndarray:
    """A strip of paper [h, width, 4] with these lines of text (each cut to fit)."""
    strip = paper(width, len(lines) * (LABEL_PX + 4) + 4)
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text((4, 2 + i * (LABEL_PX + 4)), fit(line, width - 8), fill=INK, font=font())
    return np.asarray(strip)


def labelled_grid(columns: Sequence[np.ndarray], headers: Sequence[str], side: int = GRID_SIDE) -> np.ndarray:
    """Columns of images (each [B, H, W, 3]) side by side, one row per image, a header above each
    (wrapped on two lines when long: "reconstruction + visible"): a figure [h, w, 4]."""
    rows = len(columns[0])
    tiles = [upscale(col[r], side) for r in range(rows) for col in columns]
    body = tile(tiles, len(columns))
    wrapped = [wrap(text, side - 2) for text in headers]
    head = paper(body.shape[1], HEADER_PX)
    draw = ImageDraw.Draw(head)
    for c, lines in enumerate(wrapped):
        for i, line in enumerate(lines):
            draw.text((3 + c * (side + 2), 2 + i * (LABEL_PX + 3)), line, fill=INK, font=font())
    return np.concatenate([np.asarray(head), body], axis=0)
