"""The pyqtgraph items of the curves view: a metric's plot with its crosshair (made once per
metric and reused), and what the crosshair reads off the curves drawn at a cursor's x."""

from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

Crosshair = tuple[pg.InfiniteLine, pg.ScatterPlotItem]


def metric_plot(title: str) -> tuple[pg.PlotItem, Crosshair]:
    """A plot for one metric (peak downsampling, clipped to view, plain axis numbers) and its
    crosshair: the hover line and the dots on the curves under it, hidden until the cursor is over it."""
    plot = pg.PlotItem(title=title)
    plot.setDownsampling(auto=True, mode="peak")
    plot.setClipToView(True)
    plot.getAxis("left").enableAutoSIPrefix(False)
    line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#9a9a9a", style=Qt.PenStyle.DashLine))
    dots = pg.ScatterPlotItem(size=7, pen=pg.mkPen("w"))
    for item in (line, dots):
        item.setVisible(False)
        plot.addItem(item, ignoreBounds=True)
    return plot, (line, dots)


def read_at(drawn: Sequence[tuple[pg.PlotDataItem, str, str]], x: float,
            log: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """For each drawn (curve, colour, name): its value at the first point at or after `x`, as an
    HTML read-out part, and a dot there (none for a non-positive value on a log axis)."""
    parts, spots = [], []
    for item, colour, name in drawn:
        xs, ys = item.getOriginalDataset()  # as drawn (smoothed), before the log mapping
        if xs is None or not len(xs):
            continue
        j = int(np.clip(np.searchsorted(xs, x), 0, len(xs) - 1))
        y = float(ys[j])
        if not log or y > 0:
            spots.append({"pos": (xs[j], np.log10(y) if log else y), "brush": pg.mkBrush(colour)})
        parts.append(f"<span style='color:{colour}'>&#9632;</span> {html.escape(name)}: <b>{y:.4g}</b> @ {xs[j]:g}")
    return parts, spots
