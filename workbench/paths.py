"""Where the workbench keeps its database, runs and dataset caches.

`WORKBENCH_HOME` overrides the per-user data folder, so tests and several
independent workspaces never share a database by accident.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def home() -> Path:
    """The workbench home folder (created on first use)."""
    env = os.environ.get("WORKBENCH_HOME")
    if env:
        path = Path(env).expanduser()
    elif sys.platform == "win32":
        path = Path(os.environ.get("APPDATA", Path.home())) / "ViT Workbench"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / "ViT Workbench"
    else:
        path = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "vit-workbench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_path() -> Path:
    return home() / "workbench.sqlite"


def run_dir(run_id: int, *, create: bool = True) -> Path:
    """Folder of one run: checkpoints/, images/, exports/ and worker.log."""
    path = home() / "runs" / f"{run_id:06d}"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def dataset_cache() -> Path:
    """Generated/downloaded dataset caches; `WORKBENCH_DATASETS` lets several homes share one."""
    env = os.environ.get("WORKBENCH_DATASETS")
    path = Path(env).expanduser() if env else home() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path
