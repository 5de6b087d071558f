"""`MainWindow`: the run browser, the selected runs' curves, details, log and comparison, and
job control.

The window is built light and shown first; `load` then opens the database and builds the
plots, so the window appears at once.
A QTimer then polls the store a few times a second: the `Runner` starts queued runs and
reaps finished workers, the table updates in place, curves fetch only new rows (off the GUI
thread). Cancelling and deleting run on worker threads. Nothing here imports torch.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from PySide6.QtCore import QProcess, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from workbench import paths
from workbench.config import METHOD_CONFIGS
from workbench.errors import WorkbenchError
from workbench.store import RESUMABLE, RunStatus
from workbench.ui.runs_table import STATUS_COLOURS, RunsFilterProxy, RunsTableModel
from workbench.ui.tasks import Tasks

if TYPE_CHECKING:
    from workbench.store import Run, Store

POLL_MS = 500
DEVICE_PROBE = ("import json, os, torch; print(json.dumps({'cuda': [torch.cuda.get_device_name(i) for i in "
                "range(torch.cuda.device_count())], 'cpus': os.cpu_count()}))")


class MainWindow(QMainWindow):
    def __init__(self, store: Store | None = None) -> None:
        super().__init__()
        self.setWindowTitle("ViT Workbench")
        self._store = store
        self.loaded = False
        self.tasks = Tasks(self)
        self.settings = QSettings(str(paths.home() / "gui.ini"), QSettings.Format.IniFormat)
        geometry = self.settings.value("main/geometry")
        if geometry:
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 820)

        self.model = RunsTableModel()
        self.proxy = RunsFilterProxy()
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _: self.tabs.setCurrentIndex(1))
        self.model.modelReset.connect(self.table.resizeColumnsToContents)

        self.search = QLineEdit()
        self.search.setPlaceholderText("filter: name, id, tags (study:3), notes…")
        self.search.setClearButtonEnabled(True)
        self.method_filter = QComboBox()
        self.method_filter.addItems(["all methods", *METHOD_CONFIGS])
        self.status_filter = QComboBox()
        self.status_filter.addItems(["all statuses", *STATUS_COLOURS])
        self.search.textChanged.connect(lambda t: self.proxy.set_filters(text=t))
        self.method_filter.currentIndexChanged.connect(
            lambda i: self.proxy.set_filters(method="" if i == 0 else self.method_filter.currentText()))
        self.status_filter.currentIndexChanged.connect(
            lambda i: self.proxy.set_filters(status="" if i == 0 else self.status_filter.currentText()))
        filters = QHBoxLayout()
        filters.addWidget(self.search, 2)
        filters.addWidget(self.method_filter, 1)
        filters.addWidget(self.status_filter, 1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(4, 4, 0, 4)
        left_layout.addLayout(filters)
        left_layout.addWidget(self.table)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet("background: #fdecea; color: #8c1d18; padding: 8px; border-radius: 4px;")
        self.banner.hide()
        self.tabs = QTabWidget()
        self.tabs.addTab(QLabel("loading…"), "Curves")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 4, 4, 4)
        right_layout.addWidget(self.banner)
        right_layout.addWidget(self.tabs, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([600, 760])
        self.setCentralWidget(splitter)

        self.devices_label = QLabel("devices: probing…")
        self.jobs_label = QLabel()
        self.statusBar().addPermanentWidget(self.devices_label)
        self.statusBar().addPermanentWidget(self.jobs_label)
        self._build_actions()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.poll)
        self.studies = None  # the Studies window, made when first opened

    # --------------------------------------------------------------- start-up
    def load(self) -> None:
        """The heavier half of start-up (database, plotting), after the window is visible."""
        if self.loaded:
            return
        from workbench.jobs import Runner, reconcile
        from workbench.store import Store
        from workbench.ui.compare import CompareView
        from workbench.ui.curves import CurvesView
        from workbench.ui.details import RunDetailsView
        from workbench.ui.distill_view import DistillView
        from workbench.ui.inspect_view import InspectView
        from workbench.ui.log_view import LogView
        from workbench.ui.snapshots import SnapshotsView

        self.store = self._store or Store()
        self.runner = Runner(self.store, max_concurrent=self.parallel.value())
        self.curves = CurvesView(self.store, self.tasks.submit)
        self.curves.restore(dict(self.settings.value("curves/state", {}) or {}))
        self.details = RunDetailsView(self.store)
        self.details.open_run.connect(self.select_run)
        self.log = LogView()
        self.compare = CompareView(self.store)
        self.snapshots = SnapshotsView(self.store)
        self.inspect = InspectView(self.store, self.tasks)
        self.distill = DistillView(self.store)
        self.tabs.removeTab(0)
        for widget, title in ((self.curves, "Curves"), (self.snapshots, "Images"), (self.inspect, "Inspect"),
                              (self.distill, "Distillation"), (self.details, "Details"), (self.log, "Log"),
                              (self.compare, "Compare")):
            self.tabs.addTab(widget, title)
        self.tabs.currentChanged.connect(lambda _: self._selection_changed())
        self.loaded = True
        lost = reconcile(self.store)
        if lost:
            self.statusBar().showMessage(f"Runs {', '.join(map(str, lost))} lost their worker since the last session "
                                         f"and are marked interrupted; Resume continues them.", 20000)
        self._probe_devices()
        self.poll()
        self.timer.start(POLL_MS)

    def _probe_devices(self) -> None:
        """Ask a separate Python (which may import torch) what devices this machine has."""
        import sys

        self.probe = QProcess(self)
        self.probe.finished.connect(self._devices_found)
        self.probe.start(sys.executable, ["-c", DEVICE_PROBE])

    def _devices_found(self) -> None:
        import json

        try:
            found = json.loads(bytes(self.probe.readAllStandardOutput()).decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.devices_label.setText("devices: unknown (torch did not load)")
            return
        gpus = found["cuda"]
        self.devices_label.setText(f"GPU: {', '.join(gpus)}" if gpus else f"CPU only · {found['cpus']} cores")

    def _build_actions(self) -> None:
        def action(text: str, slot, shortcut=None, tip: str = "") -> QAction:
            a = QAction(text, self)
            a.triggered.connect(slot)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            a.setToolTip(tip or text)
            return a

        self.new_action = action("New experiment…", lambda: self.new_run(), QKeySequence.StandardKey.New,
                                 "set up and start a new run (Ctrl+N)")
        self.duplicate_action = action("Duplicate…", lambda: self.duplicate_run(), "Ctrl+D",
                                       "a new run starting from the selected run's config (Ctrl+D)")
        self.cancel_action = action("Cancel", self.cancel_selected, "Ctrl+.", "stop the selected runs (Ctrl+.)")
        self.resume_action = action("Resume", self.resume_selected, "Ctrl+R",
                                    "continue interrupted, failed or cancelled runs (Ctrl+R)")
        self.delete_action = action("Delete…", self.delete_selected, QKeySequence.StandardKey.Delete,
                                    "delete the selected runs and their files")
        self.folder_action = action("Open folder", self.open_folder, "Ctrl+O", "open the run's folder (Ctrl+O)")
        self.export_action = action("Export…", lambda: self.export_selected(), "Ctrl+E",
                                    "write the selected finished run's model as safetensors, ONNX, .pt2 (Ctrl+E)")
        refresh = action("Refresh", self.poll, QKeySequence.StandardKey.Refresh)
        self.datasets_action = action("Datasets…", lambda: self.open_datasets(), "Ctrl+Shift+D",
                                      "browse, add and preview datasets (your own image folders, CIFAR)")
        self.studies_action = action("Studies…", lambda: self.open_studies(), "Ctrl+Shift+S",
                                     "sweeps and pipelines: reproduce a paper's ablation, or sweep your own fields")
        quit_action = action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.parallel = QSpinBox()
        self.parallel.setRange(1, 32)
        self.parallel.setValue(int(self.settings.value("runner/max_concurrent", 2)))
        self.parallel.setToolTip("how many runs train at once; the rest wait in the queue")
        self.parallel.valueChanged.connect(self._set_parallel)

        bar = QToolBar("Runs")
        bar.setMovable(False)
        self.addToolBar(bar)
        for a in (self.new_action, self.duplicate_action, self.cancel_action, self.resume_action,
                  self.delete_action, self.export_action, self.folder_action, self.datasets_action,
                  self.studies_action):
            bar.addAction(a)
        bar.addSeparator()
        bar.addWidget(QLabel(" parallel runs "))
        bar.addWidget(self.parallel)
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        for a in (self.new_action, self.duplicate_action, quit_action):
            file_menu.addAction(a)
        run_menu = menus.addMenu("&Run")
        for a in (self.cancel_action, self.resume_action, self.delete_action, self.export_action, self.folder_action):
            run_menu.addAction(a)
        menus.addMenu("&Data").addAction(self.datasets_action)
        menus.addMenu("&Studies").addAction(self.studies_action)
        menus.addMenu("&View").addAction(refresh)

    def _set_parallel(self, value: int) -> None:
        self.settings.setValue("runner/max_concurrent", value)
        if self.loaded:
            self.runner.max_concurrent = value

    # ---------------------------------------------------------------- polling
    def poll(self) -> None:
        if not self.loaded:
            return
        try:
            self.runner.poll()
            runs = self.store.list_runs()
        except WorkbenchError as exc:  # a locked database, say: report it, keep the window alive
            self.statusBar().showMessage(str(exc), 5000)
            return
        self.model.set_runs(runs)
        self._refresh_current(self.selected_runs())
        if self.studies is not None and self.studies.isVisible():
            self.studies.refresh()
        counts = {s: sum(r.status == s for r in runs) for s in ("running", "queued")}
        self.jobs_label.setText(f"{counts['running']} running · {counts['queued']} queued · {len(runs)} runs")

    def selected_runs(self) -> list[Run]:
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.run_at(r) for r in rows]

    def _selection_changed(self) -> None:
        if not self.loaded:
            return
        runs = self.selected_runs()
        self.curves.set_runs({r.id: (f"{r.id} · {r.name}", r.method) for r in runs})
        self.compare.show_runs(runs)
        self._refresh_current(runs)

    def _refresh_current(self, runs: list[Run]) -> None:
        current = runs[-1] if runs else None
        failed = [r for r in runs if r.error and r.status in (RunStatus.FAILED, RunStatus.INTERRUPTED)]
        self.banner.setVisible(bool(failed))
        if failed:
            r = failed[-1]
            self.banner.setText(f"<b>Run {r.id} {r.status}.</b> {r.error.strip().splitlines()[-1]}"
                                + (" — Resume continues it." if r.status in RESUMABLE else ""))
            self.banner.setToolTip(r.error)
        self.details.show_run(current)
        shown = self.tabs.currentWidget()  # the heavier views follow the run only while visible
        for view in (self.snapshots, self.inspect, self.distill):
            if view is shown:
                view.show_run(current)
        self.log.show_log(paths.run_dir(current.id) / "worker.log" if current else None)
        self.log.refresh()
        self.curves.refresh()

    def select_run(self, run_id: int) -> None:
        row = self.model.row_of(run_id)
        if row is not None:
            self.table.selectRow(self.proxy.mapFromSource(self.model.index(row, 0)).row())

    # ---------------------------------------------------------------- actions
    def new_run(self, *, method: str | None = None, preset: str | None = None, values=None, parents=None,
                name: str = "") -> Run | None:
        """Open the new-experiment dialog (by default on the last method and preset used)."""
        from workbench.ui.new_run_dialog import NewRunDialog

        self.load()
        if values is None:
            method = method or str(self.settings.value("new/method", "vit"))
            preset = preset or str(self.settings.value("new/preset", "tiny"))
        dialog = NewRunDialog(self.store, self, method=method or "vit", preset=preset, values=values,
                              parents=parents, name=name)
        self.dialog = dialog  # tests drive it
        if dialog.exec() and dialog.created is not None:
            self.settings.setValue("new/method", dialog.created.method)
            self.settings.setValue("new/preset", dialog.preset.currentText())
            self.poll()
            self.select_run(dialog.created.id)
            return dialog.created
        return None

    def duplicate_run(self) -> Run | None:
        runs = self.selected_runs()
        if not runs:
            return None
        run = runs[-1]
        parents = {role: p.id for role, p in self.store.parents(run.id).items()}
        return self.new_run(method=run.method, preset=None, values=run.config, parents=parents,
                            name=f"{run.name} (copy)")

    def cancel_selected(self) -> None:
        from workbench.jobs import cancel_run

        for run in self.selected_runs():
            if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
                self.tasks.submit(lambda rid=run.id: cancel_run(self.store, rid), lambda _: self.poll(),
                                  lambda msg: self.statusBar().showMessage(msg, 8000))

    def resume_selected(self) -> None:
        from workbench.jobs import resume_run

        for run in self.selected_runs():
            try:
                resume_run(self.store, run.id)
            except WorkbenchError as exc:
                self.statusBar().showMessage(str(exc), 8000)
        self.poll()

    def delete_selected(self, confirm: bool = True) -> None:
        runs = self.selected_runs()
        busy = [r.id for r in runs if r.status in (RunStatus.QUEUED, RunStatus.RUNNING)]
        if busy:
            QMessageBox.information(self, "Cannot delete", f"Runs {', '.join(map(str, busy))} are still queued or "
                                                           f"running; cancel them first.")
            return
        if not runs or confirm and QMessageBox.question(
                self, "Delete runs", f"Delete {len(runs)} run(s) — {', '.join(r.name for r in runs)} — with their "
                                     f"metrics, checkpoints and images? This cannot be undone.") != \
                QMessageBox.StandardButton.Yes:
            return

        def delete() -> None:
            for run in runs:
                self.store.delete_run(run.id)
                shutil.rmtree(paths.run_dir(run.id), ignore_errors=True)

        self.tasks.submit(delete, lambda _: self.poll(), lambda msg: QMessageBox.warning(self, "Not deleted", msg))

    def export_selected(self):
        """Open the export dialog for the selected run, if it has finished."""
        from workbench.ui.export_dialog import ExportDialog

        runs = self.selected_runs()
        if not runs or runs[-1].status != RunStatus.FINISHED:
            self.statusBar().showMessage("Select a finished run to export.", 5000)
            return None
        self.export_dialog = ExportDialog(runs[-1].id, runs[-1].name, self)
        self.export_dialog.finished.connect(lambda _: self.poll())
        self.export_dialog.show()
        return self.export_dialog

    def open_datasets(self):
        from workbench.ui.datasets_dialog import DatasetsDialog

        self.load()
        self.datasets_dialog = DatasetsDialog(self.store, self)
        self.datasets_dialog.show()
        return self.datasets_dialog

    def open_studies(self):
        from workbench.ui.studies_view import StudiesView

        self.load()
        if self.studies is None:
            self.studies = StudiesView(self.store, self.tasks, self, parallel=self.parallel.value())
            self.studies.open_run.connect(self._show_run)
            self.studies.show_runs.connect(self._filter_runs)
        self.studies.show()
        self.studies.raise_()
        self.studies.refresh()
        return self.studies

    def _show_run(self, run_id: int) -> None:
        self.search.clear()
        self.select_run(run_id)
        self.raise_()
        self.activateWindow()

    def _filter_runs(self, text: str) -> None:
        self.search.setText(text)
        self.raise_()
        self.activateWindow()

    def open_folder(self) -> None:
        for run in self.selected_runs()[-1:]:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.run_dir(run.id))))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.settings.setValue("main/geometry", self.saveGeometry())
        if self.loaded:
            self.settings.setValue("curves/state", self.curves.state())
            self.inspect.process.stop()
            shutil.rmtree(self.inspect.workdir, ignore_errors=True)
        self.timer.stop()
        if getattr(self, "probe", None) is not None and self.probe.state() != QProcess.ProcessState.NotRunning:
            self.probe.kill()
            self.probe.waitForFinished(1000)
        self.tasks.wait(5000)
        super().closeEvent(event)
