"""`CurvesView`: live metric curves of the selected runs, one colour per run.

Each ticked metric gets its own plot; every selected run is a curve on it. New rows are
fetched off the GUI thread (only ids above the last one seen) into growing numpy buffers, and
each curve is redrawn once per poll with `setData`, never once per point; pyqtgraph's peak
downsampling and clipping keep 10 runs x 100k points smooth. The x axis is step, epoch or
wall time; the y axis linear or log; EMA smoothing and a hover read-out help reading noisy
curves. Plots export as PNG, the data as CSV.
"""

from __future__ import annotations

import csv
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.config import config_class
from workbench.store import MetricRow, Store

PALETTE = ("#2f7fd8", "#d64545", "#2e9d57", "#d9862b", "#8d5bd6", "#1aa3a3", "#c2487f", "#7a7a7a",
           "#b8a21a", "#3b3b9e")
X_AXES = {"step": 0, "epoch": 1, "wall time (s)": 2}


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

    def start_time(self) -> float:
        starts = [c[0][0, 2] for c in self.chunks.values() if c]
        return min(starts) if starts else 0.0


class CurvesView(QWidget):
    points_added = Signal()

    def __init__(self, store: Store, submit: Callable[..., None] | None = None) -> None:
        super().__init__()
        self.store = store
        self.submit = submit  # runs a fetch off the GUI thread (Tasks.submit); None: fetch inline
        self.series: dict[int, RunSeries] = {}
        self.names: dict[int, str] = {}
        self.methods: dict[int, str] = {}
        self.fetching = False
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[tuple[str, int], tuple[pg.PlotDataItem, tuple]] = {}

        self.keys = QListWidget()
        self.keys.itemChanged.connect(lambda _: self.rebuild_plots())
        self.keys.setMinimumWidth(150)
        self.keys.setMaximumWidth(240)
        self.x_axis = QComboBox()
        self.x_axis.addItems(list(X_AXES))
        self.log_y = QCheckBox("log y")
        self.smooth = QSlider(Qt.Orientation.Horizontal)
        self.smooth.setRange(0, 99)
        self.smooth.setFixedWidth(120)
        self.smooth_label = QLabel("smoothing 0.00")
        self.follow = QCheckBox("follow")
        self.follow.setChecked(True)
        for control in (self.x_axis.currentTextChanged, self.log_y.toggled, self.smooth.valueChanged):
            control.connect(lambda *_: self.redraw(force=True))
        self.follow.toggled.connect(self._apply_follow)
        png = QPushButton("Save PNG…")
        png.clicked.connect(lambda: self.export_png())
        csv_button = QPushButton("Save CSV…")
        csv_button.clicked.connect(lambda: self.export_csv())
        self.readout = QLabel(" ")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
        self.canvas.scene().sigMouseMoved.connect(self._hover)
        controls = QHBoxLayout()
        for w in (QLabel("x"), self.x_axis, self.log_y, self.smooth_label, self.smooth, self.follow):
            controls.addWidget(w)
        controls.addStretch(1)
        controls.addWidget(png)
        controls.addWidget(csv_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.canvas, 1)
        right_layout.addWidget(self.readout)
        splitter = QSplitter()
        splitter.addWidget(self.keys)
        splitter.addWidget(right)
        splitter.setSizes([185, 800])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    # ------------------------------------------------------------------- data
    def set_runs(self, runs: dict[int, tuple[str, str]]) -> None:
        """Show these runs (id -> (label, method)); buffers of runs already shown are kept."""
        self.series = {rid: self.series.get(rid) or RunSeries() for rid in runs}
        self.names = {rid: label for rid, (label, _) in runs.items()}
        self.methods = {rid: method for rid, (_, method) in runs.items()}
        self._sync_keys()
        self.rebuild_plots()
        self.refresh()

    def refresh(self) -> None:
        """Fetch rows newer than each buffer holds (in the background when possible), then redraw."""
        if self.fetching or not self.series:
            self.redraw()
            return
        wanted = {rid: s.last_id for rid, s in self.series.items()}

        def fetch() -> dict[int, list[MetricRow]]:
            return {rid: self.store.metrics(rid, after_id=after) for rid, after in wanted.items()}

        if self.submit is None:
            self._received(fetch())
        else:
            self.fetching = True
            self.submit(fetch, self._received, lambda _: setattr(self, "fetching", False))

    def _received(self, rows: dict[int, list[MetricRow]]) -> None:
        self.fetching = False
        added = False
        for rid, new in rows.items():
            if rid in self.series and new and new[0][0] > self.series[rid].last_id:
                self.series[rid].extend(new)
                added = True
        self._sync_keys()
        self.redraw()
        if added:
            self.points_added.emit()

    def point_count(self, run_id: int, key: str) -> int:
        return len(self.series[run_id].table(key)) if run_id in self.series else 0

    # ------------------------------------------------------------------ plots
    def _sync_keys(self) -> None:
        keys = sorted({k for s in self.series.values() for k in s.chunks})
        shown = [self.keys.item(i).text() for i in range(self.keys.count())]
        if keys == shown:
            return
        default = {"train/loss"} | {config_class(m).key_metric for m in self.methods.values()}
        ticked = set(self.ticked_keys())
        self.keys.blockSignals(True)
        self.keys.clear()
        for key in keys:  # keep the user's ticks; tick new keys that are shown by default
            item = QListWidgetItem(key)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            wanted = key in ticked or key not in shown and key in default
            item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)
            self.keys.addItem(item)
        self.keys.blockSignals(False)
        self.rebuild_plots()

    def ticked_keys(self) -> list[str]:
        return [self.keys.item(i).text() for i in range(self.keys.count())
                if self.keys.item(i).checkState() == Qt.CheckState.Checked]

    def rebuild_plots(self) -> None:
        self.canvas.clear()
        self.plots, self.curves = {}, {}
        for i, key in enumerate(self.ticked_keys()):
            plot = self.canvas.addPlot(row=i // 2, col=i % 2, title=key)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.addLegend(offset=(-6, 6), labelTextSize="8pt")
            self.plots[key] = plot
        self._apply_follow()
        self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        """setData on the curves whose data or display settings changed."""
        alpha = self.smooth.value() / 100
        self.smooth_label.setText(f"smoothing {alpha:.2f}")
        x_col = X_AXES[self.x_axis.currentText()]
        settings = (alpha, x_col, self.log_y.isChecked())
        for key, plot in self.plots.items():
            if getattr(plot, "shown_settings", None) != settings:  # axis changes re-process every curve
                plot.setLogMode(y=self.log_y.isChecked())
                plot.setLabel("bottom", self.x_axis.currentText())
                plot.shown_settings = settings
            for i, (rid, series) in enumerate(self.series.items()):
                table = series.table(key)
                if not len(table):
                    continue
                state = (series.version, settings)
                item, seen = self.curves.get((key, rid), (None, None))
                if item is not None and seen == state and not force:
                    continue
                x = np.ascontiguousarray(table[:, x_col]) - (series.start_time() if x_col == 2 else 0.0)
                y = ema(np.ascontiguousarray(table[:, 3]), alpha)
                if item is None:
                    item = plot.plot(x, y, pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=1),
                                     name=self.names.get(rid, str(rid)))
                else:
                    item.setData(x, y)
                self.curves[(key, rid)] = (item, state)

    def _apply_follow(self) -> None:
        for plot in self.plots.values():
            if self.follow.isChecked():
                plot.enableAutoRange()
            else:
                plot.disableAutoRange()

    def _hover(self, pos: QPointF) -> None:
        for key, plot in self.plots.items():
            if not plot.sceneBoundingRect().contains(pos):
                continue
            x = plot.vb.mapSceneToView(pos).x()
            parts = []
            for (k, rid), (item, _) in self.curves.items():
                xs, ys = item.getOriginalDataset()
                if k != key or xs is None or not len(xs):
                    continue
                j = int(np.clip(np.searchsorted(xs, x), 0, len(xs) - 1))
                parts.append(f"{self.names.get(rid, rid)}: {ys[j]:.4g} @ {xs[j]:g}")
            self.readout.setText(f"{key} — " + " · ".join(parts) if parts else " ")
            return

    # ----------------------------------------------------------------- export
    def export_png(self, path: str | None = None) -> str | None:
        path = path or QFileDialog.getSaveFileName(self, "Save plots as PNG", "curves.png", "PNG (*.png)")[0]
        if path:
            self.canvas.grab().save(path)
        return path or None

    def export_csv(self, path: str | None = None) -> str | None:
        path = path or QFileDialog.getSaveFileName(self, "Save metrics as CSV", "metrics.csv", "CSV (*.csv)")[0]
        if not path:
            return None
        with open(path, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["run", "name", "key", "step", "epoch", "wall_time", "value"])
            for rid, series in self.series.items():
                for key in sorted(series.chunks):
                    for step, epoch, wall, value in series.table(key):
                        out.writerow([rid, self.names.get(rid, ""), key, int(step), epoch, wall, repr(value)])
        return path

    def state(self) -> dict[str, Any]:
        return {"x": self.x_axis.currentText(), "log_y": self.log_y.isChecked(), "smooth": self.smooth.value()}

    def restore(self, state: dict[str, Any]) -> None:
        self.x_axis.setCurrentText(state.get("x", "step"))
        self.log_y.setChecked(str(state.get("log_y", "false")).lower() == "true")
        self.smooth.setValue(int(state.get("smooth", 0)))
