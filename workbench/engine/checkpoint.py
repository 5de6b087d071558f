"""Checkpoints: written atomically, read without unpickling code, the last few kept.

A checkpoint is a dict of tensors and plain values (model, optimizer, scheduler, step, RNG
states) saved with `torch.save` and read with `weights_only=True`. It is first written to a
temporary file and renamed into place, so a crash or a full disk never leaves a torn file
under the real name. If the newest one cannot be read, the previous one is used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from workbench import paths
from workbench.store import Artifact, Store

KIND = "checkpoint"


def write_atomic(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


class Checkpoints:
    """The checkpoints of one run, recorded as artifacts in the store."""

    def __init__(self, store: Store, run_id: int, keep: int = 2) -> None:
        self.store, self.run_id, self.keep = store, run_id, keep

    def save(self, step: int, state: dict[str, Any]) -> Path:
        path = paths.run_dir(self.run_id) / "checkpoints" / f"step-{step:08d}.pt"
        write_atomic(path, state)
        self.store.add_artifact(self.run_id, KIND, path, step=step)
        old = self.store.artifacts(self.run_id, KIND)[:-self.keep]
        for art in old:
            self.store.abspath(art).unlink(missing_ok=True)
        self.store.delete_artifacts([a.id for a in old])
        return path

    def latest_readable(self) -> tuple[dict[str, Any], Artifact] | None:
        """The newest checkpoint that loads; unreadable or missing ones are reported and skipped."""
        for art in reversed(self.store.artifacts(self.run_id, KIND)):
            path = self.store.abspath(art)
            try:
                return read(path), art
            except FileNotFoundError:
                print(f"checkpoint {path} is missing; trying an older one", file=sys.stderr)
            except Exception as exc:  # a torn or corrupted file: fall back to the previous one
                print(f"checkpoint {path} is unreadable ({exc}); trying an older one", file=sys.stderr)
        return None
