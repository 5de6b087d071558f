"""The built-in dataset: ten shape classes drawn with Pillow, deterministic, cached on disk.

Each image is one filled shape (random colour, size, position and rotation) over a textured
background (gradient, stripes, checks or noise) in a contrasting colour. A person can name
every class at a glance, and a tiny ViT learns it well above chance within a minute of CPU.
Image `i` of a split is drawn from its own seeded generator, so the set is identical on every
machine, at every size (32/64/96/224 px, or any other). Needs numpy and Pillow only.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from workbench import paths
from workbench.data.cache import Arrays, CacheWriter, cached_arrays

VERSION = 1
CLASSES = ("circle", "ring", "triangle", "square", "pentagon", "star", "cross", "crescent", "heart", "arrow")
_SPLIT_SEED = {"train": 1, "val": 2}


def split_sizes(image_size: int) -> dict[str, int]:
    """Fewer images at large sizes keep the on-disk cache under ~400 MB."""
    return {"train": 5000, "val": 1000} if image_size <= 96 else {"train": 2500, "val": 500}


def cache_dir(image_size: int) -> Path:
    return paths.dataset_cache() / f"shapes-v{VERSION}-{image_size}px"


def load(image_size: int) -> tuple[dict[str, Arrays], dict]:
    """Both splits and the metadata (classes, mean, std), drawing the set on first use."""
    return cached_arrays(cache_dir(image_size), image_size, _draw_all)


def _draw_all(writer: CacheWriter) -> dict:
    """Draw every image; image `i` of a split comes from its own seeded generator."""
    size = writer.image_size
    for split, count in split_sizes(size).items():
        labels = np.arange(count, dtype=np.int64) % len(CLASSES)
        images = (draw(size, int(labels[i]), np.random.default_rng([VERSION, _SPLIT_SEED[split], i]))
                  for i in range(count))
        writer.split(split, count, images, labels)
    return dict(name="shapes", version=VERSION, classes=list(CLASSES))


def draw(image_size: int, label: int, rng: np.random.Generator) -> np.ndarray:
    """One image [H, W, 3] uint8 of class `label`. Only the shape's mask is drawn supersampled
    (for smooth edges); the background texture is made at the final size."""
    scale = 4 if image_size <= 64 else 2
    side = image_size * scale
    fg, bg_a, bg_b = _palette(rng)
    background = _texture(image_size, bg_a, bg_b, rng)
    mask = Image.new("L", (side, side), 0)
    radius = side * rng.uniform(0.22, 0.38)
    margin = radius * 0.85
    cx, cy = rng.uniform(margin, side - margin, size=2)
    _draw_shape(ImageDraw.Draw(mask), CLASSES[label], cx, cy, radius, rng.uniform(0, 2 * math.pi))
    mask = mask.resize((image_size, image_size), Image.Resampling.BOX)
    return np.asarray(Image.composite(Image.new("RGB", background.size, fg), background, mask))


def _palette(rng: np.random.Generator) -> tuple[tuple[int, int, int], ...]:
    """A saturated foreground and two background tones with clearly different brightness."""
    hue = rng.uniform()
    fg_light = rng.uniform(0.25, 0.75)
    bg_light = (fg_light + rng.uniform(0.3, 0.5)) % 1.0
    bg_light = min(max(bg_light, 0.1), 0.9)
    bg_hue = (hue + rng.uniform(0.25, 0.75)) % 1.0

    def rgb(h: float, l: float, s: float) -> tuple[int, int, int]:
        return tuple(int(round(c * 255)) for c in colorsys.hls_to_rgb(h, l, s))  # type: ignore[return-value]

    return (rgb(hue, fg_light, rng.uniform(0.6, 1.0)),
            rgb(bg_hue, bg_light, rng.uniform(0.1, 0.5)),
            rgb(bg_hue, min(bg_light + rng.uniform(0.05, 0.15), 0.95), rng.uniform(0.1, 0.5)))


def _texture(side: int, a: tuple[int, ...], b: tuple[int, ...], rng: np.random.Generator) -> Image.Image:
    """Background: a gradient, stripes, checks or blotchy noise between colours a and b."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    kind = rng.integers(4)
    angle = rng.uniform(0, math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    if kind == 0:
        t = u
    elif kind == 1:
        t = (np.sin(u * rng.uniform(6, 16) * math.pi) > 0).astype(float)
    elif kind == 2:
        cells = rng.uniform(3, 8)
        t = ((np.floor(xx * cells) + np.floor(yy * cells)) % 2).astype(float)
    else:
        coarse = rng.uniform(size=(6, 6))
        t = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)) / 255.0
    t = np.clip(t, 0, 1)[..., None]
    pixels = np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _draw_shape(d: ImageDraw.ImageDraw, name: str, cx: float, cy: float, r: float, rot: float) -> None:
    def place(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        c, s = math.cos(rot), math.sin(rot)
        return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in points]

    def ngon(n: int, radius: float = 1.0, phase: float = 0.0) -> list[tuple[float, float]]:
        return [(radius * math.cos(phase + 2 * math.pi * k / n), radius * math.sin(phase + 2 * math.pi * k / n))
                for k in range(n)]

    if name == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif name == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        d.ellipse([cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r], fill=0)
    elif name == "crescent":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        ox, oy = place([(0.45, 0.0)])[0]
        d.ellipse([ox - 0.85 * r, oy - 0.85 * r, ox + 0.85 * r, oy + 0.85 * r], fill=0)
    elif name in ("triangle", "square", "pentagon"):
        d.polygon(place(ngon({"triangle": 3, "square": 4, "pentagon": 5}[name])), fill=255)
    elif name == "star":
        outer, inner = ngon(5), ngon(5, 0.42, math.pi / 5)
        d.polygon(place([p for pair in zip(outer, inner) for p in pair]), fill=255)
    elif name == "cross":
        w = 0.32
        d.polygon(place([(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w),
                         (-1, w), (-1, -w), (-w, -w)]), fill=255)
    elif name == "heart":
        pts = [(16 * math.sin(t) ** 3 / 17, -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t)
                                              - math.cos(4 * t)) / 17 + 0.1)
               for t in np.linspace(0, 2 * math.pi, 60, endpoint=False)]
        d.polygon(place(pts), fill=255)
    elif name == "arrow":
        d.polygon(place([(-1, -0.2), (0.2, -0.2), (0.2, -0.6), (1, 0), (0.2, 0.6), (0.2, 0.2), (-1, 0.2)]), fill=255)
    else:  # pragma: no cover - CLASSES and this function change together
        raise ValueError(name)
