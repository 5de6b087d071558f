"""`CompareView`: the selected runs side by side, like a hyper-parameter table: one row per
run, each evaluation metric's final and best value first (what runs are judged by), then a
column for every config value that differs between them. Numbers are formatted (counts as
whole numbers, scores to four places). Click a header to sort: "which mask ratio won?"."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench import fmt
from workbench.methods import config_class
from workbench.store import Run, Store


class Cell(QTableWidgetItem):
    """A cell that sorts by number when it holds one."""

    def __init__(self, value: object) -> None:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        super().__init__(fmt.number(value) if numeric else str(value))
        self.key = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, Cell) and self.key is not None and other.key is not None:
            return self.key < other.key
        return self.text() < other.text()


class CompareView(QWidget):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.hint = QLabel("select two or more runs to compare them")
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.table)

    def show_runs(self, runs: list[Run]) -> None:
        self.table.setSortingEnabled(False)
        keys = sorted({k for r in runs for k in r.config})
        differing = [k for k in keys if len({repr(r.config.get(k)) for r in runs}) > 1]
        first = {config_class(r.method).key_metric for r in runs}  # what the runs are judged by, first
        metrics = sorted({k for r in runs for k in r.results}, key=lambda k: (k not in first, k))
        extremes = {r.id: self.store.metric_extremes(r.id) for r in runs}
        columns = ["run", "method"]
        tracked = [k for k in metrics if k.startswith("val/")]  # a curve, so final and best differ
        for key in metrics:
            columns += [f"{key} (final)", f"{key} (best)"] if key in tracked else [key]
        columns += differing
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(runs))
        for row, run in enumerate(runs):
            values: list[object] = [f"{run.id} · {run.name}", run.method]
            for key in metrics:
                low, high = extremes[run.id].get(key, (None, None))
                best = high if fmt.higher_is_better(key) else low
                values += [run.summary.get(key, "")] + (["" if best is None else best] if key in tracked else [])
            values += [run.config.get(k, "") for k in differing]
            for col, value in enumerate(values):
                self.table.setItem(row, col, Cell(value))
        self.table.resizeColumnsToContents()
        self.table.setSortingEnabled(True)
        self.hint.setText(f"{len(runs)} runs · {len(differing)} config values differ"
                          if len(runs) > 1 else "select two or more runs to compare them")
        self.table.sortItems(0, Qt.SortOrder.AscendingOrder)
