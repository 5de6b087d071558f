"""`DistillView`: a distilled student against its teacher, from the comparison report a DeiT run
stores at the end of training: top-1 of the teacher and of the student's cls head, dist head
and their average, next to a baseline run (pickable: any finished classifier on the same
dataset — a plain ViT is the paper's baseline; the view says why other runs are not offered);
agreement rate; per-class accuracy; the teacher x student prediction matrix; and the grid of
validation images with both predictions, disagreements first. What it shows is read on a worker
thread (`read_distilled`, `baseline_top1`, through the window's `submit`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from workbench import fmt
from workbench.methods import config_class
from workbench.store import Run, RunStatus, Store
from workbench.ui import theme
from workbench.ui.image_view import ZoomImage
from workbench.ui.tasks import Submit, read_then
from workbench.ui.widgets import fill_count_matrix

COLOURS = {"teacher": "#6b6b6b", "student": "#2f6fd6", "baseline": "#d9862b"}
NO_BASELINE = "(no baseline)"
TOP1 = "val/top1"


def baseline_rank(run: Run) -> int:
    """How close a run is to the paper's baseline: a DeiT without distillation (2), a plain ViT
    (1), any other classifier (0)."""
    return 2 if run.method == "deit" and run.config.get("distill") == "none" else int(run.method == "vit")


def baseline_candidates(store: Store, run: Run) -> tuple[list[Run], list[tuple[Run, str]]]:
    """(runs offered as a baseline for `run`, [(run, why not)] for the others): any finished
    classifier on the same dataset, other than the run itself and its own teacher."""
    teacher = {p.id for p in store.parents(run.id).values()}
    offered, refused = [], []
    for other in store.list_runs():
        if other.id == run.id:
            continue
        why = ("its teacher, shown already" if other.id in teacher else
               f"{other.status}, not finished" if other.status != RunStatus.FINISHED else
               f"{other.method} is not a classifier" if config_class(other.method).key_metric != TOP1 else
               f"dataset {other.config.get('dataset')}" if other.config.get("dataset") != run.config.get("dataset")
               else "no validation top-1 yet" if TOP1 not in other.summary else "")
        if why:
            refused.append((other, why))
        else:
            offered.append(other)
    return offered, refused


def read_report(store: Store, run_id: int) -> dict | None:
    """The run's newest distillation report, or None (not a distilled run, or not finished)."""
    report = fmt.run_report(store, run_id)
    return report if report and {"cls", "dist", "avg"} <= set(report.get("top1", {})) else None


Baseline = tuple[float, list[float] | None]  # top-1, and per-class accuracy when known


def baseline_top1(store: Store, run_id: int) -> Baseline | None:
    """A baseline run's top-1 (and per-class accuracy): a DeiT report's student, or any
    classifier's last validation top-1."""
    report = read_report(store, run_id)
    if report is not None:
        return report["top1"]["avg"], report["per_class"]["student"]
    value = store.get_run(run_id).summary.get(TOP1)
    return (value, None) if value is not None else None


@dataclass
class Distilled:
    """What the view shows of a run (`read_distilled`)."""

    report: dict | None
    offered: list[Run]
    refused: list[tuple[Run, str]]
    best: int | None = None  # the baseline chosen first: the paper's comparison
    baseline: Baseline | None = None  # its figures
    grid: QImage | None = None  # teacher vs student on validation images (a QImage: made off the GUI thread)


def read_distilled(store: Store, run: Run) -> Distilled:
    report = read_report(store, run.id)
    if report is None:
        return Distilled(None, [], [])
    offered, refused = baseline_candidates(store, run)
    # the same student undistilled first, else a plain ViT
    best = max(offered, key=lambda r: (baseline_rank(r), r.id)).id if offered else None
    art = store.latest_artifact(run.id, "image", name="teacher_vs_student")
    return Distilled(report, offered, refused, best, baseline_top1(store, best) if best is not None else None,
                     QImage(str(store.abspath(art))) if art is not None else None)


class DistillView(QWidget):
    def __init__(self, store: Store, submit: Submit | None = None) -> None:
        super().__init__()
        self.store = store
        self.submit = submit  # reads off the GUI thread (Tasks.submit); None: inline
        self.wanted: tuple[int, str] | None = None  # the run (and status) asked for: other readings are dropped
        self.run: Run | None = None
        self.report: dict | None = None
        self.grid_image: QImage | None = None
        self.chosen: tuple[int | None, Baseline | None] = (None, None)  # the baseline run shown, its figures
        self.bars: dict[str, float] = {}  # what the top-1 chart shows, label -> value
        self.title = QLabel("select a finished DeiT run")
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)
        self.baseline = QComboBox()
        self.baseline.setToolTip("any finished classifier on the same dataset: a plain ViT (the paper's baseline), "
                                 "a DeiT trained without distillation, a CNN…")
        self.baseline.currentIndexChanged.connect(lambda _: self._baseline_changed())
        self.baseline.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.baseline.setMinimumContentsLength(28)  # long run names must not squeeze the window
        self.why_not = QLabel()
        self.why_not.setWordWrap(True)
        theme.colour_text(self.why_not, "muted")
        self.why_not.hide()
        self.top1_plot = pg.PlotWidget(title="top-1 (student heads in blue)")
        self.class_plot = pg.PlotWidget(title="per-class accuracy")
        self.class_plot.setLabel("bottom", "class, numbered as the matrix's rows")
        theme.follow(self, self._apply_theme)
        for plot in (self.top1_plot, self.class_plot):
            plot.setYRange(0, 1.05)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
        self.class_plot.addLegend(offset=(-5, 5), colCount=2)
        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.matrix.setMinimumWidth(380)
        self.matrix.setToolTip("rows: the teacher's prediction; columns: the student's; the diagonal is agreement")
        self.grid = ZoomImage(placeholder="disagreements appear here")

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        self.baseline_label = QLabel("baseline")
        top.addWidget(self.baseline_label)
        top.addWidget(self.baseline)
        charts = QSplitter()
        charts.addWidget(self.top1_plot)
        charts.addWidget(self.class_plot)
        charts.setSizes([420, 520])
        lower = QSplitter()
        matrix_box = QWidget()
        matrix_layout = QVBoxLayout(matrix_box)
        matrix_layout.setContentsMargins(0, 0, 0, 0)
        matrix_layout.addWidget(QLabel("teacher (rows) × student (columns) predictions"))
        matrix_layout.addWidget(self.matrix)
        grid_box = QWidget()
        grid_layout = QVBoxLayout(grid_box)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_label = QLabel("validation images, disagreements first (S: student, T: teacher; green right, red wrong)")
        grid_label.setWordWrap(True)  # clipped otherwise in a narrow tab
        grid_layout.addWidget(grid_label)
        grid_layout.addWidget(self.grid)
        lower.addWidget(matrix_box)
        lower.addWidget(grid_box)
        lower.setSizes([400, 460])
        self.body = QSplitter(Qt.Orientation.Vertical)
        self.body.addWidget(charts)
        self.body.addWidget(lower)
        self.body.setSizes([300, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.why_not)
        layout.addWidget(self.body, 1)
        layout.addStretch(0)  # takes the room while the body is hidden: the title stays on top
        self._draw()  # no run yet: the sentence, no empty axes

    def show_run(self, run: Run | None) -> None:
        """Follow the selected run; what it shows is only read again when the run or its status changes."""
        key = (run.id, run.status) if run is not None else None
        if key == self.wanted:
            return
        self.wanted = key
        if run is None:
            self._fill(None, Distilled(None, [], []))
            return

        def arrived(distilled: Distilled) -> None:
            if key == self.wanted:  # not a reading for a run asked for before
                self._fill(run, distilled)

        def failed(message: str) -> None:
            if key == self.wanted:
                self.wanted = None  # read again at the next poll
                self.title.setText(f"could not read run {run.id}'s distillation report: {message}")

        read_then(self.submit, lambda: read_distilled(self.store, run), arrived, failed)

    def _fill(self, run: Run | None, distilled: Distilled) -> None:
        self.run, self.report, self.grid_image = run, distilled.report, distilled.grid
        self.chosen = (distilled.best, distilled.baseline)
        self.baseline.blockSignals(True)
        self.baseline.clear()
        self.baseline.addItem(NO_BASELINE, None)
        self.why_not.clear()
        if run is not None and self.report is not None:
            offered, refused = distilled.offered, distilled.refused
            for other in offered:
                self.baseline.addItem(f"{other.id} · {other.name} ({other.method})", other.id)
            if distilled.best is not None:
                self.baseline.setCurrentIndex(self.baseline.findData(distilled.best))
            if not offered:
                self.baseline.setItemText(0, "(none available)")
            self.why_not.setText(
                ("" if offered else f"No finished classifier run on {run.config.get('dataset')} to compare with: "
                                    f"train a plain vit on it (the paper's baseline). ")
                + ("Not offered: " + "; ".join(f"{r.id} · {r.name} ({why})" for r, why in refused[-6:])
                   + (f" and {len(refused) - 6} more" if len(refused) > 6 else "") if refused else ""))
        self.why_not.setVisible(bool(self.why_not.text()))
        self.baseline.blockSignals(False)
        self._draw()

    def _baseline_changed(self) -> None:
        """The user chose another baseline: its figures are read, then drawn."""
        run_id = self.baseline.currentData()

        def arrived(figures: Baseline | None) -> None:
            if self.baseline.currentData() == run_id:
                self.chosen = (run_id, figures)
                self._draw()

        if run_id is None:
            arrived(None)
        else:
            read_then(self.submit, lambda: baseline_top1(self.store, run_id), arrived,
                      lambda message: self.why_not.setText(f"could not read run {run_id}: {message}"))

    def baseline_top1(self) -> Baseline | None:
        """The figures of the baseline chosen, once read."""
        run_id, figures = self.chosen
        return figures if run_id is not None and run_id == self.baseline.currentData() else None

    def _apply_theme(self) -> None:
        for plot in (self.top1_plot, self.class_plot):
            plot.setBackground(theme.background(self))
        if self.report is not None:
            self._draw()  # the bars' values are written in the palette's text colour

    def _draw(self) -> None:
        self.top1_plot.clear()
        self.class_plot.clear()
        self.bars = {}
        report = self.report
        for part in (self.body, self.baseline_label, self.baseline):  # no empty axes for a run with no report
            part.setVisible(report is not None)
        if report is None:
            self.title.setText("select a finished DeiT run: its teacher-vs-student report appears here"
                               if self.run is None or self.run.status != RunStatus.FINISHED else
                               f"run {self.run.id} ({self.run.method}) has no distillation report")
            self.matrix.setRowCount(0)
            self.matrix.setColumnCount(0)
            self.grid.set_placeholder("disagreements appear here")
            return
        top1 = report["top1"]
        baseline = self.baseline_top1()
        if "teacher" in top1:
            self.bars["teacher"] = top1["teacher"]
        self.bars.update({"cls": top1["cls"], "dist": top1["dist"], "cls+dist": top1["avg"]})
        if baseline is not None:
            self.bars["baseline"] = baseline[0]
        agreement = report.get("agreement")
        self.title.setText(f"run {self.run.id} · {self.run.name}: {report['distill']} distillation · student "
                           f"(cls+dist) {top1['avg']:.1%}" + (f" vs teacher {top1['teacher']:.1%}" if "teacher" in top1
                                                              else "")
                           + (f" · agrees with the teacher on {agreement:.1%} of validation images"
                              if agreement is not None else "")
                           + (f" · baseline {self.bars['baseline']:.1%}" if baseline else ""))
        self._bar_chart(list(self.bars.values()), list(self.bars))
        self._per_class(report, baseline)
        self._matrix(report)
        if self.grid_image is not None:
            self.grid.set_pixmap(QPixmap.fromImage(self.grid_image))

    def _bar_chart(self, values: list[float], labels: list[str]) -> None:
        colours = [COLOURS["teacher"] if k == "teacher" else COLOURS["baseline"] if k == "baseline"
                   else COLOURS["student"] for k in labels]
        x = np.arange(len(values))
        self.top1_plot.addItem(pg.BarGraphItem(x=x, height=values, width=0.6, brushes=colours))
        for i, value in enumerate(values):
            text = pg.TextItem(f"{value:.1%}", color=theme.foreground(self), anchor=(0.5, 1.0))
            text.setPos(i, value + 0.01)
            self.top1_plot.addItem(text)
        self.top1_plot.getAxis("bottom").setTicks([list(zip(x.tolist(), labels))])
        self.top1_plot.setXRange(-0.6, len(values) - 0.4, padding=0)

    def _per_class(self, report: dict, baseline: tuple[float, list[float] | None] | None) -> None:
        series = {"student": report["per_class"]["student"]}
        if "teacher" in report["per_class"]:
            series = {"teacher": report["per_class"]["teacher"], **series}
        if baseline is not None and baseline[1] is not None:
            series["baseline"] = baseline[1]
        classes = report["classes"]
        width = 0.8 / len(series)
        for k, (name, values) in enumerate(series.items()):
            x = np.arange(len(values)) - 0.4 + width * (k + 0.5)
            self.class_plot.addItem(pg.BarGraphItem(x=x, height=values, width=width * 0.95,
                                                    brush=COLOURS[name], name=name))
        self.class_plot.getAxis("bottom").setTicks([[(i, str(i)) for i in range(len(classes))]])  # as the matrix's
        self.class_plot.setXRange(-0.6, len(classes) - 0.4, padding=0)
        self.class_plot.setYRange(0, 1.3, padding=0)  # the legend's row above the bars, over none of them

    def _matrix(self, report: dict) -> None:
        counts = report.get("agreement_matrix")
        classes = report["classes"]
        if counts is None:
            self.matrix.setRowCount(0)
            return
        fill_count_matrix(self.matrix, counts, classes)
