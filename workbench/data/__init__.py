"""Datasets. This package imports torch only inside `workbench.data.loading`, so the GUI can
list datasets and preview images without it."""

from __future__ import annotations

from workbench.errors import ConfigError

BUILTIN_DATASETS = {"shapes": "ten procedural shape classes drawn with Pillow (built in, no download)"}


def check_dataset(name: str) -> None:
    """Refuse an unknown dataset name before a run is created."""
    if name not in BUILTIN_DATASETS:
        raise ConfigError("dataset", f"unknown dataset {name!r}; available: {', '.join(BUILTIN_DATASETS)}")
