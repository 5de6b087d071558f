"""`CurvesView`: live metric curves of the selected runs, one colour per run.

New rows are fetched incrementally (only ids above the last one seen) into growing numpy
buffers, and each curve is redrawn once per poll with `setData`, never once per point.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.store import Store

PALETTE = ("#2f7fd8", "#d64545", "#2e9d57", "#d9862b", "#8d5bd6", "#1aa3a3", "#c2487f", "#7a7a7a")


class _Series:
    """Growing (step, value) buffers of every metric of one run."""

    def __init__(self) -> None:
        self.last_id = 0
        self.points: dict[str, list[np.ndarray]] = {}

    def extend(self, rows: list[tuple]) -> None:
        if not rows:
            return
        self.last_id = rows[-1][0]
        by_key: dict[str, list[tuple[int, float]]] = {}
        for _, step, _, key, value, _ in rows:
            by_key.setdefault(key, []).append((step, value))
        for key, pts in by_key.items():
            self.points.setdefault(key, []).append(np.asarray(pts, dtype=float))

    def xy(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        chunks = self.points.get(key)
        if not chunks:
            return np.empty(0), np.empty(0)
        if len(chunks) > 1:
            chunks[:] = [np.concatenate(chunks)]
        return chunks[0][:, 0], chunks[0][:, 1]


class CurvesView(QWidget):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.series: dict[int, _Series] = {}
        self.names: dict[int, str] = {}
        self.metric = QComboBox()
        self.metric.setMinimumWidth(200)
        self.metric.currentTextChanged.connect(lambda _: self.redraw())
        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step")
        self.plot.setDownsampling(mode="peak")
        self.plot.setClipToView(True)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # show 0.4, not 400 (x0.001)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        top = QHBoxLayout()
        top.addWidget(QLabel("Metric"))
        top.addWidget(self.metric)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.plot)

    def set_runs(self, runs: dict[int, str]) -> None:
        """Show these runs (id -> label); keeps buffers of runs already shown."""
        self.series = {rid: self.series.get(rid) or _Series() for rid in runs}
        self.names = dict(runs)
        self.refresh()

    def refresh(self) -> None:
        """Fetch rows newer than what each run's buffer holds, then redraw."""
        for run_id, series in self.series.items():
            series.extend(self.store.metrics(run_id, after_id=series.last_id))
        keys = sorted({k for s in self.series.values() for k in s.points})
        if keys != [self.metric.itemText(i) for i in range(self.metric.count())]:
            current = self.metric.currentText() or "train/loss"
            self.metric.blockSignals(True)
            self.metric.clear()
            self.metric.addItems(keys)
            self.metric.setCurrentText(current if current in keys else (keys[0] if keys else ""))
            self.metric.blockSignals(False)
        self.redraw()

    def redraw(self) -> None:
        key = self.metric.currentText()
        self.plot.clear()
        self.legend.clear()
        self.plot.setLabel("left", key)
        for i, (run_id, series) in enumerate(self.series.items()):
            x, y = series.xy(key)
            if len(x):
                self.plot.plot(x, y, pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=2),
                               name=self.names.get(run_id, str(run_id)))

    def point_count(self, run_id: int, key: str) -> int:
        return len(self.series[run_id].xy(key)[0]) if run_id in self.series else 0
