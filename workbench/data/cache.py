"""Decoded-image caches: every dataset small enough becomes uint8 arrays on disk, decoded once.

A cache folder holds `{split}_images.npy` [N, S, S, 3] uint8, `{split}_labels.npy` [N] and
`meta.json` (classes, channel mean/std of the training split, counts, and whatever the
builder reports, such as skipped files). It is built in a temporary folder and renamed into
place, so concurrent builders or a crash never leave a half-written cache. Reading maps the
images from disk, so a large cache costs no memory until used. numpy and Pillow only.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from workbench.errors import DataError

SPLITS = ("train", "val")


@dataclass(frozen=True)
class Arrays:
    """One split: images [N, H, W, 3] uint8 (memory-mapped) and labels [N] int64 (-1: unlabelled)."""

    images: np.ndarray
    labels: np.ndarray


Builder = Callable[["CacheWriter"], dict[str, Any]]


class CacheWriter:
    """Handed to a builder: `split(name, count, images, labels)` writes one split."""

    def __init__(self, folder: Path, image_size: int) -> None:
        self.folder, self.image_size = folder, image_size
        self.counts: dict[str, int] = {}
        self.stats: tuple[list[float], list[float]] | None = None

    def split(self, name: str, count: int, images: Iterable[np.ndarray], labels: np.ndarray) -> None:
        """Write `count` images [S, S, 3] uint8 (from an iterator: nothing is held in memory)."""
        out = np.lib.format.open_memmap(self.folder / f"{name}_images.npy", mode="w+", dtype=np.uint8,
                                        shape=(count, self.image_size, self.image_size, 3))
        written = 0
        for i, image in enumerate(images):
            out[i] = image
            written += 1
        if written != count:
            raise ValueError(f"split {name}: {written} images written, {count} announced")
        if name == "train":
            self.stats = channel_stats(out)
        out.flush()
        del out
        np.save(self.folder / f"{name}_labels.npy", np.asarray(labels, dtype=np.int64))
        self.counts[name] = count


def channel_stats(images: np.ndarray, pixels_per_chunk: int = 1 << 24) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images [N, H, W, 3], in [0, 1] units, exact: from each
    channel's histogram of its 256 values, counted in chunks of about `pixels_per_chunk` pixels.
    Summing floats instead took 8.4 s for 2,048 images at 224 px against 0.8 s, and made building
    a cache several times slower than decoding it (bench/data.py)."""
    counts = np.zeros((3, 256), dtype=np.int64)
    chunk = max(1, pixels_per_chunk // max(1, images.shape[1] * images.shape[2]))
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk]
        for c in range(3):
            counts[c] += np.bincount(block[..., c].ravel(), minlength=256)
    values = np.arange(256) / 255.0
    n = max(int(counts[0].sum()), 1)
    mean = counts @ values / n
    std = np.sqrt(np.maximum(counts @ values ** 2 / n - mean ** 2, 1e-12))
    return [round(float(m), 5) for m in mean], [round(float(s), 5) for s in std]


def cached_arrays(folder: Path, image_size: int, build: Builder) -> tuple[dict[str, Arrays], dict[str, Any]]:
    """Both splits and the metadata, building the cache first if it is not there."""
    if not (folder / "meta.json").exists():
        _build(folder, image_size, build)
    return open_cache(folder)


def open_cache(folder: Path) -> tuple[dict[str, Arrays], dict[str, Any]]:
    """Both splits of a built cache (memory-mapped) and its metadata."""
    meta = json.loads((folder / "meta.json").read_text())
    splits = {s: Arrays(np.load(folder / f"{s}_images.npy", mmap_mode="r"), np.load(folder / f"{s}_labels.npy"))
              for s in SPLITS}
    return splits, meta


def drop_caches(root: Path, name: str, path: str, image_size: int | None = None,
                keep: Path | None = None) -> list[Path]:
    """Delete the caches under `root` of dataset `name` read from `path` (those at `image_size`
    other than `keep`, or all), the folders deleted: derived data, decoded again when needed, that
    a changed or forgotten folder would leave behind (up to 4 GB each). Another store sharing the
    cache folder may have a dataset of the same name elsewhere: its caches stay (a cache from before
    2026-11-30 does not say its path: the name decides). A run still reading a deleted cache keeps
    reading it: its files are mapped, and a deleted file lives on while it is (Linux, macOS)."""
    dropped = []
    for folder in sorted(root.glob(f"*-{image_size}px" if image_size else "*px")):
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):  # not a finished cache
            continue
        same = folder != keep and meta.get("name") == name and meta.get("path", path) == path
        if same:
            shutil.rmtree(folder, ignore_errors=True)
            dropped.append(folder)
    return dropped


def _placed(tmp: Path, folder: Path, meta: dict[str, Any], image_size: int) -> None:
    """A built cache renamed into place (another process's, finished first, is the same one), and
    the same dataset's older caches at that size dropped."""
    try:
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return
    if meta.get("name") and meta.get("path"):
        drop_caches(folder.parent, meta["name"], meta["path"], image_size, keep=folder)


def _build(folder: Path, image_size: int, build: Builder) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        writer = CacheWriter(tmp, image_size)
        meta = build(writer)
        if writer.stats is None or set(writer.counts) != set(SPLITS):
            raise ValueError("a dataset cache needs a train and a val split")
        meta.update(image_size=image_size, counts=writer.counts, mean=writer.stats[0], std=writer.stats[1])
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        _placed(tmp, folder, meta, image_size)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Filling:
    """A folder's cache built while a run reads it, so the first run on a new folder starts
    training at once instead of after every image is decoded (20,000 JPEGs: seconds to minutes).

    The cache's files are written in a temporary folder by a background thread, decoding in
    `folders.load_images`' processes (niced: training goes first), in order; a batch that asks
    for images it has not reached yet decodes them itself (`ensure`). When every image is in, the folder is renamed
    into place (the next run opens it), with `meta`; the thread is not a daemon, so a run that ends
    first still leaves the finished cache. An image that passed its header check but does not
    decode stops the run that needs it with its name (the cache is not kept; the next start tries
    again), as a folder decoded on the fly does."""

    @classmethod
    def start(cls, folder: Path, image_size: int, items: dict[str, Sequence[tuple[Path, int]]],
              meta: dict[str, Any]) -> Filling:
        """The filling of `folder` this process has going, or a new one."""
        going = _FILLING.get(folder)
        if going is None or not going.thread.is_alive():
            going = _FILLING[folder] = cls(folder, image_size, items, meta)
        return going

    def __init__(self, folder: Path, image_size: int, items: dict[str, Sequence[tuple[Path, int]]],
                 meta: dict[str, Any]) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        self.folder, self.image_size, self.meta = folder, image_size, meta
        self.tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
        self.paths = {s: [path for path, _ in items[s]] for s in SPLITS}
        self.labels = {s: np.asarray([label for _, label in items[s]], dtype=np.int64) for s in SPLITS}
        self.images = {s: np.lib.format.open_memmap(self.tmp / f"{s}_images.npy", mode="w+", dtype=np.uint8,
                                                    shape=(len(items[s]), image_size, image_size, 3))
                       for s in SPLITS}
        self.done = {s: np.zeros(len(items[s]), dtype=bool) for s in SPLITS}
        self.failed: list[list[str]] = []
        self.thread = threading.Thread(target=self._fill, name="cache-fill")
        self.thread.start()

    @property
    def splits(self) -> dict[str, Arrays]:
        return {s: Arrays(self.images[s], self.labels[s]) for s in SPLITS}

    def ensure(self, split: str, indices: np.ndarray) -> None:
        """Decode here the images at `indices` of `split` that the background has not written yet."""
        from workbench.data import folders

        done = self.done[split]
        for i in indices[~done[indices]]:
            image = folders.load_or_reason(self.paths[split][i], self.image_size)
            if isinstance(image, str):
                raise DataError(f"{self.paths[split][i]} could not be decoded ({image}); fix or remove it and "
                                f"resume the run")
            self.images[split][i] = image
            done[i] = True

    def _fill(self) -> None:
        from workbench.data import folders

        # both splits in one call: its processes get every image at once, so the fill goes on when
        # the run's main thread has ended (no new pool can start after the interpreter's shutdown)
        todo = [(split, i) for split in SPLITS for i in np.flatnonzero(~self.done[split])]
        decoded = folders.load_images([self.paths[split][i] for split, i in todo], self.image_size, nice=10)
        for (split, i), image in zip(todo, decoded):
            if isinstance(image, str):
                self.failed.append([str(self.paths[split][i]), f"could not decode ({image})"])
            elif not self.done[split][i]:
                self.images[split][i] = image
                self.done[split][i] = True
        if self.failed:  # a cache with holes is never kept (this process's mapping of it stays readable)
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        for split in SPLITS:
            self.images[split].flush()
            np.save(self.tmp / f"{split}_labels.npy", self.labels[split])
        counts = {s: len(self.labels[s]) for s in SPLITS}
        (self.tmp / "meta.json").write_text(json.dumps({**self.meta, "image_size": self.image_size,
                                                        "counts": counts}, indent=1))
        _placed(self.tmp, self.folder, self.meta, self.image_size)


_FILLING: dict[Path, Filling] = {}
