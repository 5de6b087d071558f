"""Registered datasets: adding one (scan and report), and turning one into arrays for training.

Kinds: `imagefolder` (labelled, one subfolder per class), `unlabeled` (any tree of images,
for pre-training), `cifar10` / `cifar100` (the python-pickle batches). The built-in `shapes`
needs no registration. Training reads decoded uint8 arrays from a cache built on first use
(`workbench.data.cache`); an image folder too large to cache is decoded on the fly instead.
numpy and Pillow only: the GUI can register and preview datasets without torch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench import paths
from workbench.data import BUILTIN_DATASETS, KINDS, cifar, folders, shapes
from workbench.data.cache import Arrays, CacheWriter, cached_arrays
from workbench.errors import ConfigError, DataError

CACHE_LIMIT_BYTES = 4 * 1024 ** 3  # decoded images above this are read from their files instead


def register(store: Any, name: str, kind: str, path: Path, *, val_path: Path | None = None,
             val_fraction: float = 0.1) -> Any:
    """Check the dataset (scan every image, or find the CIFAR batches) and record it."""
    name = name.strip()
    if not name or name in BUILTIN_DATASETS or any(c in name for c in "/\\:"):
        raise ConfigError("name", f"{name!r} cannot name a dataset (empty, built in, or with / \\ :)")
    if kind not in KINDS:
        raise ConfigError("kind", f"{kind!r} is not a dataset kind; choose one of {', '.join(KINDS)}")
    if not 0.0 < val_fraction < 0.9:
        raise ConfigError("val_fraction", f"{val_fraction} is outside (0, 0.9)")
    path = Path(path).expanduser().resolve()
    if kind in cifar.LAYOUT:
        folder = cifar.batches_folder(kind, path)
        _, labels, classes = cifar.read_split(kind, folder, "val")
        stats = {"classes": classes, "images": None, "val_images": int(len(labels)), "skipped": 0, "problems": []}
    else:
        scan = folders.scan(path, labelled=kind == "imagefolder")
        stats = scan.report()
        if val_path:
            val = folders.scan(Path(val_path), labelled=kind == "imagefolder", classes=scan.classes or None)
            stats["val_images"], stats["val_problems"] = len(val.items), [list(p) for p in val.problems[:100]]
    return store.add_dataset(name, kind, path, val_path=Path(val_path).resolve() if val_path else None,
                             val_fraction=val_fraction, stats=stats)


@dataclass
class Source:
    """A dataset resolved for training at one image size."""

    name: str
    kind: str
    splits: dict[str, Arrays] | None  # None: too large to cache, use `files`
    files: dict[str, list[tuple[Path, int]]] | None
    meta: dict[str, Any]

    @property
    def labelled(self) -> bool:
        return self.kind != "unlabeled"


def resolve(store: Any, name: str, image_size: int) -> Source:
    """Arrays (or file lists) of both splits with classes, mean and std, building caches as needed."""
    if name == "shapes":
        splits, meta = shapes.load(image_size)
        return Source(name, "shapes", splits, None, meta)
    record = store.get_dataset(name) if store is not None else None
    if record is None:
        raise DataError(f"dataset {name!r} is not registered; `workbench datasets add` registers it")
    if record.kind in cifar.LAYOUT:
        return _cifar(record, image_size)
    return _folder(record, image_size)


def _cache_folder(kind: str, key: str, image_size: int) -> Path:
    return paths.dataset_cache() / f"{kind}-{key}-{image_size}px"


def _cifar(record: Any, image_size: int) -> Source:
    folder = cifar.batches_folder(record.kind, Path(record.path))

    def build(writer: CacheWriter) -> dict:
        classes: list[str] = []
        for split in ("train", "val"):
            images, labels, classes = cifar.read_split(record.kind, folder, split)
            writer.split(split, len(images), (_resized(img, image_size) for img in images), labels)
        return {"name": record.name, "kind": record.kind, "classes": classes}

    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    splits, meta = cached_arrays(_cache_folder(record.kind, key, image_size), image_size, build)
    return Source(record.name, record.kind, splits, None, meta)


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def _folder(record: Any, image_size: int) -> Source:
    labelled = record.kind == "imagefolder"
    scan = folders.scan(Path(record.path), labelled)
    if record.val_path:
        val_scan = folders.scan(Path(record.val_path), labelled, classes=scan.classes or None)
        train_items, val_items = scan.items, val_scan.items
        problems = scan.problems + val_scan.problems
    else:
        train_items, val_items = folders.split(scan.items, record.val_fraction)
        problems = scan.problems
    if not val_items:
        raise DataError(f"dataset {record.name!r} has no validation images; add images or a val folder")
    meta_base = {"name": record.name, "kind": record.kind, "classes": scan.classes,
                 "problems": [list(p) for p in problems[:folders.MAX_REPORTED]]}
    if (len(train_items) + len(val_items)) * image_size * image_size * 3 > CACHE_LIMIT_BYTES:
        sample = [folders.load_image(p, image_size) for p, _ in train_items[:: max(1, len(train_items) // 500)]]
        from workbench.data.cache import channel_stats

        mean, std = channel_stats(np.stack(sample))
        return Source(record.name, record.kind, None, {"train": train_items, "val": val_items},
                      {**meta_base, "mean": mean, "std": std, "image_size": image_size,
                       "counts": {"train": len(train_items), "val": len(val_items)}})

    def build(writer: CacheWriter) -> dict:
        failed: list[list[str]] = []
        for split, items in (("train", train_items), ("val", val_items)):
            images, labels = [], []
            for path, label in items:
                try:
                    images.append(folders.load_image(path, image_size))
                    labels.append(label)
                except OSError as exc:  # passed the check but would not decode
                    failed.append([str(path), f"could not decode ({exc})"])
            writer.split(split, len(images), images, np.asarray(labels, dtype=np.int64))
        return {**meta_base, "problems": meta_base["problems"] + failed}

    key = hashlib.sha1(f"{scan.fingerprint()}|{record.val_path}|{record.val_fraction}".encode()).hexdigest()[:12]
    splits, meta = cached_arrays(_cache_folder(record.kind, key, image_size), image_size, build)
    return Source(record.name, record.kind, splits, None, meta)
