"""Registered datasets: adding one (scan and report), and turning one into arrays for training.

Kinds: `imagefolder` (labelled, one subfolder per class), `unlabeled` (any tree of images,
for pre-training), `cifar10` / `cifar100` (the python-pickle batches). The built-in `shapes`
needs no registration. Training reads decoded uint8 arrays from a cache built on first use
(`workbench.data.cache`); an image folder too large to cache is decoded on the fly instead.
numpy and Pillow only: the GUI can register and preview datasets without torch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench import paths
from workbench.data import BUILTIN_DATASETS, KINDS, cifar, folders, shapes
from workbench.data.cache import (
    Arrays,
    CacheWriter,
    Filling,
    cached_arrays,
    channel_stats,
    drop_caches,
    open_cache,
)
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
    # resolved before it is scanned, as the record keeps it: a scan's fingerprint includes its folder's path
    val_path = Path(val_path).expanduser().resolve() if val_path else None
    if kind in cifar.LAYOUT:
        stats = _cifar_stats(kind, cifar.batches_folder(kind, path))
    else:
        scan = folders.scan(path, labelled=kind == "imagefolder")
        stats = {**scan.report(), "fingerprint": scan.fingerprint()}
        if val_path:
            val = folders.scan(val_path, labelled=kind == "imagefolder", classes=scan.classes or None)
            stats.update(_val_stats(val, scan.classes), val_fingerprint=val.fingerprint())
    return store.add_dataset(name, kind, path, val_path=val_path,
                             val_fraction=val_fraction, stats=stats)


def users(store: Any, name: str) -> list[Any]:
    """The runs (archived ones and those in the Trash too) whose config trains on dataset `name`."""
    return [run for archived, trashed in ((False, False), (True, False), (False, True))
            for run in store.list_runs(archived=archived, trashed=trashed) if run.config.get("dataset") == name]


def forget(store: Any, name: str) -> int:
    """Remove dataset `name`'s record and its decoded caches (its own files are not touched); how
    many caches were deleted. Refused while a run that trains on it waits or trains: it would fail."""
    if name in BUILTIN_DATASETS:
        raise DataError(f"{name} is built in and cannot be forgotten")
    active = [run.id for run in store.list_runs(status=["queued", "running"])  # never archived nor trashed
              if run.config.get("dataset") == name]
    if active:
        raise DataError(f"run(s) {', '.join(map(str, active))} wait or train on dataset {name!r}; cancel them, or "
                        f"forget it once they end")
    record = store.get_dataset(name)
    store.remove_dataset(name)
    return len(drop_caches(paths.dataset_cache(), name, str(record.path))) if record is not None else 0


def _cifar_stats(kind: str, folder: Path) -> dict[str, Any]:
    """Both splits read and checked now, so a broken batch is refused here, not in a run."""
    _, train_labels, classes = cifar.read_split(kind, folder, "train")
    _, val_labels, _ = cifar.read_split(kind, folder, "val")
    return {"classes": classes, "images": int(len(train_labels)), "val_images": int(len(val_labels)),
            "per_class": np.bincount(train_labels, minlength=len(classes)).tolist(), "skipped": 0,
            "problems": [], "validation": "the test batch"}


def _val_stats(val: folders.Scan, classes: list[str]) -> dict[str, Any]:
    """A separate validation folder's count, skipped files, and what it lacks (said, not hidden)."""
    warnings = [p[0] + ": " + p[1] for p in val.problems if p[1].startswith("class folder not in")]
    if classes:
        per_class = np.bincount([label for _, label in val.items], minlength=len(classes))
        missing = [c for c, n in zip(classes, per_class) if n == 0]
        if missing:
            warnings.insert(0, f"the validation folder has no images of {len(missing)} of {len(classes)} "
                               f"classes ({', '.join(missing[:10])}): their accuracy is never measured")
    return {"val_images": len(val.items), "val_problems": [list(p) for p in val.problems[:folders.MAX_REPORTED]],
            "warnings": warnings}


@dataclass
class Source:
    """A dataset resolved for training at one image size."""

    name: str
    kind: str
    splits: dict[str, Arrays] | None  # None: too large to cache, use `files`
    files: dict[str, list[tuple[Path, int]]] | None
    meta: dict[str, Any]
    filling: Filling | None = None  # the cache is being written as the run reads it (`ensure` first)

    @property
    def labelled(self) -> bool:
        return self.kind != "unlabeled"


def resolve(store: Any, name: str, image_size: int, fill: bool = True) -> Source:
    """Arrays (or file lists) of both splits with classes, mean and std, building caches as needed.
    `fill`: a folder without its cache yet starts filling it here (`cache.Filling`); without, its
    files are listed, as for a folder too large to cache (a data-parallel run's other ranks, which
    would each decode the whole folder again; a look at a few images)."""
    if name == "shapes":
        splits, meta = shapes.load(image_size)
        return Source(name, "shapes", splits, None, meta)
    record = store.get_dataset(name) if store is not None else None
    if record is None:
        raise DataError(f"dataset {name!r} is not registered; `workbench datasets add` registers it")
    if record.kind in cifar.LAYOUT:
        return _cifar(record, image_size)
    return _folder(store, record, image_size, fill)


def _cache_folder(kind: str, key: str, image_size: int) -> Path:
    return paths.dataset_cache() / f"{kind}-{key}-{image_size}px"


def _cifar(record: Any, image_size: int) -> Source:
    folder = cifar.batches_folder(record.kind, Path(record.path))

    def build(writer: CacheWriter) -> dict:
        classes: list[str] = []
        for split in ("train", "val"):
            images, labels, classes = cifar.read_split(record.kind, folder, split)
            writer.split(split, len(images), (_resized(img, image_size) for img in images), labels)
        return {"name": record.name, "kind": record.kind, "classes": classes, "path": str(record.path)}

    # keyed on the files' content (sizes and times), not the folder alone: replaced batches get a new cache
    key = cifar.fingerprint(record.kind, folder)
    splits, meta = cached_arrays(_cache_folder(record.kind, key, image_size), image_size, build)
    return Source(record.name, record.kind, splits, None, meta)


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def _folder_cache(record: Any, fingerprint: str, image_size: int) -> Path:
    key = hashlib.sha1(f"{fingerprint}|{record.val_path}|{record.val_fraction}".encode()).hexdigest()[:12]
    return _cache_folder(record.kind, key, image_size)


def _unchanged(record: Any, training: folders.Scan | None = None) -> folders.Scan | None:
    """The folder (with `training`, the training folder's scan: its separate validation folder,
    labelled by its classes) as its last check found it, when its files have the names, sizes and
    times they had then and that check's problems are all on record: no header read again (20,000
    JPEGs: 1.3 s). None otherwise."""
    val = training is not None
    stats = record.stats
    try:
        listing = folders.listing(Path(record.val_path if val else record.path), record.kind == "imagefolder",
                                  training.classes if val else None)
    except OSError:
        return None
    problems = stats.get("val_problems" if val else "problems", [])
    complete = len(problems) < folders.MAX_REPORTED if val else stats.get("skipped", 0) <= len(problems)
    if not complete or listing.fingerprint() != stats.get("val_fingerprint" if val else "fingerprint"):
        return None
    return folders.as_checked(listing, problems)


def _folder(store: Any, record: Any, image_size: int, fill: bool) -> Source:
    labelled = record.kind == "imagefolder"
    scan = _unchanged(record) or folders.scan(Path(record.path), labelled, decode=False)
    val_scan = (_unchanged(record, scan) or folders.scan(Path(record.val_path), labelled,
                                                                 classes=scan.classes or None, decode=False)
                ) if record.val_path else None
    changes, stats = _changes(store, record, scan, val_scan)
    # the files that did not decode when each folder was last checked in full (a run start reads headers only)
    broken = dict(stats.get("problems", []) + stats.get("val_problems", []))
    if val_scan is not None:
        train_items, val_items = _usable(scan.items, broken), _usable(val_scan.items, broken)
        problems = scan.problems + val_scan.problems
    else:
        train_items, val_items = folders.split(_usable(scan.items, broken), record.val_fraction)
        problems = scan.problems
    listed = {path for path, _ in problems}
    problems = problems + [(path, why) for path, why in broken.items() if path not in listed]
    if not val_items:
        raise DataError(f"dataset {record.name!r} has no validation images; add images or a val folder")
    meta_base = {"name": record.name, "kind": record.kind, "classes": scan.classes, "path": str(record.path),
                 "problems": [list(p) for p in problems[:folders.MAX_REPORTED]]}
    # a separate validation folder's files are part of the key: a changed one gets a new cache
    files = scan.fingerprint() + (val_scan.fingerprint() if val_scan else "")
    folder = _folder_cache(record, files, image_size)
    if (folder / "meta.json").exists():
        splits, meta = open_cache(folder)
        return Source(record.name, record.kind, splits, None, {**meta, "changes": changes, "files": files})
    mean, std = _sample_stats(train_items, image_size)
    meta = {**meta_base, "mean": mean, "std": std, "files": files}
    items = {"train": train_items, "val": val_items}
    if not fill or (len(train_items) + len(val_items)) * image_size * image_size * 3 > CACHE_LIMIT_BYTES:
        return Source(record.name, record.kind, None, items,
                      {**meta, "changes": changes, "image_size": image_size,
                       "counts": {"train": len(train_items), "val": len(val_items)}})
    filling = Filling.start(folder, image_size, items, meta)
    return Source(record.name, record.kind, filling.splits, None, {**meta, "changes": changes}, filling)


def _usable(items: list[tuple[Path, int]], broken: dict[str, str]) -> list[tuple[Path, int]]:
    return [(path, label) for path, label in items if str(path) not in broken] if broken else items


def _sample_stats(items: list[tuple[Path, int]], image_size: int) -> tuple[list[float], list[float]]:
    """Channel mean and std of ~500 training images spread evenly through the folder: known before
    the run's first step, for a folder decoded on the fly or one whose cache fills as it trains (a
    cache written before 2026-11-30 keeps the statistics of all its images)."""
    sample = [folders.load_or_reason(path, image_size) for path, _ in items[:: max(1, len(items) // 500)]]
    return channel_stats(np.stack([image for image in sample if not isinstance(image, str)]))


def _changes(store: Any, record: Any, scan: folders.Scan,
             val_scan: folders.Scan | None) -> tuple[list[str], dict[str, Any]]:
    """What changed in the folder (and a separate validation folder) since it was added, re-checked
    at each run start: a class that lost all its images stops the run (its model would silently
    have fewer classes); other changes are returned as warnings for the run's log, and the
    dataset's record is refreshed. -> (the warnings, the record's stats as they are now)."""
    stats, fingerprint = record.stats, scan.fingerprint()
    fresh, notes = dict(stats), []
    if stats.get("fingerprint") != fingerprint:
        before, now = list(stats.get("classes") or []), scan.classes
        if record.kind == "imagefolder" and before != now:
            gone, new = [c for c in before if c not in now], [c for c in now if c not in before]
            raise DataError(f"dataset {record.name!r} had {len(before)} classes when it was added and now has "
                            f"{len(now)}" + (f" (no readable images left: {', '.join(gone)})" if gone else "")
                            + (f" (new: {', '.join(new)})" if new else "") + "; restore the images, or "
                            f"`workbench datasets remove {record.name}` and add it again")
        fresh.update(_rechecked(scan, stats.get("problems", [])).report(), fingerprint=fingerprint)
        if "fingerprint" in stats or (stats.get("images"), stats.get("skipped", 0)) != (fresh["images"],
                                                                                     fresh["skipped"]):
            # (a record from before fingerprints, now given one, has not changed)
            notes.append(f"dataset {record.name!r}: its files changed since it was added ({stats.get('images')} -> "
                         f"{fresh['images']} images, {stats.get('skipped', 0)} -> {fresh['skipped']} skipped); "
                         f"its record is updated")
    if val_scan is not None and stats.get("val_fingerprint") != val_scan.fingerprint():
        if "val_fingerprint" in stats:  # one from before 2026-11-30 is only given it, its problems kept
            fresh.update(_val_stats(_rechecked(val_scan, stats.get("val_problems", [])), scan.classes))
            notes.append(f"dataset {record.name!r}: its validation folder changed since it was added "
                         f"({stats.get('val_images')} -> {fresh['val_images']} images); its record is updated")
        fresh["val_fingerprint"] = val_scan.fingerprint()
    if fresh != stats:
        store.update_dataset(record.name, stats=fresh)
    return notes, fresh


def _rechecked(scan: folders.Scan, before: list) -> folders.Scan:
    """`scan` (its headers read) with the images that its folder's last full check found broken
    and that still do not decode (decoded again now: a few files) moved to its problems, so that
    a file broken in its pixels stays out of the runs when other files change."""
    listed = {path for path, _ in scan.problems}
    broken = []
    for path, _ in before:
        if path not in listed and Path(path).is_file() and Path(path).suffix.lower() in folders.IMAGE_SUFFIXES:
            size, why = folders.check_image(Path(path))
            if size is None:
                broken.append((path, why))
    gone = {path for path, _ in broken}
    return replace(scan, items=[(p, label) for p, label in scan.items if str(p) not in gone],
                   problems=scan.problems + broken) if broken else scan
