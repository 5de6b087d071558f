"""Metric and image reporting from a worker to the store, batched so it costs little.

Rows are buffered and written in one transaction every `flush_seconds` (and at each
evaluation and at the end). If the database is busy, rows stay buffered and are retried:
a slow reader can delay metrics but never loses them or crashes the run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from workbench import paths
from workbench.engine.execute import taken_from
from workbench.engine.system import differences
from workbench.errors import StoreError
from workbench.store import Store
from workbench.store.schema import ENVIRONMENT, WARNINGS


class Reporter:
    """`token`: the worker's start: rows are written only while it holds the run; once another
    start does, they are dropped and `lost` says why (the trainer stops, writing nothing more)."""

    def __init__(self, store: Store, run_id: int, flush_seconds: float = 1.0, token: str | None = None) -> None:
        self.store, self.run_id, self.flush_seconds, self.token = store, run_id, flush_seconds, token
        self.lost: str | None = None
        self.rows: list[tuple[int, float, str, float, float]] = []
        self.step = 0
        self._last_flush = time.monotonic()

    def lose(self) -> None:
        """A write was refused: another start holds the run. `lost` says why, as the store has it now."""
        self.lost = self.lost or taken_from(self.store, self.run_id)

    def log(self, step: int, epoch: float, metrics: dict[str, float]) -> None:
        now = time.time()
        self.rows.extend((step, epoch, key, float(value), now) for key, value in metrics.items())
        self.step = step
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush(strict=False)

    def flush(self, *, strict: bool = True) -> None:
        """Write buffered rows and the run's progress. `strict=False` keeps them on a busy DB."""
        self._last_flush = time.monotonic()
        if self.lost:
            self.rows = []
            return
        try:
            held = self.store.report_progress(self.run_id, self.rows, self.step, self.token)
        except StoreError as exc:
            if strict:
                raise
            print(f"metrics held back ({len(self.rows)} rows): {exc}", file=sys.stderr)
            return
        self.rows = []
        if not held:
            self.lose()

    def summary(self, metrics: dict[str, float]) -> None:
        """Record the newest evaluation metrics on the run row (what run lists show); a count (an
        int: the parameters) stays one, so it reads "130", not "130.0000"."""
        self._edit(lambda summary: {**summary, **{k: v if isinstance(v, int) else float(v) for k, v in metrics.items()}})

    def environment(self, env: dict[str, str]) -> None:
        """Record what the run now runs on (its summary's environment); a resume on other software
        than its last start says so in a warning."""
        def edit(summary: dict[str, Any]) -> dict[str, Any]:  # read and written in one transaction
            changed = differences(summary[ENVIRONMENT], env) if summary.get(ENVIRONMENT) else []
            summary = {**summary, ENVIRONMENT: env}
            return _warned(summary, f"resumed on other software than its last start: {'; '.join(changed)}") \
                if changed else summary

        self._edit(edit)

    def warn(self, sentence: str) -> None:
        """Keep a warning with the run (its summary's warnings: the Details tab and `workbench show` say it)."""
        self._edit(lambda summary: _warned(summary, sentence))

    def _edit(self, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        if not self.lost and not self.store.edit_summary(self.run_id, edit, self.token):
            self.lose()

    def report(self, step: int, name: str, data: dict[str, Any]) -> Path:
        """Save a method's end-of-training report as a JSON artifact (written atomically)."""
        path = paths.run_dir(self.run_id) / f"{name}-report.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        self._record("report", path, step, name, place=lambda: os.replace(tmp, path))
        tmp.unlink(missing_ok=True)  # not placed: another start holds the run
        return path

    def images(self, step: int, images: dict[str, np.ndarray]) -> list[Path]:
        """Save each [H, W, 3 or 4] uint8 image as a PNG artifact named after its key."""
        folder = paths.run_dir(self.run_id) / "images"
        folder.mkdir(exist_ok=True)
        saved = []
        for name, pixels in images.items():
            path = folder / f"{name}-{step:08d}.png"
            Image.fromarray(pixels).save(path)
            self._record("image", path, step, name, meta={"width": int(pixels.shape[1]),
                                                          "height": int(pixels.shape[0])})
            saved.append(path)
        return saved

    def _record(self, kind: str, path: Path, step: int, name: str, **more: Any) -> None:
        """The artifact's record, while the worker's start holds the run (else `lost` says why)."""
        if not self.lost and self.store.keep_file(self.run_id, kind, path, step=step, name=name, token=self.token,
                                                  **more) is None:
            self.lose()


class Window:
    """Training metrics averaged since the last report, and where the time went: images per
    second, and the share of it spent waiting for the next batch (the input pipeline)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        self.steps, self.images, self.waiting = 0, 0, 0.0
        self.start = self.mark = time.perf_counter()

    def batch_arrived(self) -> None:
        self.waiting += time.perf_counter() - self.mark

    def step_done(self, out: dict[str, torch.Tensor], images: int) -> None:
        for key, value in out.items():
            self.sums[key] += value.detach().float()
        self.steps += 1
        self.images += images
        self.mark = time.perf_counter()

    def metrics(self) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        metrics = {f"train/{k}": (v / max(self.steps, 1)).item() for k, v in self.sums.items()}
        metrics["train/images_per_s"] = self.images / elapsed
        metrics["train/data_wait"] = self.waiting / elapsed
        return metrics


def _warned(summary: dict[str, Any], sentence: str) -> dict[str, Any]:
    return {**summary, WARNINGS: [*summary.get(WARNINGS, []), sentence]}
