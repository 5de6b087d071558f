"""`RunsPanel`: the run browser on the left of the main window: filters, the run table and,
before the first run, a hint of what to do first.

The table is the user's: names elide (full name in the tooltip), columns move by drag, and a
right-click on the header shows, hides, adds (any config field, any metric's final or best
value, as trackers compare runs) or removes columns. Order, widths, hidden columns, added
columns and the sort survive a restart (`save_state` / `restore_state`). Each poll re-reads only
the runs that changed (`reader`); the selection is read and set here too."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable, Iterator

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QPoint,
    QSettings,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.methods import METHOD_CONFIGS
from workbench.ui.runs_table import (
    BASE_COLUMNS,
    STATUS_COLOURS,
    RunsFilterProxy,
    RunsTableModel,
    column_title,
)
from workbench.ui.widgets import NAME_WIDTH

if TYPE_CHECKING:
    from workbench.store import Run, Store

TRASH = "Trash"
ARCHIVE = "Archived"
WIDE = ("Name", "Tags")
FIRST_STEPS = ("<h3>No runs yet</h3><p>Start with <b>New experiment</b> (Ctrl+N): the <i>tiny</i> preset of "
               "<b>mae</b> trains on the built-in dataset in about a minute on a laptop CPU and shows its "
               "reconstructions as it learns.</p><p>Or reproduce a paper's ablation in one click with "
               "<b>Studies</b> (Ctrl+Shift+S).</p><p>Your own images: <b>Datasets</b> (Ctrl+Shift+D).</p>")


class RunsPanel(QWidget):
    new_requested = Signal()
    studies_requested = Signal()
    filters_changed = Signal()  # the Trash was chosen or left: the window lists other runs

    def __init__(self) -> None:
        super().__init__()
        self.model = RunsTableModel()
        self.proxy = RunsFilterProxy()
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # a study's runs differ at the end of their names ("sweep-1 · vit pos_embed=none seed=1"): keep both ends
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionsMovable(True)
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self.header_menu)
        self.fitted = False  # columns are fitted to their contents once, then widened as their contents grow ...
        self.user_sized: set[str] = set()  # ... until the user sizes them (a run's first metric widens its column)
        self._sizing = False  # the panel, not the user, is sizing columns
        header.sectionResized.connect(self._section_resized)
        self.best_seen: dict[int, tuple[int, str]] = {}  # run id -> (step, status) its best values are from
        self.listing = (False, False)  # (Trash, archive): which list the rows and their signatures are of
        self._order: list[int] | None = None  # the model's rows in the table's order (`table_runs`)
        for model in (self.model, self.proxy):  # a row hidden by the filters moves the model's rows too
            for signal in (model.rowsInserted, model.rowsRemoved, model.rowsMoved, model.layoutChanged,
                           model.modelReset):
                signal.connect(self._forget_order)

        self.search = QLineEdit()
        self.search.setPlaceholderText("filter: name, id, tags (study:3), notes…")
        self.search.setClearButtonEnabled(True)
        self.method_filter = QComboBox()
        self.method_filter.addItems(["all methods", *METHOD_CONFIGS])
        self.status_filter = QComboBox()
        self.status_filter.addItems(["all statuses", *STATUS_COLOURS])
        self.status_filter.insertSeparator(self.status_filter.count())
        self.status_filter.addItem(TRASH)
        self.status_filter.setItemData(self.status_filter.count() - 1,
                                       "runs moved to the Trash: restore them, or delete them for good",
                                       Qt.ItemDataRole.ToolTipRole)
        self.status_filter.addItem(ARCHIVE)
        self.status_filter.setItemData(self.status_filter.count() - 1,
                                       "archived runs: kept as they are, hidden from the other views",
                                       Qt.ItemDataRole.ToolTipRole)
        self.search.textChanged.connect(lambda t: self.proxy.set_filters(text=t))
        self.method_filter.currentIndexChanged.connect(
            lambda i: self.proxy.set_filters(method="" if i == 0 else self.method_filter.currentText()))
        self.status_filter.currentIndexChanged.connect(self._status_chosen)

        self.hint = QLabel(FIRST_STEPS)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        new_button = QPushButton("New experiment…")
        new_button.clicked.connect(self.new_requested)
        studies_button = QPushButton("Studies…")
        studies_button.clicked.connect(self.studies_requested)
        self.hint_page = QWidget()
        hint_layout = QVBoxLayout(self.hint_page)
        hint_layout.addStretch(1)
        hint_layout.addWidget(self.hint)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(new_button)
        buttons.addWidget(studies_button)
        buttons.addStretch(1)
        hint_layout.addLayout(buttons)
        hint_layout.addStretch(2)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.hint_page)

        filters = QHBoxLayout()
        filters.addWidget(self.search, 2)
        filters.addWidget(self.method_filter, 1)
        filters.addWidget(self.status_filter, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 0, 4)
        layout.addLayout(filters)
        layout.addWidget(self.stack)

    # ------------------------------------------------------------------ rows
    def showing_trash(self) -> bool:
        return self.status_filter.currentText() == TRASH

    def showing_archive(self) -> bool:
        return self.status_filter.currentText() == ARCHIVE

    def _status_chosen(self, index: int) -> None:
        text = self.status_filter.currentText()
        self.proxy.set_filters(status="" if index == 0 or text in (TRASH, ARCHIVE) else text)
        self.filters_changed.emit()

    def reader(self, store: Store) -> Callable[[], tuple]:
        """The read of a poll (run on a worker thread; `show_read` shows what it returns): each run's
        signature, then only the runs whose signature moved since the table showed them, and the best
        values of the runs that moved, for the table's columns as they are now."""
        trash, archive, keys = self.showing_trash(), self.showing_archive(), self.model.best_keys()
        seen, model = dict(self.best_seen), self.model
        known = dict(zip([r.id for r in model.runs], model.signatures)) if (trash, archive) == self.listing else {}
        rows = {r.id: r for r in model.runs}

        def read() -> tuple:
            signatures = store.run_signatures(trashed=trash, archived=archive)
            moved = [i for i, sig in signatures.items() if known.get(i) != sig]  # the rest: as shown now
            fresh = (store.runs_by_id(moved) if len(moved) < 500 else  # the IN list stays short
                     {r.id: r for r in store.list_runs(trashed=trash, archived=archive)}) if moved else {}
            runs = [fresh.get(i) or rows[i] for i in signatures]
            changed = {r.id: (r.step, r.status) for r in runs if seen.get(r.id) != (r.step, r.status)} if keys else {}
            return (runs, list(signatures.values()), (trash, archive), keys, changed,
                    store.metric_ranges(list(changed), keys) if changed else {})

        return read

    def show_read(self, result: tuple) -> list[Run]:
        """Show what `reader`'s read returned; the runs."""
        runs, signatures, self.listing, keys, changed, best = result
        self.set_runs(runs, signatures)
        if keys == self.model.best_keys():  # not columns changed meanwhile
            self.set_best(best, changed)
        return runs

    def set_runs(self, runs: list[Run], signatures: list[tuple] | None = None) -> None:
        changed = self.model.set_runs(runs, signatures)
        first_steps = not runs and not self.showing_trash() and not self.showing_archive()
        self.stack.setCurrentWidget(self.hint_page if first_steps else self.table)
        if runs and not self.fitted:
            self.fit_columns()
        elif runs and changed != []:
            self.widen_columns(changed)

    def selected_runs(self) -> list[Run]:
        """The selected runs, in the table's model order."""
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.run_at(r) for r in rows]

    def table_runs(self) -> list[Run]:
        """The runs the table shows now (its filters applied), in its order (the rows' order is kept
        until a row comes, goes or moves: mapping 5,000 rows took 20 ms at each poll of the Parallel tab)."""
        if self._order is None:
            self._order = [self.proxy.mapToSource(self.proxy.index(row, 0)).row() for row in range(self.proxy.rowCount())]
        return [self.model.run_at(row) for row in self._order]

    def _forget_order(self, *_: object) -> None:
        self._order = None

    def select_runs(self, run_ids: list[int]) -> None:
        """Make these runs the table's selection (parallel coordinates' brushing, the selection a
        window comes back with) in one change: row by row, each row rebuilt the views."""
        rows = {r.id: i for i, r in enumerate(self.model.runs)}
        chosen = QItemSelection()
        for run_id in run_ids:
            if run_id in rows:
                index = self.proxy.mapFromSource(self.model.index(rows[run_id], 0))
                chosen.select(index, index)
        flags = QItemSelectionModel.SelectionFlag
        self.table.selectionModel().select(chosen, flags.ClearAndSelect | flags.Rows)

    def select_run(self, run_id: int) -> None:
        """Select the run's row and make it current. Never through `selectRow`, which reads the
        keyboard's modifiers: with Ctrl held (or left so by the last key event) it toggled, and a
        run just created, selected twice, ended unselected. A run the filter hides leaves the
        selection as it is (selecting it cleared it, showing nothing)."""
        row = self.model.row_of(run_id)
        if row is None:
            return
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return
        flags = QItemSelectionModel.SelectionFlag
        self.table.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)

    def fit_columns(self, columns: list[int] | None = None) -> None:
        """Fit columns to their contents; names and tags no wider than NAME_WIDTH."""
        self.fitted = True
        with self._panel_sizing():
            for col in columns if columns is not None else range(self.model.columnCount()):
                self.table.resizeColumnToContents(col)
                if self.model.columns[col] in WIDE:
                    self.table.setColumnWidth(col, min(self.table.columnWidth(col), NAME_WIDTH))

    def widen_columns(self, rows: list[int] | None = None) -> None:
        """Widen the columns the user has not sized to what these model rows (None: the rows in view)
        now hold, as a run's first key metric; never narrower, names and tags to NAME_WIDTH. Only
        changed rows are measured: a poll with a run training changes one row, not the table."""
        if rows is None:
            first = max(self.table.rowAt(0), 0)
            last = self.table.rowAt(self.table.viewport().height() - 1)
            shown = range(first, (last if last >= 0 else self.proxy.rowCount() - 1) + 1)
        else:
            shown = [i.row() for i in (self.proxy.mapFromSource(self.model.index(r, 0)) for r in rows) if i.isValid()]
        if not shown:
            return
        header, grid = self.table.horizontalHeader(), int(self.table.showGrid())
        with self._panel_sizing():
            for col, column in enumerate(self.model.columns):
                if column in self.user_sized or header.isSectionHidden(col):
                    continue
                wanted = max(self.table.sizeHintForIndex(self.proxy.index(row, col)).width() for row in shown) + grid
                if column in WIDE:
                    wanted = min(wanted, NAME_WIDTH)
                if wanted > self.table.columnWidth(col):
                    self.table.setColumnWidth(col, wanted)

    @contextlib.contextmanager
    def _panel_sizing(self) -> Iterator[None]:
        self._sizing = True
        try:
            yield
        finally:
            self._sizing = False

    def _section_resized(self, col: int, _old: int, _new: int) -> None:
        header = self.table.horizontalHeader()
        if not self._sizing and col != header.logicalIndex(header.count() - 1):  # the last one stretches
            self.user_sized.add(self.model.columns[col])

    def set_best(self, ranges: dict[int, dict[str, tuple[float, float]]], changed: dict[int, tuple[int, str]]) -> None:
        """The best values the table's columns show, fetched (by the window's poll) for the runs that
        moved since the last fetch: `changed` maps each to the (step, status) they are from."""
        if changed:
            self.model.set_best(ranges)
            self.best_seen.update(changed)

    # ---------------------------------------------------------------- columns
    def header_menu(self, pos: QPoint) -> QMenu:
        """Show/hide every column, add config fields or metrics as columns, remove an added one."""
        header = self.table.horizontalHeader()
        clicked = header.logicalIndexAt(pos)
        menu = QMenu(self)
        for col, column in enumerate(self.model.columns):
            action = menu.addAction(column_title(column))
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(col))
            action.setEnabled(column != "ID")  # one column always stays, to click and select by
            action.toggled.connect(lambda on, c=col: header.setSectionHidden(c, not on))
        menu.addSeparator()
        runs = self.model.runs
        have = set(self.model.columns)
        fields = sorted({k for r in runs for k in r.config} - {"dataset"})
        add_config = menu.addMenu("Add config column")
        for name in fields:
            if f"config:{name}" not in have:
                add_config.addAction(name, lambda n=name: self.add_column(f"config:{n}"))
        add_config.setEnabled(not add_config.isEmpty())
        add_metric = menu.addMenu("Add metric column")
        for key in sorted({k for r in runs for k in r.results}):
            for kind in ("final", "best") if key.startswith("val/") else ("final",):  # others have no curve
                if f"{kind}:{key}" not in have:
                    add_metric.addAction(column_title(f"{kind}:{key}"), lambda c=f"{kind}:{key}": self.add_column(c))
        add_metric.setEnabled(not add_metric.isEmpty())
        if clicked >= len(BASE_COLUMNS):
            column = self.model.columns[clicked]
            menu.addAction(f"Remove column “{column_title(column)}”", lambda: self.remove_column(column))
        menu.addAction("Reset columns", self.reset_columns)
        if self.isVisible():
            menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one is made per right-click
            menu.popup(header.mapToGlobal(pos))
        return menu

    def add_column(self, column: str) -> None:
        self._rebuild_columns([*self.model.extra_columns(), column])
        self.fit_columns([len(self.model.columns) - 1])
        self.table.scrollTo(self.proxy.index(0, len(self.model.columns) - 1))  # show what was added

    def remove_column(self, column: str) -> None:
        self._rebuild_columns([c for c in self.model.extra_columns() if c != column])

    def reset_columns(self) -> None:
        header = self.table.horizontalHeader()
        self.user_sized.clear()
        self._rebuild_columns([])
        for col in range(self.model.columnCount()):
            header.setSectionHidden(col, False)
            header.moveSection(header.visualIndex(col), col)
        self.fit_columns()

    def _rebuild_columns(self, extras: list[str]) -> None:
        """Change the added columns; the base columns keep their order, widths and visibility."""
        header = self.table.horizontalHeader()
        kept = {self.model.columns[c]: (header.visualIndex(c), header.sectionSize(c), header.isSectionHidden(c))
                for c in range(self.model.columnCount())}
        with self._panel_sizing():
            self.model.set_extra_columns(extras)
            self.best_seen.clear()
            order = sorted(range(self.model.columnCount()),
                           key=lambda c: kept.get(self.model.columns[c], (10_000 + c,))[0])
            for visual, col in enumerate(order):
                header.moveSection(header.visualIndex(col), visual)
                if self.model.columns[col] in kept:
                    _, size, hidden = kept[self.model.columns[col]]
                    header.resizeSection(col, size)
                    header.setSectionHidden(col, hidden)

    # ------------------------------------------------------------------ state
    def save_state(self, settings: QSettings) -> None:
        settings.setValue("runs/columns", self.model.extra_columns())
        settings.setValue("runs/header", self.table.horizontalHeader().saveState())
        settings.setValue("runs/sized", sorted(self.user_sized))

    def restore_state(self, settings: QSettings) -> None:
        extras, sized = (settings.value(key, []) or [] for key in ("runs/columns", "runs/sized"))
        self.user_sized = {sized} if isinstance(sized, str) else set(sized)  # QSettings: one item comes back bare
        state = settings.value("runs/header")
        with self._panel_sizing():
            self.model.set_extra_columns([extras] if isinstance(extras, str) else list(extras))
            if state is not None and self.table.horizontalHeader().restoreState(state):
                self.fitted = True
