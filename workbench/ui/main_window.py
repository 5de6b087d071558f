"""`MainWindow`: the run browser, live curves of the selected runs, and job control.

A QTimer polls the store a few times a second (rows newer than those already shown) and
lets the `Runner` start queued runs and reap finished workers; cancelling, which may wait
for a worker to checkpoint, runs on a background thread. Nothing here trains or blocks.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QLabel, QMainWindow, QMessageBox, QSplitter, QTableView,
                               QToolBar)

from workbench.errors import WorkbenchError
from workbench.jobs import Runner, cancel_run, create_run, reconcile, resume_run
from workbench.store import Run, Store
from workbench.ui.curves import CurvesView
from workbench.ui.runs_table import RunsTableModel

POLL_MS = 500


class MainWindow(QMainWindow):
    def __init__(self, store: Store | None = None, max_concurrent: int = 2) -> None:
        super().__init__()
        self.setWindowTitle("ViT Workbench")
        self.store = store or Store()
        self.runner = Runner(self.store, max_concurrent=max_concurrent)
        interrupted = reconcile(self.store)

        self.model = RunsTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.modelReset.connect(self.table.resizeColumnsToContents)
        self.curves = CurvesView(self.store)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.curves)
        splitter.setSizes([260, 460])
        self.setCentralWidget(splitter)
        self._build_actions()
        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)
        if interrupted:
            self.statusBar().showMessage(f"Runs {', '.join(map(str, interrupted))} lost their worker since the "
                                         f"last session and are marked interrupted; Resume continues them.", 15000)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self.poll)
        self.timer.start(POLL_MS)
        self.settings = QSettings(str(self.store.home / "gui.ini"), QSettings.Format.IniFormat)
        if self.settings.value("main/geometry"):
            self.restoreGeometry(self.settings.value("main/geometry"))
        else:
            self.resize(1100, 760)
        self.poll()

    def _build_actions(self) -> None:
        bar = QToolBar("Runs")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.new_action = QAction("New tiny ViT run", self, shortcut=QKeySequence.StandardKey.New,
                                  triggered=self.new_tiny_run)
        self.cancel_action = QAction("Cancel", self, triggered=self.cancel_selected)
        self.resume_action = QAction("Resume", self, triggered=self.resume_selected)
        for action in (self.new_action, self.cancel_action, self.resume_action):
            bar.addAction(action)

    # ---------------------------------------------------------------- polling
    def poll(self) -> None:
        try:
            self.runner.poll()
            runs = self.store.list_runs()
        except WorkbenchError as exc:  # e.g. a locked database: say so, keep the window alive
            self.statusBar().showMessage(str(exc), 5000)
            return
        self.model.set_runs(runs)
        self.curves.refresh()
        running = sum(r.status == "running" for r in runs)
        queued = sum(r.status == "queued" for r in runs)
        self.status_label.setText(f"{running} running · {queued} queued · {len(runs)} runs")

    def selected_runs(self) -> list[Run]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.run_at(r) for r in rows]

    def _selection_changed(self) -> None:
        self.curves.set_runs({r.id: r.name for r in self.selected_runs()})

    # ---------------------------------------------------------------- actions
    def new_tiny_run(self) -> Run:
        run = create_run(self.store, "vit", preset="tiny")
        self.poll()
        self.table.selectRow(len(self.model.runs) - 1)
        return run

    def cancel_selected(self) -> None:
        for run in self.selected_runs():
            if run.status in ("queued", "running"):
                threading.Thread(target=self._cancel, args=(run.id,), daemon=True).start()

    def _cancel(self, run_id: int) -> None:
        try:
            cancel_run(self.store, run_id)
        except WorkbenchError:
            pass  # it ended on its own meanwhile; the next poll shows how

    def resume_selected(self) -> None:
        for run in self.selected_runs():
            try:
                resume_run(self.store, run.id)
            except WorkbenchError as exc:
                QMessageBox.information(self, "Cannot resume", str(exc))
        self.poll()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.settings.setValue("main/geometry", self.saveGeometry())
        self.timer.stop()
        super().closeEvent(event)
