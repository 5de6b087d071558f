"""`StudyChart`: a study's swept field against one result column (a line over numbers, points
over categories, a series per value of a second field, the mean of repeated seeds, reference
rows as dashed lines at their mean over seeds), with the best point, the paper's trend and the
verdicts on its claims beside it."""

from __future__ import annotations

import math
from typing import Any, Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench import fmt
from workbench.studies import Table, Verdict, point_values, reference_values
from workbench.ui import theme
from workbench.ui.verdict_panel import VerdictPanel


def log_spaced(values: Sequence[float]) -> bool:
    """Whether a swept field's values are spaced by a factor (lr 1e-4, 1e-3, 1e-2) rather than a
    step: three or more positive values whose logs are more evenly spaced than the values."""
    xs = sorted(set(values))
    if len(xs) < 3 or xs[0] <= 0:
        return False

    def unevenness(points: list[float]) -> float:
        gaps = [b - a for a, b in zip(points, points[1:])]
        return (max(gaps) - min(gaps)) / max(gaps)

    return unevenness([math.log(x) for x in xs]) < unevenness(xs)


class StudyChart(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.table_data: Table | None = None
        self.metric_box = QComboBox()
        self.metric_box.setToolTip("the result column the plot shows")
        self.metric_box.currentIndexChanged.connect(self._plot)
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        for side in ("bottom", "left"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)  # mask ratios stay 0.25, not 250 (x0.001)
        self.legend = self.plot.addLegend(offset=(10, 10))
        self.best = QLabel()
        self.best.setWordWrap(True)
        self.trend = QLabel()
        self.trend.setWordWrap(True)
        self.trend.setAlignment(Qt.AlignmentFlag.AlignTop)
        theme.follow(self, self._apply_theme)
        self.verdicts = VerdictPanel()
        side = QWidget()
        side.setFixedWidth(420)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("<b>This study</b>"))
        side_layout.addWidget(self.best)
        side_layout.addWidget(QLabel("<b>What the paper found</b>"))
        side_layout.addWidget(self.trend)
        side_layout.addWidget(self.verdicts, 1)
        side_layout.addStretch()  # takes the room of a hidden verdict panel: the text above stays together
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        metric_row = QHBoxLayout()
        metric_row.addWidget(QLabel("plot"))
        metric_row.addWidget(self.metric_box, 1)
        plot_layout.addLayout(metric_row)
        plot_layout.addWidget(self.plot, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(plot_box, 1)
        layout.addWidget(side)

    def show_table(self, table: Table | None, trend: str, verdicts: Sequence[Verdict] = ()) -> None:
        """Plot `table` (None: nothing), keeping the chosen column when the columns stay; show the
        paper's trend and the verdicts on its claims."""
        self.table_data = table
        labels = table.columns if table else []
        if [self.metric_box.itemText(i) for i in range(self.metric_box.count())] != labels:
            self.metric_box.blockSignals(True)
            self.metric_box.clear()
            self.metric_box.addItems(labels)
            self.metric_box.blockSignals(False)
        self.trend.setText(trend)
        self.verdicts.show_verdicts(verdicts)
        self.verdicts.setVisible(bool(verdicts))  # no empty "did the claims hold?" for a custom sweep
        self._plot()

    def _apply_theme(self) -> None:
        base = theme.background(self)
        self.plot.setBackground(base)
        self.legend.setBrush(pg.mkBrush(base.red(), base.green(), base.blue(), 210))
        self.trend.setStyleSheet(theme.banner_style(self, "note"))
        if self.table_data is not None:
            self._plot()  # the seeds' mean and the reference lines are drawn in the palette's text colour

    def _plot(self) -> None:
        """The swept field against the chosen column: a line over numbers, points over categories;
        one series per value of a second swept field; reference rows (a teacher) as dashed lines."""
        self.plot.clear()
        self.legend.clear()
        self.plot.enableAutoRange()  # a range set for the study shown before (its categories) is not this one's
        table, col = self.table_data, self.metric_box.currentIndex()
        if table is None or col < 0:
            return
        first = len(table.sweep_fields)
        points = [row for row, ref in zip(table.rows, table.reference) if not ref]
        numeric = all(isinstance(row[0], (int, float)) and not isinstance(row[0], bool) for row in points)
        self.plot.setLogMode(x=numeric and log_spaced([float(row[0]) for row in points]))
        categories = list(dict.fromkeys(str(row[0]) for row in points))
        axis = self.plot.getAxis("bottom")
        axis.setTicks(None if numeric else [[(i, c) for i, c in enumerate(categories)]])
        if not numeric:  # half a step of room each side, or the outer categories' labels are dropped
            self.plot.setXRange(-0.5, len(categories) - 0.5, padding=0)
        self.plot.setLabel("bottom", table.sweep_fields[0])
        self.plot.setLabel("left", table.columns[col])
        groups: dict[str, list[list[Any]]] = {}
        for row in points:
            key = f"{table.sweep_fields[1]}={row[1]}" if first > 1 else table.columns[col]
            groups.setdefault(key, []).append(row)
        def x_of(value: Any) -> float:
            return float(value) if numeric else categories.index(str(value))

        ys: list[float] = []  # every value plotted
        for i, (name, rows) in enumerate(groups.items()):
            pairs = sorted((x_of(r[0]), r[first + col]) for r in rows if isinstance(r[first + col], (int, float)))
            ys += [p[1] for p in pairs]
            if pairs:
                colour = theme.PALETTE[i % len(theme.PALETTE)]
                self.plot.plot([p[0] for p in pairs], [p[1] for p in pairs], pen=pg.mkPen(colour, width=1.5),
                               symbol="o", symbolSize=7, symbolBrush=colour, symbolPen=colour, name=name)
        if table.sweep_fields[1:2] == ["seed"] and len(groups) > 1:  # repeats: their mean, on top
            means = sorted((x_of(key[0]), sum(v) / len(v)) for key, v in point_values(table, col).items() if v)
            ink = theme.foreground(self)
            self.plot.plot([m[0] for m in means], [m[1] for m in means], pen=pg.mkPen(ink, width=3), symbol="s",
                           symbolBrush=ink, name=f"mean of {len(groups)} seeds")
        for name, values in reference_values(table, col).items():  # a teacher run per seed: one line, their mean
            if values:
                mean = sum(values) / len(values)
                ys.append(mean)
                text = f"{name}: {mean:.3f}" + (f" (mean of {len(values)} seeds)" if len(values) > 1 else "")
                line = pg.InfiniteLine(pos=mean, angle=0, label=text,
                                       pen=pg.mkPen("#777", width=1.5, style=Qt.PenStyle.DashLine),
                                       labelOpts={"position": 0.02, "color": theme.foreground(self),
                                                  "anchors": [(0, 1), (0, 1)]})
                self.plot.addItem(line)
        if ys and len(self.legend.items) > 1:  # the legend, two to a row, in room above the data: it hides no point
            self.legend.setColumnCount(2)
            span = (max(ys) - min(ys)) or abs(max(ys)) or 1.0
            self.plot.setYRange(min(ys), max(ys) + 0.3 * span)
        self.best.setText(self._best_text(table, col))

    @staticmethod
    def _best_text(table: Table, col: int) -> str:
        """The best point of the column (the mean over its seeds, when repeated)."""
        scored = [(sum(v) / len(v), key, len(v)) for key, v in point_values(table, col).items() if v]
        if not scored:
            return "no results yet"
        higher = fmt.higher_is_better(table.keys[col])
        value, key, n = (max if higher else min)(scored, key=lambda p: p[0])
        where = ", ".join(f"{f}={v}" for f, v in zip([f for f in table.sweep_fields if f != "seed"], key))
        repeats = f"mean of {n} seeds" if "seed" in table.sweep_fields else ""
        if not where:  # seeds alone swept: one point, repeated
            return f"{table.columns[col]}: <b>{value:.4f}</b>" + (f" ({repeats})" if repeats else "")
        return (f"{'highest' if higher else 'lowest'} {table.columns[col]}: <b>{value:.4f}</b> at {where}"
                + (f" ({repeats})" if repeats else "")
                + f"; {len(scored)} of {len(point_values(table, col))} points have a value")
