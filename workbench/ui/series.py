"""Metric series of runs for the curves: growing numpy buffers and EMA smoothing (numpy only)."""

from __future__ import annotations

import csv

import numpy as np

from workbench.store import MetricRow


def ema(values: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average y_t = a·y_{t-1} + (1-a)·x_t, in vectorised blocks."""
    if alpha <= 0 or len(values) == 0:
        return values
    out = np.empty_like(values)
    prev, block = values[0], 512
    decay = alpha ** np.arange(1, block + 1)
    kernel = (1 - alpha) * alpha ** np.arange(block)
    for start in range(0, len(values), block):
        chunk = values[start:start + block]
        m = len(chunk)
        y = np.convolve(chunk, kernel[:m])[:m] + decay[:m] * prev
        out[start:start + m] = y
        prev = y[-1]
    return out


class RunSeries:
    """Growing buffers of every metric of one run: columns step, epoch, wall time, value."""

    def __init__(self) -> None:
        self.last_id = 0
        self.chunks: dict[str, list[np.ndarray]] = {}
        self.version = 0  # bumped on new data, so unchanged curves are not redrawn

    def extend(self, rows: list[MetricRow]) -> None:
        if not rows:
            return
        self.last_id = rows[-1][0]
        by_key: dict[str, list[tuple[float, float, float, float]]] = {}
        for _, step, epoch, key, value, wall in rows:
            by_key.setdefault(key, []).append((step, epoch, wall, value))
        for key, points in by_key.items():
            self.chunks.setdefault(key, []).append(np.asarray(points, dtype=float))
        self.version += 1

    def table(self, key: str) -> np.ndarray:
        """[n, 4] array of (step, epoch, wall, value) for `key`."""
        chunks = self.chunks.get(key)
        if not chunks:
            return np.empty((0, 4))
        if len(chunks) > 1:
            chunks[:] = [np.concatenate(chunks)]
        return chunks[0]

    def x_values(self, table: np.ndarray, x_col: int) -> np.ndarray:
        """The x values of rows of one of its tables: step, epoch, or seconds since its first row."""
        return np.ascontiguousarray(table[:, x_col]) - (self.start_time() if x_col == 2 else 0.0)

    def start_time(self) -> float:
        starts = [c[0][0, 2] for c in self.chunks.values() if c]
        return min(starts) if starts else 0.0


def write_csv(path: str, series: dict[int, RunSeries], names: dict[int, str]) -> None:
    """Every point of these runs' series as one long CSV table (run, name, key, step, epoch, wall, value)."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["run", "name", "key", "step", "epoch", "wall_time", "value"])
        for rid, one in series.items():
            for key in sorted(one.chunks):
                for step, epoch, wall, value in one.table(key):
                    out.writerow([rid, names.get(rid, ""), key, int(step), epoch, wall, repr(value)])
