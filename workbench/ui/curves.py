"""`CurvesView`: live metric curves of the selected runs, one colour per run.

Each ticked metric gets its own plot; every selected run is a curve on it. A metric whose
scale depends on the method (a loss: MAE's pixel MSE, a classifier's cross-entropy) gets one
plot per method when the selected runs mix methods, never one shared axis. New rows are
fetched off the GUI thread (only ids above the last one seen) into growing numpy buffers, and
each curve is redrawn once per poll with `setData`, never once per point; pyqtgraph's peak
downsampling and clipping keep 10 runs x 100k points smooth. The x axis is step, epoch or
wall time; the y axis linear or log; with EMA smoothing the raw curve stays faint behind
(TensorBoard's convention); a one-point series is a marker. A crosshair with each run's value
at the cursor helps reading; the legend sits above the plots, so it never covers a line.
Runs can be grouped (by a config field, tags, or all but the seed: `workbench.ui.curve_groups`): each
group is then its members' mean with a band (sample sd, or min to max), the members faint on
demand. Plots export as PNG, the data as CSV.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.methods import config_class
from workbench.store import Run, Store
from workbench.ui import groups, theme
from workbench.ui.curve_groups import BANDS, GroupedCurves, line
from workbench.ui.metric_keys import MetricKeys
from workbench.ui.plot_items import Crosshair, metric_plot, read_at
from workbench.ui.series import RunSeries, write_csv

X_AXES = {"step": 0, "epoch": 1, "wall time (s)": 2}
RAW_ALPHA = 60  # of 255: the unsmoothed curve behind a smoothed one
PICK_RUNS = "Select runs in the table (Ctrl or Shift for several) to see their curves."


def method_specific(key: str) -> bool:
    """Whether a metric's scale depends on the method (losses do; accuracies do not)."""
    return "loss" in key


class CurvesView(GroupedCurves, QWidget):
    points_added = Signal()
    message = Signal(str)  # "saved …": the main window shows it in its status bar
    regrouped = Signal()  # the grouping changed: the compare table follows it

    def __init__(self, store: Store, submit: Callable[..., None] | None = None) -> None:
        super().__init__()
        self.store = store
        self.submit = submit  # runs a fetch off the GUI thread (Tasks.submit); None: fetch inline
        self.series: dict[int, RunSeries] = {}
        self.names: dict[int, str] = {}
        self.methods: dict[int, str] = {}
        self.fetching = False
        self.plots: dict[str, pg.PlotItem] = {}  # panel title -> plot
        self.panels: list[tuple[str, str, tuple[int, ...]]] = []  # (title, metric, run ids) per plot
        self.curves: dict[tuple[str, int], tuple[pg.PlotDataItem, tuple]] = {}  # (title, run) -> curve, state
        self.raw: dict[tuple[str, int], pg.PlotDataItem] = {}  # faint unsmoothed curves
        self.crosshairs: dict[str, Crosshair] = {}
        # every plot made (title -> plot, crosshair): one per metric (and method) seen, reused
        self.made: dict[str, tuple[pg.PlotItem, Crosshair]] = {}
        self.runs: list[Run] = []  # the shown runs' rows: what grouping reads
        self.shown: tuple = ()  # what set_runs was last given, as far as the plots depend on it
        self.groups: dict[str, list[int]] = {}  # label -> run ids; {} when not grouped
        self.bands: dict[tuple[str, str], tuple[pg.PlotDataItem, pg.PlotDataItem, pg.PlotDataItem, tuple]] = {}

        self.keys = MetricKeys()
        self.keys.ticks_changed.connect(self.rebuild_plots)
        self.x_axis = QComboBox()
        self.x_axis.addItems(list(X_AXES))
        self.log_y = QCheckBox("log y")
        self.smooth = QSlider(Qt.Orientation.Horizontal)
        self.smooth.setRange(0, 99)
        self.smooth.setFixedWidth(120)
        self.smooth_label = QLabel("smoothing 0.00")
        self.follow, self.show_legend = QCheckBox("follow"), QCheckBox("legend")
        for box in (self.follow, self.show_legend):
            box.setChecked(True)
        self.group_by = QComboBox()
        self.group_by.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.group_by.setMinimumContentsLength(12)
        self.group_by.addItem(groups.NONE)
        self.group_by.setToolTip("group the runs: each group's mean with a band; 'all but seed' groups a sweep's "
                                 "repeats")
        self.group_by.currentTextChanged.connect(lambda *_: self.regroup())
        self.band_kind = QComboBox()
        self.band_kind.addItems(list(BANDS))
        self.show_members = QCheckBox("members")
        self.show_members.setToolTip("each group's runs, faint, behind its mean")
        for control in (self.band_kind.currentTextChanged, self.show_members.toggled, self.x_axis.currentTextChanged,
                        self.log_y.toggled, self.smooth.valueChanged):
            control.connect(lambda *_: self.redraw(force=True))
        self.follow.toggled.connect(self._apply_follow)
        self.show_legend.toggled.connect(lambda on: self.legend.setVisible(on and bool(self.series)))
        png = QPushButton("Save PNG…")
        png.clicked.connect(lambda: self.export_png())
        csv_button = QPushButton("Save CSV…")
        csv_button.clicked.connect(lambda: self.export_csv())
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel()
        self.note.setWordWrap(True)
        theme.colour_text(self.note, "note")
        self.readout = QLabel(" ")
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.canvas = pg.GraphicsLayoutWidget()
        theme.follow(self, lambda: self.canvas.setBackground(theme.background(self)))
        # at most 30 read-outs a second: each takes a few ms and relays the label out, and a mouse moves 100+ times
        self.hovering = pg.SignalProxy(self.canvas.scene().sigMouseMoved, rateLimit=30, slot=lambda a: self._hover(a[0]))
        controls, grouping = QHBoxLayout(), QHBoxLayout()  # two rows: the window fits a 1366-px screen
        for w in (QLabel("x"), self.x_axis, self.log_y, self.smooth_label, self.smooth, self.follow, self.show_legend):
            controls.addWidget(w)
        controls.addStretch(1)
        for w in (QLabel("group"), self.group_by, self.band_kind, self.show_members):
            grouping.addWidget(w)
        grouping.addStretch(1)
        grouping.addWidget(png)
        grouping.addWidget(csv_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(controls)
        right_layout.addLayout(grouping)
        right_layout.addWidget(self.legend)
        right_layout.addWidget(self.note)
        right_layout.addWidget(self.canvas, 1)
        right_layout.addWidget(self.readout)
        splitter = QSplitter()
        splitter.addWidget(self.keys)
        splitter.addWidget(right)
        splitter.setSizes([185, 800])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.note.setText(PICK_RUNS)
        self.legend.hide()

    # ------------------------------------------------------------------- data
    def set_runs(self, runs: dict[int, tuple[str, str]], rows: Sequence[Run] = ()) -> None:
        """Show these runs (id -> (label, method)); buffers of runs already shown are kept. `rows`:
        the runs themselves, for grouping. The same runs again (a tab switch) keep the plots (~70 ms)."""
        shown = (list(runs.items()), [(r.id, r.tags, r.config) for r in rows if r.id in runs])
        if shown == self.shown:
            self.refresh()
            return
        self.shown = shown
        self.series = {rid: self.series.get(rid) or RunSeries() for rid in runs}
        self.names = {rid: label for rid, (label, _) in runs.items()}
        self.methods = {rid: method for rid, (_, method) in runs.items()}
        self.runs = [r for r in rows if r.id in runs]
        self.note.setText("" if runs else PICK_RUNS)
        self.note.setVisible(not runs)
        self._sync_keys()  # regroup, below, builds the plots
        wanted = self.group_by.currentText()
        choices = groups.options(self.runs) if len(self.runs) > 1 else [groups.NONE]
        if choices != [self.group_by.itemText(i) for i in range(self.group_by.count())]:
            self.group_by.blockSignals(True)
            self.group_by.clear()
            self.group_by.addItems(choices)
            self.group_by.setCurrentText(wanted if wanted in choices else groups.NONE)
            self.group_by.blockSignals(False)
        self.regroup(refetch=True)

    def refresh(self) -> None:
        """Fetch rows newer than each buffer holds (in the background when possible), then redraw."""
        if self.fetching or not self.series:
            self.redraw()
            return
        wanted = {rid: s.last_id for rid, s in self.series.items()}

        def fetch() -> dict[int, tuple[int, int, dict[str, np.ndarray]]]:
            return {rid: (after, *self.store.metric_columns(rid, after_id=after)) for rid, after in wanted.items()}

        if self.submit is None:
            self._received(fetch())
        else:
            self.fetching = True
            self.submit(fetch, self._received, lambda _: setattr(self, "fetching", False))

    def _received(self, read: dict[int, tuple[int, int, dict[str, np.ndarray]]]) -> None:
        """Rows read after (the id a buffer held then, the newest id, key -> [n, 4] columns); a read
        that a buffer has since outgrown is dropped, not appended twice."""
        self.fetching = False
        added = False
        for rid, (after, last_id, columns) in read.items():
            if rid in self.series and columns and after == self.series[rid].last_id:
                self.series[rid].extend(last_id, columns)
                added = True
        self._sync_keys()
        if self._panels() != self.panels:  # new metrics ticked, a method's first loss value (a plot of its own)
            self.rebuild_plots()
        self.redraw()
        if added:
            self.points_added.emit()

    def point_count(self, run_id: int, key: str) -> int:
        return len(self.series[run_id].table(key)) if run_id in self.series else 0

    # ------------------------------------------------------------------ plots
    def _sync_keys(self) -> None:
        """List the shown runs' metrics (the plots follow in the caller: once per change, not per step)."""
        default = {"train/loss"} | {config_class(m).key_metric for m in self.methods.values()}
        self.keys.show_keys(sorted({k for s in self.series.values() for k in s.keys}), default)

    def _panels(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(title, metric, run ids) of each plot: a loss of runs whose methods measure their losses
        differently gets one plot per kind of loss (a ViT's and a Swin's cross-entropy share one)."""
        panels = []
        kinds: dict[str, list[str]] = {}  # the methods shown, by what their loss measures
        for method in sorted(set(self.methods.values())):
            kinds.setdefault(config_class(method).loss, []).append(method)
        for key in self.keys.ticked():
            if len(kinds) > 1 and method_specific(key):
                for methods in kinds.values():
                    rids = tuple(r for r in self.series if self.methods[r] in methods and key in self.series[r].keys)
                    if rids:
                        panels.append((f"{key} · {', '.join(methods)}", key, rids))
            else:
                panels.append((key, key, tuple(self.series)))
        return panels

    def rebuild_plots(self) -> None:
        """Lay out a plot per panel. A title's plot is made once and kept for when it is shown
        again, emptied of its curves (another selection of runs with the same metrics: making a
        plot's axes costs ~7 ms, and a selection made a dozen twice, as its runs' metrics arrived)."""
        self.canvas.clear()
        self.plots, self.curves, self.raw, self.crosshairs, self.bands = {}, {}, {}, {}, {}
        self.panels = self._panels()
        for i, (title, _, _) in enumerate(self.panels):
            if title not in self.made:
                self.made[title] = metric_plot(title)
            plot, crosshair = self.made[title]
            for item in plot.listDataItems():
                if item not in crosshair:
                    plot.removeItem(item)
            self.canvas.addItem(plot, row=i // 2, col=i % 2)
            self.plots[title], self.crosshairs[title] = plot, crosshair
        split = sorted({key for title, key, _ in self.panels if title != key})
        if self.series:
            self.note.setText(f"{', '.join(split)}: one plot per kind of loss, as each has its own scale"
                              if split else "")
            self.note.setVisible(bool(split))
        self._apply_follow()
        self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        """setData on the curves whose data or display settings changed."""
        alpha = self.smooth.value() / 100
        self.smooth_label.setText(f"smoothing {alpha:.2f}")
        x_col = X_AXES[self.x_axis.currentText()]
        grouped, members = bool(self.groups), self.show_members.isChecked()
        settings = (alpha, x_col, self.log_y.isChecked(), grouped and members)
        for title, key, rids in self.panels:
            plot = self.plots[title]
            if getattr(plot, "shown_settings", None) != settings:  # axis changes re-process every curve
                plot.setLogMode(y=self.log_y.isChecked())
                plot.setLabel("bottom", self.x_axis.currentText())
                plot.shown_settings = settings
            for rid in rids:
                series = self.series[rid]
                table = series.table(key)
                state = (series.version, settings)
                item, seen = self.curves.get((title, rid), (None, None))
                if item is not None:
                    item.setVisible(not grouped or members)
                if grouped and not members or not len(table) or item is not None and seen == state and not force:
                    continue
                x = series.x_values(table, x_col)
                raw = table[:, 3]
                colour = self.colour(rid)
                if grouped:  # a member: faint behind its group's mean
                    colour = pg.mkColor(colour)
                    colour.setAlpha(RAW_ALPHA * 2)
                marker = dict(symbol="o", symbolSize=7, symbolBrush=colour, symbolPen=None) if len(x) == 1 else \
                    dict(symbol=None)
                self._raw_curve(title, rid, plot, x, raw, colour, visible=alpha > 0 and len(x) > 1 and not grouped)
                pen = pg.mkPen(colour, width=1)
                if item is None:
                    item = line(plot, x, series.smoothed(key, alpha), pen=pen, **marker)
                else:
                    item.setData(x, series.smoothed(key, alpha), pen=pen, **marker)
                self.curves[(title, rid)] = (item, state)
            for label, ids in self.groups.items():
                self._band(title, key, plot, label, [r for r in ids if r in rids], settings, force)

    def _raw_curve(self, title: str, rid: int, plot: pg.PlotItem, x: np.ndarray, y: np.ndarray, colour: str,
                   visible: bool) -> None:
        """The unsmoothed values, faint, behind the smoothed curve (made on first use)."""
        raw = self.raw.get((title, rid))
        if raw is None and visible:
            faint = pg.mkColor(colour)
            faint.setAlpha(RAW_ALPHA)
            raw = self.raw[(title, rid)] = line(plot, x, y, pen=pg.mkPen(faint, width=1))
            raw.setZValue(-1)
        elif raw is not None and visible:
            raw.setData(x, y)
        if raw is not None:
            raw.setVisible(visible)

    def _apply_follow(self) -> None:
        for plot in self.plots.values():
            plot.enableAutoRange(enable=self.follow.isChecked())

    def _hover(self, pos: QPointF) -> None:
        """Crosshair at the cursor in the plot under it, each run's value there in the read-out."""
        for title, plot in self.plots.items():
            line, dots = self.crosshairs[title]
            inside = plot.sceneBoundingRect().contains(pos)
            line.setVisible(inside)
            dots.setVisible(inside)
            if not inside:
                continue
            x = plot.vb.mapSceneToView(pos).x()
            line.setPos(x)
            drawn = ([(item, self.group_colour(label), f"{label} (mean)")
                      for (t, label), (item, *_) in self.bands.items() if t == title] if self.groups else
                     [(item, self.colour(rid), self.names.get(rid, str(rid)))
                      for (t, rid), (item, _) in self.curves.items() if t == title])
            parts, spots = read_at(drawn, x, self.log_y.isChecked())
            dots.setData(spots)
            self.readout.setText(f"{title} — " + " · ".join(parts) if parts else " ")

    # ----------------------------------------------------------------- export
    def export_png(self, path: str | None = None) -> str | None:
        path = path or QFileDialog.getSaveFileName(self, "Save plots as PNG", "curves.png", "PNG (*.png)")[0]
        if path:
            saved = self.canvas.grab().save(path)
            self.message.emit(f"Saved the plots to {path}" if saved else f"Could not write {path}")
        return path or None

    def export_csv(self, path: str | None = None) -> str | None:
        path = path or QFileDialog.getSaveFileName(self, "Save metrics as CSV", "metrics.csv", "CSV (*.csv)")[0]
        if not path:
            return None
        try:
            write_csv(path, self.series, self.names)
        except OSError as exc:
            self.message.emit(f"Could not write {path}: {exc}")
            return None
        self.message.emit(f"Saved {len(self.series)} run(s)' metrics to {path}")
        return path

    def state(self) -> dict[str, Any]:
        return {"x": self.x_axis.currentText(), "log_y": self.log_y.isChecked(), "smooth": self.smooth.value(),
                "follow": self.follow.isChecked(), "legend": self.show_legend.isChecked(),
                "band": self.band_kind.currentText(), "members": self.show_members.isChecked(),
                "ticks": dict(self.keys.chosen)}

    def restore(self, state: dict[str, Any]) -> None:
        def flag(name: str, default: bool) -> bool:
            return str(state.get(name, default)).lower() == "true"

        self.x_axis.setCurrentText(state.get("x", "step"))
        self.log_y.setChecked(flag("log_y", False))
        self.smooth.setValue(int(state.get("smooth", 0)))
        self.follow.setChecked(flag("follow", True))
        self.show_legend.setChecked(flag("legend", True))
        self.band_kind.setCurrentText(state.get("band", "sd band"))
        self.show_members.setChecked(flag("members", False))
        self.keys.chosen = {str(k): str(v).lower() == "true" for k, v in dict(state.get("ticks") or {}).items()}
