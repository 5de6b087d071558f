"""The grouping half of the curves view (a part of `CurvesView`): the shown runs grouped as its
"group" box says (`workbench.ui.groups`), the legend by group, and each group drawn on a plot as its
runs' mean over a band (sample sd, or min to max) filled between two faint edges."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg

from workbench.ui import groups
from workbench.ui.series import ema
from workbench.ui.theme import PALETTE, UNLISTED

if TYPE_CHECKING:
    from workbench.ui.series import RunSeries

BAND_ALPHA = 55  # of 255: a group's band
BANDS = {"sd band": "sd", "min–max band": "minmax"}
# Points drawn per pixel of width by peak downsampling: pyqtgraph's default, 5, drew 10 runs x
# 100k points in 36 ms, 2 in 24 ms (bench/gui_plot.py), and min and max of every pixel are kept.
SAMPLES_PER_PIXEL = 2.0


def line(plot: pg.PlotItem, x: np.ndarray, y: np.ndarray, **style: object) -> pg.PlotDataItem:
    """A curve on `plot`, downsampled to `SAMPLES_PER_PIXEL` (a knob pyqtgraph has no setter for).
    Pens wider than 1 px multiplied the paint's time by 3 (they leave Qt's fast cosmetic path),
    so only a group's few mean curves are drawn wider."""
    item = plot.plot(x, y, **style)
    item.opts["autoDownsampleFactor"] = SAMPLES_PER_PIXEL
    return item


class GroupedCurves:
    """Needs the view's `runs`, `series`, `names`, its group controls, legend and plots."""

    groups: dict[str, list[int]]
    bands: dict[tuple[str, str], tuple[pg.PlotDataItem, pg.PlotDataItem, pg.PlotDataItem, tuple]]
    series: dict[int, RunSeries]

    def regroup(self, refetch: bool = False) -> None:
        """Group the runs as `group_by` says, and redraw every plot."""
        by = self.group_by.currentText()
        self.groups = groups.group_runs(self.runs, [by]) if by != groups.NONE else {}
        self.band_kind.setEnabled(bool(self.groups))
        self.show_members.setEnabled(bool(self.groups))
        entries = ([(self.group_colour(label), f"{label} ({len(ids)} run{'s' if len(ids) > 1 else ''})")
                    for label, ids in self.groups.items()] if self.groups else
                   [(self.colour(rid), name) for rid, name in self.names.items()])
        self.legend.setText("&nbsp;&nbsp; ".join(
            f"<span style='color:{colour}; font-size: 14px;'>&#9632;</span>&nbsp;{html.escape(name)}"
            for colour, name in entries))
        self.legend.setVisible(self.show_legend.isChecked() and bool(self.series))
        self.rebuild_plots()
        if refetch:
            self.refresh()
        self.regrouped.emit()

    def colour(self, run_id: int) -> str:
        """A run's colour: its group's when grouped, else by its place among the runs shown, the
        same in every plot."""
        for label, ids in self.groups.items():
            if run_id in ids:
                return self.group_colour(label)
        return PALETTE[list(self.series).index(run_id) % len(PALETTE)] if run_id in self.series else UNLISTED

    def group_colour(self, label: str) -> str:
        return PALETTE[list(self.groups).index(label) % len(PALETTE)]

    def _band(self, title: str, key: str, plot: pg.PlotItem, label: str, ids: list[int], settings: tuple,
              force: bool) -> None:
        """A group's mean curve and band on one plot, made on first use, redrawn when its data change."""
        kind = BANDS[self.band_kind.currentText()]
        state = (tuple(self.series[r].version for r in ids), settings, kind)
        drawn = self.bands.get((title, label))
        if not ids or drawn is not None and drawn[3] == state and not force:
            return
        tables = [self.series[r].table(key) for r in ids]
        steps, mean, low, high = groups.band(tables, kind)
        if not len(steps):
            return
        alpha, x_col = settings[0], settings[1]
        first = self.series[ids[0]]
        x = steps if x_col == 0 else np.interp(steps, tables[0][:, 0], first.x_values(tables[0], x_col))
        colour = self.group_colour(label)
        if drawn is None:
            edge = pg.mkColor(colour)
            edge.setAlpha(BAND_ALPHA)
            low_item = line(plot, x, ema(low, alpha), pen=pg.mkPen(edge, width=1))
            high_item = line(plot, x, ema(high, alpha), pen=pg.mkPen(edge, width=1))
            fill = pg.FillBetweenItem(low_item, high_item, brush=pg.mkBrush(edge))
            fill.setZValue(-2)
            plot.addItem(fill)
            mean_item = line(plot, x, ema(mean, alpha), pen=pg.mkPen(colour, width=2.5))
        else:
            mean_item, low_item, high_item, _ = drawn
            for item, values in ((mean_item, mean), (low_item, low), (high_item, high)):
                item.setData(x, ema(values, alpha))
        self.bands[(title, label)] = (mean_item, low_item, high_item, state)
