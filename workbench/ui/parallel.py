"""`ParallelView`: parallel coordinates of runs, as sweep tools draw them: one vertical axis per
config field whose value differs between the runs (text values as categories), then a metric's
axis; one line per run, coloured by that metric (viridis; grey without it). Each axis carries a
range to drag: runs whose lines pass through every range are brushed, the others fade, and the
brushed runs are offered to the run table as its selection (`brushed`)."""

from __future__ import annotations

import html
import json
import math
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench import fmt
from workbench.methods import config_class
from workbench.store import Run
from workbench.ui import groups, theme

WHOLE = (-0.1, 1.1)  # an axis's range before it is dragged: no condition
MAX_RUNS = 2000  # lines drawn at most (the newest); more say so
MAX_SETTINGS = 12  # setting axes at most: runs of several methods differ in ~45 fields, whose titles overprint
TITLE_Y = WHOLE[1] + 0.03  # axis titles sit above the ranges' top edge, which would strike through them
AXES = ("val/", "val_ema/")  # the results an axis can show
FADED = (150, 150, 150, 40)
MISSING_Y = -0.05  # where a line crosses an axis whose value it lacks (a field of another method, no metric)
HINT = "Parallel coordinates of the runs in the table: drag an axis's range to select the runs that pass through it."


def axis_values(runs: Sequence[Run], field: str) -> tuple[np.ndarray, list[str] | None]:
    """A field's values as numbers (NaN where missing), and the category names when they are text
    (a category's number is its place in the sorted names)."""
    raw = [r.method if field == "method" else r.config.get(field) for r in runs]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) or v is None for v in raw):
        return np.array([math.nan if v is None else float(v) for v in raw]), None
    names = sorted({json.dumps(v) if not isinstance(v, str) else v for v in raw if v is not None})
    index = {name: i for i, name in enumerate(names)}
    return np.array([math.nan if v is None else float(index[v if isinstance(v, str) else json.dumps(v)])
                     for v in raw]), names


def shown_fields(runs: Sequence[Run], limit: int = MAX_SETTINGS) -> tuple[list[str], int]:
    """The settings given an axis, and how many differ in all: every differing field when they fit,
    else `method`, then the fields whose values differ between the runs that have them before those
    that only some runs have, each the most runs have first (a sweep's own fields: every run has
    them); in the order `groups.differing` gives them."""
    fields = groups.differing(runs)
    if len(fields) <= limit:
        return fields, len(fields)

    def weight(field: str) -> tuple[bool, bool, int]:
        present = [r.method if field == "method" else r.config[field] for r in runs
                   if field == "method" or field in r.config]
        return field == "method", len({json.dumps(v, sort_keys=True) for v in present}) > 1, len(present)

    kept = set(sorted(fields, key=weight, reverse=True)[:limit])
    return [f for f in fields if f in kept], len(fields)


def scaled(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Values mapped onto [0, 1] (a constant axis at 0.5), NaN (missing) left NaN, with the range
    they came from."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.full(len(values), math.nan), math.nan, math.nan
    low, high = float(finite.min()), float(finite.max())
    if high == low:  # one value: at mid-height, and a run without it not drawn there as if it had it
        return np.where(np.isfinite(values), 0.5, math.nan), low, high
    return (values - low) / (high - low), low, high


class ParallelView(QWidget):
    brushed = Signal(list)  # run ids whose lines pass through every axis's range

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []
        self.drawn: list[tuple] = []  # what the lines show of each run: ids, configs, validation results
        self.fields: list[str] = []
        self.matrix = np.empty((0, 0))  # [runs, axes] in [0, 1]; NaN where a run lacks the value
        self.ranges: list[pg.LinearRegionItem] = []
        self.lines: dict[int, pg.PlotDataItem] = {}
        self.names: list[str] = []  # each axis's field or metric, to keep its range over a redraw
        self.chosen: list[int] | None = None  # the runs last offered as the selection
        self.metric_box = QComboBox()
        self.metric_box.currentTextChanged.connect(self._metric_chosen)
        self.wanted = ""  # the metric last chosen: shown again when runs that have it come back
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.canvas = pg.GraphicsLayoutWidget()
        self.plot = self.canvas.addPlot()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        top = QHBoxLayout()
        top.addWidget(QLabel("metric"))
        top.addWidget(self.metric_box)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.hint)
        layout.addWidget(self.canvas, 1)
        theme.follow(self, self._apply_theme)

    def _apply_theme(self) -> None:
        self.canvas.setBackground(theme.background(self))
        if self.runs:
            self._draw()  # the axes and their labels are drawn in the palette's text colour

    def show_runs(self, runs: Sequence[Run]) -> None:
        """Draw these runs (the newest `MAX_RUNS`); redrawn only when they or their validation results
        changed (not at each of a training run's logged steps: every poll redrew every line)."""
        runs = list(runs)[-MAX_RUNS:]
        if len(runs) == len(self.runs) and all(a is b for a, b in zip(runs, self.runs)):
            return  # the poll kept every run's row as it was (a run that moved is a new Run)
        was = {r.id: (r, line) for r, line in zip(self.runs, self.drawn)}  # a run kept as it was: its line too
        drawn = [was[r.id][1] if r.id in was and was[r.id][0] is r else
                 (r.id, r.config, {k: v for k, v in r.results.items() if k.startswith(AXES)}) for r in runs]
        same, self.runs, self.drawn = drawn == self.drawn, runs, drawn
        if same:
            return
        keys = sorted({k for r in runs for k in r.results if k.startswith(AXES)})
        wanted = self.wanted or next((config_class(r.method).key_metric for r in runs), "")
        self.metric_box.blockSignals(True)
        self.metric_box.clear()
        self.metric_box.addItems(keys)
        self.metric_box.setCurrentText(wanted if wanted in keys else (keys[0] if keys else ""))
        self.metric_box.blockSignals(False)
        self._draw()

    def _metric_chosen(self, metric: str) -> None:
        self.wanted = metric
        self._draw()

    def _draw(self) -> None:
        """Draw the lines and axes; an axis that stays keeps the range dragged on it."""
        kept = {name: brush.getRegion() for name, brush in zip(self.names, self.ranges)}
        self.plot.clear()
        self.ranges, self.lines = [], {}
        runs, metric = self.runs, self.metric_box.currentText()
        self.fields, differ = shown_fields(runs)
        columns, labels = [], []
        for field in self.fields:
            values, names = axis_values(runs, field)
            column, low, high = scaled(values)
            columns.append(column)
            labels.append((field, names, low, high))
        score = np.array([float(r.results.get(metric, math.nan)) for r in runs]) if metric else np.full(len(runs),
                                                                                                      math.nan)
        if metric:
            column, low, high = scaled(score)
            columns.append(column)
            labels.append((metric, None, low, high))
        self.matrix = np.stack(columns, axis=1) if columns and runs else np.empty((len(runs), 0))
        self.hint.setText(HINT + (f" {len(self.fields)} of the {differ} settings that differ are shown (those the "
                                  f"most runs have): filter the table to one method or study for the rest."
                                  if differ > len(self.fields) else "") if self.matrix.shape[1] >= 2 else
                          "Parallel coordinates need runs whose configs differ, and a metric: select a sweep's runs "
                          "in the table (or clear the filter).")
        self.names = [name for name, *_ in labels]
        if self.matrix.shape[1] == 0:
            return
        colours = _colours(score)
        ink = theme.foreground(self)
        stagger = 0.08 if len(labels) > 6 else 0.0  # many axes: every other title a line higher, not overlapping
        xs = np.arange(self.matrix.shape[1], dtype=float)
        for run, row, colour in zip(runs, self.matrix, colours):
            line = self.plot.plot(xs, np.nan_to_num(row, nan=MISSING_Y), pen=pg.mkPen(colour, width=1.5))
            line.setToolTip(f"{run.id} · {run.name}")
            self.lines[run.id] = line
        for i, (name, names, low, high) in enumerate(labels):
            setting = i < len(self.fields)  # the last axis is the metric's
            self.plot.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen(ink)), ignoreBounds=True)
            title = pg.TextItem(html=f"<b>{html.escape(name)}</b>", anchor=(0.5, 1), color=ink)
            title.setPos(i, TITLE_Y + stagger * (i % 2))
            self.plot.addItem(title)
            unset = [(MISSING_Y, "not set")] if np.isnan(self.matrix[:, i]).any() else []  # the lines below it
            for y, text in _ticks(low, high, names, setting) + unset:
                tick = pg.TextItem(text, anchor=(0, 0.5), color=ink)
                tick.setPos(i + 0.03, y)
                self.plot.addItem(tick)
            brush = pg.LinearRegionItem(values=kept.get(name, WHOLE), orientation="horizontal",
                                        brush=pg.mkBrush(80, 120, 200, 25), swapMode="sort")
            brush.setBounds(WHOLE)
            brush.setZValue(10)
            brush.sigRegionChangeFinished.connect(lambda *_: self._brush())
            self.plot.addItem(brush)
            self.ranges.append(brush)
        # room for the outer axes' titles, centred on them, and for the last axis's labels, right of it
        x_range = (-0.5, len(labels) - 0.2)
        self.plot.setXRange(*x_range, padding=0)
        self.plot.setYRange(-0.15, TITLE_Y + 0.1 + stagger, padding=0)
        for i, brush in enumerate(self.ranges):
            _fit_to_axis(brush, i, x_range)
        if any(_narrowed(kept[name]) for name in self.names if name in kept):
            self._brush()  # the kept ranges over the new lines (a run that now passes is selected too)

    def set_range(self, axis: int, low: float, high: float) -> None:
        """Brush an axis to [low, high] (in its 0-1 scale), as dragging its range does."""
        self.ranges[axis].setRegion((low, high))
        self._brush()

    def inside(self) -> list[int]:
        """Ids of the runs whose lines pass through every axis's range."""
        keep = np.ones(len(self.runs), dtype=bool)
        for axis, brush in enumerate(self.ranges):
            low, high = brush.getRegion()
            if not _narrowed((low, high)):
                continue  # the whole axis: no condition
            column = self.matrix[:, axis]
            keep &= np.isfinite(column) & (column >= low) & (column <= high)
        return [r.id for r, k in zip(self.runs, keep) if k]

    def _brush(self) -> None:
        """Fade the lines outside the ranges; offer the others as the selection when they changed
        (a redraw that brushes the same runs leaves a selection made since in the table alone)."""
        chosen = sorted(self.inside())
        for rid, line in self.lines.items():
            line.setOpacity(1.0 if rid in chosen else 0.15)
        if chosen != self.chosen:
            self.chosen = chosen
            self.brushed.emit(chosen)


def _narrowed(region: tuple[float, float]) -> bool:
    return region[0] > WHOLE[0] or region[1] < WHOLE[1]


def _colours(score: np.ndarray) -> list:
    """Viridis by the metric (higher or lower alike: the colour bar is the value), grey where missing."""
    scaled_score, _, _ = scaled(score)
    cmap = pg.colormap.get("viridis")
    return [pg.mkColor(FADED) if not math.isfinite(s) else cmap.map(float(v), mode="qcolor")
            for s, v in zip(score, scaled_score)]


def _ticks(low: float, high: float, names: list[str] | None, setting: bool) -> list[tuple[float, str]]:
    """An axis's labels at their heights: every category's name (up to 12; else the ends'), or the
    ends' values: a setting's as given (a whole one as "64", not "64.0000"), a metric's to four places."""
    if names is not None:
        if len(names) == 1:
            return [(0.5, names[0])]  # a constant axis sits at 0.5
        shown = range(len(names)) if len(names) <= 12 else (0, len(names) - 1)
        return [(i / (len(names) - 1), names[i]) for i in shown]

    def text(value: float) -> str:
        if math.isnan(value):
            return ""
        return fmt.setting(value) if setting else fmt.number(value)

    return [(0.5, text(low))] if low == high else [(0.0, text(low)), (1.0, text(high))]


def _fit_to_axis(brush: pg.LinearRegionItem, axis: int, x_range: tuple[float, float], width: float = 0.08) -> None:
    """Keep a horizontal range's band narrow, around its own axis (a LinearRegionItem spans the whole
    view's width otherwise): it is drawn, and caught by the mouse, only near x = axis."""
    x0, x1 = x_range
    span = x1 - x0
    brush.setSpan(max(0.0, (axis - width - x0) / span), min(1.0, (axis + width - x0) / span))
