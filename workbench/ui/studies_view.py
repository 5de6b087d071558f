"""`StudiesView`: the studies window. Every study with its status and progress; for the selected
one, the results table (sortable; saved as CSV or Markdown with the verdicts, or copied), a plot
of the swept field against a result column beside what the paper found and whether its claims
held here, and each member run with what it is doing or why it was not started. Start studies
from templates or custom sweeps; cancel, resume or forget them. Everything is read off the GUI
thread; the window's runner (the main window's) starts the runs as their parents finish.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench import fmt
from workbench.store import Store
from workbench.studies import (
    Overview,
    Table,
    Verdict,
    cancel_study,
    claims_for,
    delete_study,
    overview,
    results,
    resume_study,
    to_csv_with,
    to_markdown_with,
    verdicts,
)
from workbench.ui import theme
from workbench.ui.compare import Cell
from workbench.ui.study_chart import StudyChart
from workbench.ui.tasks import Tasks
from workbench.ui.widgets import closes_with_keys, confirm, fit_columns

STUDY_COLUMNS = ("id", "name", "template", "budget", "status", "progress")
MEMBER_COLUMNS = ("member", "run", "status", "progress", "key metric", "note")
NO_STUDY = "no study selected: New study… starts one from a paper's ablation or your own sweep"
STATUS_COLOURS = {"finished": "#2e7d32", "running": "#1565c0", "stopped": "#b3261e", "cancelled": "#757575"}


class StudiesView(QWidget):
    open_run = Signal(int)  # double-clicked member: show its run in the main window
    show_runs = Signal(str)  # filter text that lists a study's runs in the main window

    def __init__(self, store: Store, tasks: Tasks, parent: QWidget | None = None, parallel: int = 2) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Studies")
        self.resize(1280, 800)
        self.store, self.tasks, self.parallel = store, tasks, parallel
        self.views: list[Overview] = []
        self.table_data: Table | None = None
        self.verdict_data: list[Verdict] = []  # the claims of the study shown, judged on table_data
        self._loading = False
        self._select_next: int | None = None  # a study just created: selected once it is loaded
        self._results_of: int | None = None  # the study the results table shows
        self._listed: list[tuple] = []  # what the study list shows, and
        self._shown: tuple | None = None  # what the detail shows: rebuilt only when they change

        self.new_button = QPushButton("New study…")
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        self.delete_button = QPushButton("Delete…")
        self.runs_button = QPushButton("Show runs")
        self.csv_button = QPushButton("Save CSV…")
        self.md_button = QPushButton("Save Markdown…")
        self.copy_button = QPushButton("Copy table")
        self.cancel_button.setToolTip("cancel the study's queued and running runs; it starts nothing more")
        self.resume_button.setToolTip("queue its failed, cancelled and interrupted runs again; blocked stages go on")
        self.delete_button.setToolTip("forget the study; its runs stay in the run list")
        self.runs_button.setToolTip("list this study's runs in the main window")
        self.copy_button.setToolTip("copy the results, and the verdicts on the paper's claims, as Markdown")
        self.new_button.clicked.connect(self.new_study)
        self.cancel_button.clicked.connect(self.cancel_current)
        self.resume_button.clicked.connect(self.resume_current)
        self.delete_button.clicked.connect(self.delete_current)
        self.runs_button.clicked.connect(self._show_runs)
        self.csv_button.clicked.connect(lambda: self.save_table("csv"))
        self.md_button.clicked.connect(lambda: self.save_table("md"))
        self.copy_button.clicked.connect(self.copy_table)
        bar = QHBoxLayout()
        for b in (self.new_button, self.cancel_button, self.resume_button, self.delete_button, self.runs_button):
            bar.addWidget(b)
        bar.addStretch(1)
        self.feedback = QLabel()  # "saved", "copied": said where the user looks
        theme.colour_text(self.feedback, "ok")
        bar.addWidget(self.feedback)
        for b in (self.csv_button, self.md_button, self.copy_button):
            bar.addWidget(b)

        self.list = _table(STUDY_COLUMNS)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.itemSelectionChanged.connect(self._show_current)
        self.title = QLabel(NO_STUDY)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.results = _table(())
        self.results.setSortingEnabled(True)
        self.members = _table(MEMBER_COLUMNS)
        self.members.doubleClicked.connect(self._member_clicked)
        detail_tabs = QTabWidget()
        detail_tabs.addTab(self.results, "Results")
        detail_tabs.addTab(self.members, "Runs")

        self.chart = StudyChart()

        right = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.title)
        top_layout.addWidget(detail_tabs, 1)
        right.addWidget(top)
        right.addWidget(self.chart)
        right.setSizes([330, 430])  # the plot, the paper's text and the verdicts want the room
        split = QSplitter()
        split.addWidget(self.list)
        split.addWidget(right)
        split.setSizes([430, 850])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._buttons()
        closes_with_keys(self)

    # -------------------------------------------------------------- loading
    def refresh(self) -> None:
        """Re-read every study off the GUI thread (skipped while a read is in flight)."""
        if self._loading:
            return
        self._loading = True

        def load() -> tuple[list[Overview], int]:
            return [overview(self.store, s.id) for s in self.store.list_studies()], self.store.max_concurrent()

        self.tasks.submit(load, lambda read: self._loaded(*read), self._load_failed)

    def _loaded(self, views: list[Overview], machine: int) -> None:
        """`machine`: how many runs this machine trains at once (the window's parallel runs)."""
        self._loading = False
        self.parallel = machine  # a new study's default, and what the header compares each study's with
        chosen, self._select_next = self._select_next or self.current_id(), None
        self.views = views
        listed = [(v.study.id, v.study.name, v.status, round(v.progress(), 2)) for v in views]
        if listed == self._listed and chosen == self.current_id():  # nothing new: keep zoom and selections
            self._show_current()
            return
        self._listed = listed
        self.list.blockSignals(True)
        self.list.setRowCount(len(views))
        for row, v in enumerate(reversed(views)):  # newest first
            status_colour = STATUS_COLOURS.get(v.status, "#000")
            for col, value in enumerate((v.study.id, v.study.name, v.study.template or "sweep", v.study.budget or "-",
                                         v.status, f"{v.progress():.0%}")):
                item = Cell(value)
                if col == 1:
                    item.setToolTip(v.study.name)  # elided past NAME_WIDTH
                if col == 4:
                    item.setForeground(pg.mkColor(status_colour))
                self.list.setItem(row, col, item)
            if v.study.id == chosen:
                self.list.selectRow(row)
        if self.list.currentRow() < 0 and views:
            self.list.selectRow(0)
        self.list.blockSignals(False)
        fit_columns(self.list, (STUDY_COLUMNS.index("name"),))
        self._show_current()

    def _load_failed(self, message: str) -> None:
        self._loading = False
        self.title.setText(f"<span style='color:{theme.text_colour(self, 'error')}'>{message}</span>")

    def current(self) -> Overview | None:
        rows = self.list.selectionModel().selectedRows()
        if not rows:
            return None
        study_id = int(self.list.item(rows[0].row(), 0).text())
        return next((v for v in self.views if v.study.id == study_id), None)

    def current_id(self) -> int | None:
        view = self.current()
        return view.study.id if view else None

    # -------------------------------------------------------------- showing
    def _show_current(self) -> None:
        view = self.current()
        self._buttons()
        if view is None:  # no study (left): an empty detail
            self._shown = self.table_data = None
            self.verdict_data = []
            self.title.setText(NO_STUDY)
            for table_widget in (self.results, self.members):
                table_widget.setRowCount(0)
            self.chart.show_table(None, "")
            return
        s = view.study
        table = results(view)
        shown = (s.id, view.status, repr(table.rows), [(m.state, m.note, m.run_id) for m in view.members],
                 self.parallel)
        progress = [(r.status, r.step) for r in view.runs.values()]
        if (shown, progress) == self._shown:  # unchanged since the last poll: leave the plot's zoom and the tables be
            return
        new_results = shown != (self._shown or (None,))[0]  # not only a member's step: every poll while one trains
        self._shown = (shown, progress)
        counts = ", ".join(f"{n} {k}" for k, n in view.counts().items() if n)
        self.title.setText(f"<b>{s.id} · {s.name}</b> — {s.template or 'custom sweep'}, "
                           f"{s.budget or 'defaults'} budget, {view.status} ({counts}); "
                           f"{s.parallel} at a time"
                           + (f" (this machine trains {self.parallel} at once: parallel runs in the main window)"
                              if self.parallel < s.parallel and view.status == "running" else "")
                           + f"<br>{s.spec.get('description', '')}")
        self._fill_members(view)
        if new_results:  # the chart is drawn again (its zoom reset) only when what it shows changed
            self.table_data, self.verdict_data = table, verdicts(table, claims_for(s.template))
            self._fill_results(table, s.id)
            self.chart.show_table(table, s.spec.get("paper_trend") or "a custom sweep: no published trend or claims "
                                  "to compare with", self.verdict_data)

    def _fill_results(self, table: Table, study_id: int) -> None:
        header = self.results.horizontalHeader()
        same = study_id == self._results_of  # keep the user's sort while the same study refreshes
        sort = (header.sortIndicatorSection(), header.sortIndicatorOrder()) if same else (0, Qt.SortOrder.AscendingOrder)
        self._results_of = study_id
        self.results.setSortingEnabled(False)
        self.results.clear()
        self.results.setColumnCount(len(table.header))
        self.results.setHorizontalHeaderLabels(table.header)
        self.results.setRowCount(len(table.rows))
        italic = QFont()
        italic.setItalic(True)
        for r, (row, reference) in enumerate(zip(table.rows, table.reference)):
            for c, value in enumerate(row):
                item = Cell(value, setting=c < len(table.sweep_fields))  # as swept (0.25), not as a metric (0.2500)
                if reference:
                    item.setFont(italic)
                    item.setToolTip("a shared stage, for reference (not a sweep point)")
                self.results.setItem(r, c, item)
        fit_columns(self.results, sortable=True)
        if 0 <= sort[0] < len(table.header):
            self.results.sortItems(*sort)

    def _fill_members(self, view: Overview) -> None:
        self.members.setRowCount(len(view.members))
        for r, m in enumerate(view.members):
            run = view.run_of(m)
            values = (m.name, run.id if run else "", run.status if run else view.member_state(m),
                      f"{run.progress:.0%}" if run else "", fmt.key_metric(run) if run else "", m.note)
            for c, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                item.setData(Qt.ItemDataRole.UserRole, run.id if run else None)
                if c == 0:  # the name, elided past NAME_WIDTH, in full (and the note under it)
                    item.setToolTip("\n".join(filter(None, (m.name, m.note))))
                elif m.note:
                    item.setToolTip(m.note)
                self.members.setItem(r, c, item)
        fit_columns(self.members, (MEMBER_COLUMNS.index("member"),))

    # -------------------------------------------------------------- actions
    def _buttons(self) -> None:
        view = self.current()
        status = view.status if view else None
        self.cancel_button.setEnabled(status == "running")
        self.resume_button.setEnabled(status in ("stopped", "cancelled"))
        self.delete_button.setEnabled(status is not None and status != "running")
        for b in (self.runs_button, self.csv_button, self.md_button, self.copy_button):
            b.setEnabled(view is not None)

    def new_study(self):
        from workbench.ui.catalog import Catalog
        from workbench.ui.new_study_dialog import NewStudyDialog

        catalog = self.tasks.result(lambda: Catalog.read(self.store),
                                    lambda msg: QMessageBox.warning(self, "Cannot open the form", msg))
        if catalog is None:
            return None
        self.dialog = NewStudyDialog(self.store, self, parallel=self.parallel, catalog=catalog)
        if self.dialog.exec() and self.dialog.created is not None:
            self._select_next = self.dialog.created.id
            self.refresh()
        return self.dialog.created

    def cancel_current(self) -> None:
        view = self.current()
        if view is None:
            return
        self.cancel_button.setEnabled(False)
        self.tasks.submit(lambda: cancel_study(self.store, view.study.id), lambda _: self.refresh(),
                          lambda msg: QMessageBox.warning(self, "Not cancelled", msg))

    def resume_current(self) -> None:
        view = self.current()
        if view is not None:
            self.resume_button.setEnabled(False)
            self.tasks.submit(lambda: resume_study(self.store, view.study.id), lambda _: self.refresh(),
                              lambda msg: QMessageBox.warning(self, "Not resumed", msg))

    def delete_current(self) -> None:
        view = self.current()
        if view is None or not confirm(self, "Delete study", f"Forget study {view.study.id} ({view.study.name})?",
                                       "Forget study", detail="Its runs stay in the run list, as ordinary runs."):
            return
        self.delete_button.setEnabled(False)
        self.tasks.submit(lambda: delete_study(self.store, view.study.id), lambda _: self.refresh(),
                          lambda msg: QMessageBox.warning(self, "Not deleted", msg))

    def save_table(self, kind: str, path: str | None = None) -> None:
        if self.table_data is None:
            return
        if path is None:
            name = (self.current().study.name if self.current() else "study") + (".csv" if kind == "csv" else ".md")
            path, _ = QFileDialog.getSaveFileName(self, "Save results", name)
            if not path:
                return
        text = (to_csv_with if kind == "csv" else to_markdown_with)(self.table_data, self.verdict_data)
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            QMessageBox.warning(self, "Not saved", f"cannot write {path}: {exc}")
            return
        self.say(f"Saved the results to {path}")

    def copy_table(self) -> None:
        if self.table_data is not None:
            QGuiApplication.clipboard().setText(to_markdown_with(self.table_data, self.verdict_data))
            self.say("Copied the results (and verdicts) as Markdown")

    def say(self, message: str) -> None:
        self.feedback.setText(message)
        # bound to the label: a window closed within the 6 s drops the call instead of raising
        QTimer.singleShot(6000, self.feedback, lambda: self.feedback.text() == message and self.feedback.clear())

    def _show_runs(self) -> None:
        view = self.current()
        if view is not None:
            self.show_runs.emit(f"study:{view.study.id}")  # the tag of every run the study made

    def _member_clicked(self, index) -> None:
        run_id = self.members.item(index.row(), 0).data(Qt.ItemDataRole.UserRole)
        if run_id is not None:
            self.open_run.emit(int(run_id))


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # names differ at their ends (…seed=1)
    table.setWordWrap(False)  # one line, elided: a wrapped name was cut after its second line
    return table
