"""`DiagnosticsView`: what a user checks before exporting a classifier, from the report every
classifier stores at the end of training: top-1 (and top-5), the confusion matrix (a table of
counts up to 30 classes, a heatmap beyond), precision and recall per class, and the gallery of
the most confident mistakes. The report and the gallery's picture are read on a worker thread
(`read_diagnosis`, through the window's `submit`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench import fmt
from workbench.store import Run, Store
from workbench.ui import theme
from workbench.ui.image_view import ZoomImage
from workbench.ui.tasks import Submit, read_then
from workbench.ui.widgets import fill_count_matrix, fit_columns, with_frame

PLACEHOLDER = "the most confident mistakes appear here"
TABLE_CLASSES = 30  # more classes than this: a heatmap instead of a table of counts


@dataclass
class Diagnosis:
    """What the view shows of a run: its report's diagnostics (None: it has none) and the picture
    of its most confident mistakes (a QImage: made off the GUI thread, unlike a QPixmap)."""

    diagnostics: dict | None
    mistakes: QImage | None
    weights: str = ""  # which weights they describe, when those are not what Export writes by default


def read_diagnosis(store: Store, run_id: int) -> Diagnosis:
    diagnostics = (fmt.run_report(store, run_id) or {}).get("diagnostics")
    if diagnostics is None:
        return Diagnosis(None, None)
    mistakes = store.artifacts(run_id, "image", name="mistakes")[-1:]
    best, step = store.artifacts(run_id, "best")[-1:], store.get_run(run_id).step
    weights = (f"These describe the last weights (step {step}). Export writes the best by default "
               f"({best[0].meta['metric']} {best[0].meta['value']:.4g} at step {best[0].step}): choose the last "
               f"weights there to export these, or `workbench diagnose {run_id}` describes the best"
               if best and best[0].step != step else "")
    return Diagnosis(diagnostics, QImage(str(store.abspath(mistakes[0]))) if mistakes else None, weights)


class DiagnosticsView(QWidget):
    def __init__(self, store: Store, submit: Submit | None = None) -> None:
        super().__init__()
        self.store = store
        self.submit = submit  # reads off the GUI thread (Tasks.submit); None: inline
        self.shown: tuple[int, str] | None = None  # (run, status) on screen
        self.title = QLabel("select a finished classifier run")
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)
        self.weights = QLabel()
        self.weights.setWordWrap(True)
        theme.colour_text(self.weights, "muted")
        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setToolTip("rows: the true class; columns: the predicted one; off the diagonal: confusions")
        self.heatmap = pg.PlotWidget(title="confusion (rows: true class, columns: predicted)")
        self.heatmap.invertY(True)
        self.heat_image = pg.ImageItem(colorMap=pg.colormap.get("viridis"))
        self.heatmap.addItem(self.heat_image)
        self.confusion = QStackedWidget()
        self.confusion.addWidget(self.matrix)
        self.confusion.addWidget(self.heatmap)
        self.per_class = QTableWidget(0, 4)
        self.per_class.setHorizontalHeaderLabels(["class", "precision", "recall", "support"])
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.setSortingEnabled(True)
        self.per_class.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # A to Z at first
        self.per_class.verticalHeader().hide()
        self.gallery = ZoomImage(placeholder=PLACEHOLDER)

        upper = QSplitter()
        upper.addWidget(self.confusion)
        upper.addWidget(self.per_class)
        upper.setSizes([520, 360])
        gallery_box = QWidget()
        gallery_layout = QVBoxLayout(gallery_box)
        gallery_layout.setContentsMargins(0, 0, 0, 0)
        gallery_layout.addWidget(QLabel("the most confident mistakes (red frame: the prediction and its confidence, "
                                        "then the true class)"))
        gallery_layout.addWidget(self.gallery)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(upper)
        body.addWidget(gallery_box)
        body.setSizes([340, 360])
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.weights)
        layout.addWidget(body, 1)
        self.drawn: tuple[Run | None, Diagnosis] = (None, Diagnosis(None, None))  # drawn again in a new theme
        theme.follow(self, self._apply_theme)

    def show_run(self, run: Run | None) -> None:
        """Follow the selected run; its report is read again only when the run or its status changes."""
        key = (run.id, run.status) if run else None
        if key == self.shown:
            return
        self.shown = key
        if run is None:
            self._show(None, Diagnosis(None, None))
            return

        def arrived(diagnosis: Diagnosis) -> None:
            if key == self.shown:  # not a reading for a run shown before
                self._show(run, diagnosis)

        def failed(message: str) -> None:
            if key == self.shown:
                self.shown = None  # read again at the next poll
                self.title.setText(f"could not read run {run.id}'s diagnostics: {message}")

        read_then(self.submit, lambda: read_diagnosis(self.store, run.id), arrived, failed)

    def _apply_theme(self) -> None:
        self.heatmap.setBackground(theme.background(self))
        self._show(*self.drawn)  # the matrix's cells are shaded from the palette's background

    def _show(self, run: Run | None, diagnosis: Diagnosis) -> None:
        self.drawn = (run, diagnosis)
        diagnostics = diagnosis.diagnostics
        self.weights.setText(diagnosis.weights)
        self.weights.setVisible(bool(diagnosis.weights))
        if run is None or diagnostics is None:
            self.title.setText("select a finished classifier run" if run is None else
                               f"run {run.id} has no diagnostics: they are written when a classifier finishes "
                               f"training ({run.method}, {run.status})")
            self.matrix.setRowCount(0)
            self.matrix.setColumnCount(0)  # no class headers of the run shown before
            self.per_class.setRowCount(0)
            self.gallery.set_placeholder(PLACEHOLDER)
            return
        self.title.setText(f"run {run.id} · {run.name}: " + fmt.diagnostics_lines(diagnostics)[0])
        classes, counts = diagnostics["classes"], diagnostics["confusion"]
        if len(classes) <= TABLE_CLASSES:
            fill_count_matrix(self.matrix, counts, classes)
            self.confusion.setCurrentWidget(self.matrix)
        else:
            self.heat_image.setImage(np.asarray(counts, dtype=np.float32).T)  # ImageItem: x is the first axis
            self.confusion.setCurrentWidget(self.heatmap)
        self._per_class(diagnostics["per_class"])
        mistakes = diagnosis.mistakes
        if mistakes is None:
            self.gallery.set_placeholder(fmt.no_gallery(diagnostics))
        else:
            self.gallery.set_pixmap(QPixmap.fromImage(mistakes), keep_zoom=False)

    def _per_class(self, rows: list[dict]) -> None:
        self.per_class.setSortingEnabled(False)
        self.per_class.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = [row["class"], *(row[k] for k in ("precision", "recall", "support"))]
            for c, value in enumerate(cells):
                item = QTableWidgetItem()
                if value is None:  # precision of a class never predicted
                    item.setText("—")
                    item.setToolTip("never predicted: no precision")
                else:
                    # to three places alike ("0.900", not "0.9"): in [0, 1], the text sorts as the number
                    item.setData(Qt.ItemDataRole.DisplayRole, f"{value:.3f}" if isinstance(value, float) else value)
                self.per_class.setItem(r, c, item)
        table = self.per_class
        fit_columns(table, sortable=True)
        # wide enough for its four columns ("support" was cut): the splitter gives it that
        table.setMinimumWidth(with_frame(table, sum(table.columnWidth(c) for c in range(table.columnCount()))))
