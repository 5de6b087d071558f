"""Metric series of runs for the curves: growing numpy buffers and EMA smoothing (numpy only)."""

from __future__ import annotations

import csv

import numpy as np


def ema(values: np.ndarray, alpha: float, prev: float | None = None) -> np.ndarray:
    """Exponential moving average y_t = a·y_{t-1} + (1-a)·x_t, in vectorised blocks; `prev`: the
    y before the first value (the series' average so far; None: the first value itself)."""
    if alpha <= 0 or len(values) == 0:
        return values
    out = np.empty_like(values)
    prev, block = values[0] if prev is None else prev, 512
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
    """Growing buffers of every metric of one run: columns step, epoch, wall time, value.

    Each key's buffer is column-major and doubles when full, so a poll's few new rows cost a
    copy of themselves, not of the whole history, and a column handed to the plot is contiguous
    (no copy per redraw)."""

    def __init__(self) -> None:
        self.last_id = 0
        self.buffers: dict[str, np.ndarray] = {}  # key -> [capacity, 4], Fortran order
        self.sizes: dict[str, int] = {}
        self.version = 0  # bumped on new data, so unchanged curves are not redrawn
        self.smooth: dict[str, tuple[float, np.ndarray]] = {}  # key -> (alpha, its values smoothed so far)

    def extend(self, last_id: int, columns: dict[str, np.ndarray]) -> None:
        """Append the rows of `Store.metric_columns` (key -> [n, 4]); `last_id`: the newest row's id."""
        self.last_id = max(self.last_id, last_id)
        for key, block in columns.items():
            held = self.sizes.get(key, 0)
            buffer, size = self.buffers.get(key), held + len(block)
            if buffer is None or size > len(buffer):
                grown = np.empty((max(size, 2 * held, 64), 4), order="F")
                if buffer is not None:
                    grown[:held] = buffer[:held]
                buffer = self.buffers[key] = grown
            buffer[held:size] = block
            self.sizes[key] = size
        if columns:
            self.version += 1

    @property
    def keys(self) -> list[str]:
        return list(self.buffers)

    def table(self, key: str) -> np.ndarray:
        """[n, 4] view of (step, epoch, wall, value) for `key`; its rows never change afterwards."""
        buffer = self.buffers.get(key)
        return buffer[:self.sizes[key]] if buffer is not None else np.empty((0, 4))

    def smoothed(self, key: str, alpha: float) -> np.ndarray:
        """The key's values smoothed (`ema`); only rows new since the last call are smoothed (the
        rows never change), not the whole history at each poll: 6.5 ms a 100k-point curve."""
        values = self.table(key)[:, 3]
        alpha_then, done = self.smooth.get(key, (None, values[:0]))
        if alpha <= 0:
            return values
        if alpha_then != alpha or len(done) > len(values):
            done = values[:0]
        if len(done) < len(values):
            tail = ema(values[len(done):], alpha, prev=done[-1] if len(done) else None)
            done = np.concatenate([done, tail])
            self.smooth[key] = (alpha, done)
        return done

    def x_values(self, table: np.ndarray, x_col: int) -> np.ndarray:
        """The x values of rows of one of its tables: step, epoch, or seconds since its first row."""
        return table[:, x_col] - self.start_time() if x_col == 2 else table[:, x_col]

    def start_time(self) -> float:
        starts = [buffer[0, 2] for key, buffer in self.buffers.items() if self.sizes[key]]
        return min(starts) if starts else 0.0


def write_csv(path: str, series: dict[int, RunSeries], names: dict[int, str]) -> None:
    """Every point of these runs' series as one long CSV table (run, name, key, step, epoch, wall, value)."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["run", "name", "key", "step", "epoch", "wall_time", "value"])
        for rid, one in series.items():
            for key in sorted(one.keys):
                for step, epoch, wall, value in one.table(key):
                    out.writerow([rid, names.get(rid, ""), key, int(step), epoch, wall, repr(value)])
