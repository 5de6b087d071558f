"""Datasets: the built-in `shapes`, and registered image folders and CIFAR folders.

Nothing here imports torch (only `workbench.data.loading` does), so the GUI can list, register
and preview datasets without it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError

BUILTIN_DATASETS = {"shapes": "ten procedural shape classes drawn with Pillow (built in, no download)"}
KINDS = ("imagefolder", "unlabeled", "cifar10", "cifar100")
KIND_HELP = {
    "imagefolder": "labelled: one subfolder per class (torchvision's ImageFolder layout)",
    "unlabeled": "any folder tree of images, no labels (for pre-training: mae, dvae, beit, mpp)",
    "cifar10": "CIFAR-10 python batches (cifar-10-batches-py)",
    "cifar100": "CIFAR-100 python batches (cifar-100-python)",
}


@dataclass
class DataInfo:
    """What a method may know about the data (no datasets: those stay with the engine)."""

    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size: int

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def validation_text(record: Any, long: bool = False) -> str:
    """'1,200 images (the test batch)' (a validation folder, or CIFAR's test batch) or '10% held out'."""
    count = record.stats.get("val_images")
    if count is not None:
        if not long:
            return f"{count:,} images"
        if record.stats.get("validation"):  # CIFAR's test batch
            return f"{count:,} images ({record.stats['validation']})"
        return f"{count:,} images" + (f" in {record.val_path}" if record.val_path else "")
    share = "of each class" if record.kind != "unlabeled" else "of the images"  # no classes to stratify by
    return f"{record.val_fraction:.0%} {share} held out (seeded)" if long else f"{record.val_fraction:.0%} held out"


def dataset_names(store: Any) -> list[str]:
    """Every dataset a run can use: built in first, then the registered ones."""
    return [*BUILTIN_DATASETS, *(d.name for d in store.list_datasets())]


def check_dataset(store: Any, name: str, needs_labels: bool) -> Any:
    """Refuse an unknown dataset, or an unlabelled one for a method that needs labels; its record
    (None for a built-in one)."""
    if name in BUILTIN_DATASETS:
        return None
    record = store.get_dataset(name)
    if record is None:
        raise ConfigError("dataset", f"unknown dataset {name!r}; available: {', '.join(dataset_names(store))} "
                                     f"(`workbench datasets add` registers your own)")
    if needs_labels and record.kind == "unlabeled":
        raise ConfigError("dataset", f"dataset {name!r} has no labels; this method needs a labelled dataset "
                                     f"(an image folder with one subfolder per class)")
    return record


def check_batch(record: Any, batch_size: int, list_files: bool = True) -> None:
    """Refuse a batch larger than the training set of dataset `record` (`check_dataset`'s; None, a
    built-in one, is not bounded here): its images less the share each class holds out for
    validation, when it has no validation set of its own; now rather than as a failed run. Images added to a folder since it was registered count too: when
    the registered count refuses, the folder's files are listed (not opened) before refusing,
    unless not `list_files` (the GUI thread's live check: a large folder takes seconds to list)."""
    images = record.stats.get("images") if record is not None else None
    if images is None:
        return
    # numpy and Pillow: loaded when a registered dataset is checked, not with the GUI
    from workbench.data.folders import held_out, listing

    name = record.name
    own_val = bool(record.val_path or record.stats.get("validation"))  # a val folder, CIFAR's test batch

    def training(per_class: list[int]) -> tuple[int, int]:  # (training images, all images)
        return sum(n if own_val else n - held_out(n, record.val_fraction) for n in per_class), sum(per_class)

    train, total = training(record.stats.get("per_class") or [images])
    if batch_size <= train:
        return
    if list_files and record.kind in ("imagefolder", "unlabeled"):  # every file: more than its images, never fewer
        try:
            files = listing(Path(record.path), labelled=record.kind == "imagefolder")
            if batch_size <= training(list(Counter(label for _, label in files.items).values()))[0]:
                return
        except OSError:  # the folder is gone: the run's start says so
            pass
    held = "" if own_val else f", {total - train} of its {total} held out for validation"  # as registered
    raise ConfigError("batch_size", f"{batch_size} is larger than the training set of dataset {name!r} "
                                    f"({train} images{held}); lower batch_size" + (
                                        "" if list_files else " (images added to its folder since are counted once "
                                                              "a run starts on it, or it is forgotten and added again)"))
