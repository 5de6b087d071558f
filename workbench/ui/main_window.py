"""`MainWindow`: the run browser, the selected runs' curves, details, log and comparison, and
job control.

The window is built light and shown first; `load` then opens the database and builds the
plots, so the window appears at once.
A QTimer then polls the store a few times a second, off the GUI thread (a store on a server may
answer slowly, or not at all: the window never waits for it): the `Runner` starts queued runs and
reaps finished workers, the table updates in place, curves fetch only new rows. A store that
cannot be reached shows a banner and is retried every few seconds. Cancelling and deleting run
on worker threads. Nothing here imports torch.
What the user arranged (splitter, columns, sort, selection, tab, curve settings) is saved on
close and restored on the next start.
"""

from __future__ import annotations

import os
import traceback
from collections import Counter
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench import paths
from workbench.store import RESUMABLE, RunStatus
from workbench.ui import theme
from workbench.ui.connection import Connection, StoreDialog, apply_settings
from workbench.ui.menus import build_menus
from workbench.ui.poller import Poller
from workbench.ui.runs_panel import RunsPanel
from workbench.ui.tasks import Tasks
from workbench.ui.widgets import DevicesLabel

if TYPE_CHECKING:
    from workbench.store import Run, Store

POLL_MS = 500
MESSAGE_MS = 6000


class MainWindow(QMainWindow):
    def __init__(self, store: Store | None = None) -> None:
        super().__init__()
        self.setWindowTitle("ViT Workbench")
        self._store = store
        self.loaded = self.opening = False
        self.tasks = Tasks(self)
        self.settings = QSettings(str(paths.home() / "gui.ini"), QSettings.Format.IniFormat)
        if store is None:  # the store chosen in File → Store…, unless the environment names one
            apply_settings(self.settings)
        self.connection = Connection()
        self.closed = False
        geometry = self.settings.value("main/geometry")
        if geometry:
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 820)

        self.runs = RunsPanel()
        self.model, self.proxy, self.table = self.runs.model, self.runs.proxy, self.runs.table
        self.selected_runs, self.table_runs = self.runs.selected_runs, self.runs.table_runs
        self.select_run, self.select_runs = self.runs.select_run, self.runs.select_runs
        self.search, self.method_filter, self.status_filter = (self.runs.search, self.runs.method_filter,
                                                               self.runs.status_filter)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _: self.tabs.setCurrentIndex(1))
        self.runs.new_requested.connect(lambda: self.new_run())
        self.runs.studies_requested.connect(lambda: self.open_studies())
        self.runs.filters_changed.connect(self.poll)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        theme.follow(self.banner, lambda: self.banner.setStyleSheet(theme.banner_style(self.banner, "error")))
        self.banner.hide()
        self.tabs = QTabWidget()
        self.tabs.setMinimumWidth(480)  # not its pages' widest minimum: a long label must not widen the window
        self.tabs.addTab(QLabel("loading…"), "Curves")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 4, 4, 4)
        right_layout.addWidget(self.connection.banner)
        right_layout.addWidget(self.banner)
        right_layout.addWidget(self.tabs, 1)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.runs)
        self.splitter.addWidget(right)
        self.splitter.setSizes([640, 720])
        self.splitter.restoreState(self.settings.value("main/splitter", b""))
        self.setCentralWidget(self.splitter)

        self.devices_label = DevicesLabel()
        self.jobs_label = QLabel()
        self.statusBar().addPermanentWidget(self.connection.label)
        self.statusBar().addPermanentWidget(self.devices_label)
        self.statusBar().addPermanentWidget(self.jobs_label)
        build_menus(self)
        if self.theme_name() != "system":  # the system look needs nothing done
            theme.apply(self.theme_name())
        self._update_actions()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.poll)
        self.studies = None  # the Studies window, made when first opened

    # --------------------------------------------------------------- start-up
    def load(self) -> None:
        """The heavier half of start-up (database, plotting), after the window is visible: the store
        opens on a worker thread (`Connection.open`), then the views are built with it."""
        if self.loaded or self.closed:
            return
        if self.devices_label.process is None:  # what this machine trains on, whether the store opens or not
            self.devices_label.probe()
        if self._store is None:
            if not self.opening:
                self.opening = True
                self.connection.open(self.tasks.submit, self._store_opened, lambda: not self.closed)
            return
        from workbench.jobs import Runner, reconcile
        from workbench.studies import tick
        from workbench.ui.compare import CompareView
        from workbench.ui.curves import CurvesView
        from workbench.ui.details import RunDetailsView
        from workbench.ui.diagnostics_view import DiagnosticsView
        from workbench.ui.distill_view import DistillView
        from workbench.ui.inspect_view import InspectView
        from workbench.ui.log_view import LogView
        from workbench.ui.parallel import ParallelView
        from workbench.ui.snapshots import SnapshotsView

        self.store = self._store
        self.connection.opened(self.store)
        self.poller = Poller(self.tasks, self.connection, self._prepare_poll, self._show, self.say)
        self.runner = Runner(self.store, spare=os.environ.get("WORKBENCH_SPARE_WORKER", "1") != "0")
        self.schedule = lambda: tick(self.store, self.runner)  # the one scheduler, as everywhere
        self.parallel.attach(self.store, self.tasks.submit, self.say)
        self.curves = CurvesView(self.store, self.tasks.submit)
        self.curves.restore(dict(self.settings.value("curves/state", {}) or {}))
        self.curves.regrouped.connect(lambda: self.compare.show_runs(self.curves.runs, self.curves.groups))
        self.details = RunDetailsView(self.store, self.tasks.submit)
        self.details.open_run.connect(self.select_run)
        self.log = LogView()
        self.compare = CompareView(self.store, self.tasks.submit)
        self.snapshots = SnapshotsView(self.store, self.tasks.submit)
        self.inspect = InspectView(self.store, self.tasks)
        self.distill = DistillView(self.store, self.tasks.submit)
        self.diagnostics = DiagnosticsView(self.store, self.tasks.submit)
        self.coords = ParallelView()  # parallel coordinates (`self.parallel` is the parallel-runs box)
        self.coords.brushed.connect(self.select_runs)
        self.tabs.removeTab(0)
        for widget, title in ((self.curves, "Curves"), (self.snapshots, "Images"), (self.inspect, "Inspect"),
                              (self.diagnostics, "Diagnostics"), (self.distill, "Distillation"),
                              (self.details, "Details"), (self.log, "Log"),
                              (self.compare, "Compare"), (self.coords, "Parallel")):
            self.tabs.addTab(widget, title)
            if hasattr(widget, "message"):  # saved, copied, opened: say so where the user looks
                widget.message.connect(self.say)
        self.tabs.currentChanged.connect(lambda _: self._selection_changed())
        self.tabs.currentChanged.connect(lambda _: self.tabs.currentWidget() is self.coords and self.coords.show_runs(
            self.table_runs()))
        self.runs.restore_state(self.settings)
        self.loaded = True
        self.reconciled = False  # polls schedule (their tick would find them first, unsaid) once these are
        self.tasks.submit(lambda: reconcile(self.store), self._reconciled, self._reconciled)
        self.timer.start(POLL_MS)

    def _reconciled(self, lost: list[int] | str) -> None:
        """Said: the runs whose worker died since the last session, or why they could not be looked for."""
        self.reconciled = True
        if lost:
            self.statusBar().showMessage(f"Could not look for runs whose worker died: {lost}" if isinstance(lost, str) else
                                         f"Runs {', '.join(map(str, lost))} lost their worker since the last session "
                                         f"and are marked interrupted; Resume continues them.", 20000)
        self.poll(then=self._restore_selection)

    def _store_opened(self, store: Store) -> None:
        self._store = store
        try:
            self.load()
        except Exception:  # a bug, or settings it cannot read: said, not a window left waiting without a word
            QMessageBox.critical(self, "The window could not load", traceback.format_exc())
            raise

    def ready(self) -> bool:
        """Whether the store is open and the views built (said in the status bar when not yet)."""
        if not self.loaded:
            self.say("The store is not open yet: the banner says why, or wait a moment")
        return self.loaded

    def _restore_selection(self) -> None:
        """The tab and runs the window closed with, once the start's look for lost workers is done:
        not over a tab or runs the user chose meanwhile (rows show, and can be clicked, before it)."""
        if self.tabs.currentIndex() == 0:
            self.tabs.setCurrentIndex(int(self.settings.value("main/tab", 0)))
        if not self.selected_runs():
            self.select_runs([int(i) for i in (self.settings.value("main/selected", []) or []) if str(i).isdigit()])

    def _update_actions(self) -> None:
        runs = self.selected_runs() if self.loaded else []
        self.duplicate_action.setEnabled(bool(runs) and not self.runs.showing_trash())
        self.actions.update(runs, self.runs.showing_trash(), self.runs.showing_archive())

    def theme_name(self) -> str:
        """The theme chosen in View ▸ Theme (remembered per workbench home)."""
        name = str(self.settings.value("view/theme", "system"))
        return name if name in theme.THEMES else "system"

    def set_theme(self, name: str) -> None:
        """Switch to a theme and remember it; the plots and banners follow the new palette."""
        theme.apply(name)
        self.settings.setValue("view/theme", name)
        self.theme_actions[name].setChecked(True)

    def say(self, message: str) -> None:
        """Visible confirmation of what just happened (saved, copied, moved to the Trash…)."""
        self.statusBar().showMessage(message, MESSAGE_MS)

    # ---------------------------------------------------------------- polling
    def poll(self, then: Callable[[], None] | None = None) -> None:
        """Read the store off the GUI thread and show it (`Poller`); `then` runs once it is shown."""
        if self.loaded:
            self.poller.poll(then)

    @property
    def polling(self) -> bool:
        return self.loaded and self.poller.polling

    def _prepare_poll(self) -> Callable[[], tuple]:
        """What the next poll reads (on a worker thread): the scheduler's tick, then the run list's rows."""
        rows = self.runs.reader(self.store)

        def read() -> tuple:
            if self.reconciled:
                self.schedule()
            return rows()

        return read

    def _show(self, result: tuple) -> None:
        """What a poll read, on the GUI thread."""
        runs = self.runs.show_read(result)
        self._refresh_current(self.selected_runs())
        if self.studies is not None and self.studies.isVisible():
            self.studies.refresh()
        counts = Counter(r.status for r in runs)
        plural = "" if len(runs) == 1 else "s"
        self.jobs_label.setText(f"{len(runs)} run{plural} in the Trash" if self.runs.showing_trash() else
                                f"{len(runs)} archived run{plural}" if self.runs.showing_archive() else
                                f"{counts[RunStatus.RUNNING]} running · {counts[RunStatus.QUEUED]} queued · {len(runs)} run{plural}")
        self._update_actions()
        if self.tabs.currentWidget() is self.coords:  # it draws the table's runs, not the selection
            self.coords.show_runs(self.table_runs())

    def _selection_changed(self) -> None:
        if not self.loaded or self.connection.offline:  # the views would wait for a store that does not answer
            return
        runs = self.selected_runs()
        self.curves.set_runs({r.id: (f"{r.id} · {r.name}", r.method) for r in runs}, runs)  # compare follows
        self._refresh_current(runs)
        self._update_actions()

    def _refresh_current(self, runs: list[Run]) -> None:
        current = runs[-1] if runs else None
        failed = [r for r in runs if r.error and r.status in (RunStatus.FAILED, RunStatus.INTERRUPTED)]
        self.banner.setVisible(bool(failed))
        if failed:
            r = failed[-1]
            self.banner.setText(f"<b>Run {r.id} {r.status}.</b> {r.error.strip().splitlines()[-1]}"
                                + ("" if r.status not in RESUMABLE else " — Resume continues it." if r.step else
                                   " — Duplicate it to change a setting, or Resume to try it again as it is."))
            self.banner.setToolTip(r.error)
        shown = self.tabs.currentWidget()  # the heavier views follow the run only while visible
        self.details.show_run(current, links=shown is self.details)
        for view in (self.snapshots, self.inspect, self.diagnostics, self.distill):
            if view is shown:
                view.show_run(current)
        self.log.show_log(paths.run_dir(current.id, create=False) / "worker.log" if current else None)
        self.log.refresh()
        self.curves.refresh()

    # ---------------------------------------------------------------- actions
    def new_run(self, *, copy: Run | None = None) -> Run | None:
        """Open the new-experiment dialog: on the last method and preset chosen, or filled in as
        `copy` was (Duplicate), once what it offers is read from the store (on a worker thread)."""
        from workbench.ui.catalog import Catalog
        from workbench.ui.new_run_dialog import NewRunDialog

        if not self.ready():
            return None
        found = self.tasks.result(lambda: (Catalog.read(self.store), {} if copy is None else {
            role: p.id for role, p in self.store.parents(copy.id).items()}), self.say)
        if found is None or self.closed:  # closed while it read
            return None
        if copy is None:
            dialog = NewRunDialog(self.store, self, method=str(self.settings.value("new/method", "vit")),
                                  preset=str(self.settings.value("new/preset", "tiny")), catalog=found[0],
                                  selected=[r.id for r in self.selected_runs()])
        else:
            dialog = NewRunDialog(self.store, self, method=copy.method, preset=None, values=copy.config,
                                  parents=found[1], name=f"{copy.name} (copy)", catalog=found[0])
        self.tasks.submit(self.runner.warm)  # a worker imports torch while the user fills the form
        self.dialog = dialog  # tests drive it
        if dialog.exec() and dialog.created is not None:
            self.settings.setValue("new/method", dialog.created.method)
            if dialog.chosen_preset is not None:  # a duplicate's values are no preset choice
                self.settings.setValue("new/preset", dialog.chosen_preset)
            self.poll(then=lambda run_id=dialog.created.id: self.select_run(run_id))
            self.say(f"Run {dialog.created.id} queued: {dialog.created.name}")
            return dialog.created
        return None

    def duplicate_run(self) -> Run | None:
        runs = self.selected_runs()
        return self.new_run(copy=runs[-1]) if runs else None

    def open_store_settings(self) -> StoreDialog:
        dialog = StoreDialog(self.settings, self.store if self.loaded else None, self.tasks, self)
        dialog.accepted.connect(lambda: self.say("Saved: the workbench opens that store at its next start"))
        dialog.open()
        self.store_dialog = dialog  # tests drive it
        return dialog

    def open_datasets(self):
        from workbench.ui.datasets_dialog import DatasetsDialog

        if not self.ready():
            return None
        self.datasets_dialog = DatasetsDialog(self.store, self)
        self.datasets_dialog.show()
        return self.datasets_dialog

    def open_studies(self):
        from workbench.ui.studies_view import StudiesView
        from workbench.ui.widgets import place_on_screen

        if not self.ready():
            return None
        if self.studies is None:
            self.studies = StudiesView(self.store, self.tasks, self, parallel=self.parallel.value())
            self.studies.open_run.connect(lambda run_id: self._show_runs(run_id=run_id))
            self.studies.show_runs.connect(self._show_runs)
            place_on_screen(self.studies, self)
        self.studies.show()
        self.studies.raise_()
        self.studies.refresh()
        return self.studies

    def _show_runs(self, search: str = "", run_id: int | None = None) -> None:
        """Come forward on the runs a search finds, or on one run (the studies window's links)."""
        self.search.setText(search)
        if run_id is not None:
            self.select_run(run_id)
        self.raise_()
        self.activateWindow()

    def about(self):
        from workbench.ui.about import show_about

        self.about_box = show_about(self)
        return self.about_box

    def open_readme(self) -> None:
        from workbench.ui.about import open_readme

        open_readme(self.about)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.closed = True
        self.settings.setValue("main/geometry", self.saveGeometry())
        self.settings.setValue("main/splitter", self.splitter.saveState())
        if self.loaded:
            self.settings.setValue("curves/state", self.curves.state())
            self.settings.setValue("main/tab", self.tabs.currentIndex())
            self.settings.setValue("main/selected", [r.id for r in self.selected_runs()])
            self.runs.save_state(self.settings)
            self.inspect.process.stop()
            import shutil

            shutil.rmtree(self.inspect.workdir, ignore_errors=True)
        self.timer.stop()
        for other in (self.studies, getattr(self, "datasets_dialog", None)):
            if other is not None:  # a window of its own would keep the app running after this one
                other.close()
        self.devices_label.stop()
        if self.loaded:
            self.details.keep_typed()  # notes typed and not saved: written before the window goes
        self.tasks.wait(5000)
        if self.loaded:
            self.runner.close()  # its spare worker; the runs' workers go on
        super().closeEvent(event)

