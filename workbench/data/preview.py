"""Thumbnails of a dataset, for the GUI: a few images of every class with its name (numpy and
Pillow only; reading a folder can take a while, so callers run this off the GUI thread)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from workbench.data import cifar, folders, shapes
from workbench.draw import INK, fit, font, paper
from workbench.errors import DataError

MAX_ROWS = 12


def samples(store: Any, name: str, per_class: int, size: int) -> list[tuple[str, list[np.ndarray]]]:
    """(class name, images [size, size, 3]) for up to MAX_ROWS classes; one unnamed row if unlabelled."""
    if name == "shapes":
        return [(c, [shapes.draw(size, k, np.random.default_rng([99, k, i])) for i in range(per_class)])
                for k, c in enumerate(shapes.CLASSES)]
    record = store.get_dataset(name)
    if record is None:
        raise DataError(f"no dataset named {name!r}")
    if record.kind in cifar.LAYOUT:
        images, labels, classes = cifar.read_split(record.kind, cifar.batches_folder(record.kind, Path(record.path)),
                                                   "val")
        rows = []
        for k, c in enumerate(classes[:MAX_ROWS]):
            picked = images[labels == k][:per_class]
            rows.append((c, [np.asarray(Image.fromarray(img).resize((size, size))) for img in picked]))
        return rows
    scan = folders.scan(Path(record.path), labelled=record.kind == "imagefolder", decode=False)
    if record.kind == "unlabeled":
        return [("", [folders.load_image(p, size) for p, _ in scan.items[:per_class * 3]])]
    return [(c, [folders.load_image(p, size) for p, label in scan.items if label == k][:per_class])
            for k, c in enumerate(scan.classes[:MAX_ROWS])]


def thumbnail_grid(store: Any, name: str, per_class: int = 6, size: int = 64) -> np.ndarray:
    """One row per class: its name, then `per_class` images: a figure [H, W, 4] uint8."""
    rows = samples(store, name, per_class, size)
    columns = max(len(images) for _, images in rows)
    label_width, pad = 96, 4
    width = label_width + columns * (size + pad) + pad
    canvas = paper(width, len(rows) * (size + pad) + pad)
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        top = pad + r * (size + pad)
        draw.text((4, top + size // 2 - 7), fit(label, label_width - 6), fill=INK, font=font())
        for c, image in enumerate(images):
            canvas.paste(Image.fromarray(image), (label_width + pad + c * (size + pad), top))
    return np.asarray(canvas)
