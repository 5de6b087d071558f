"""The run browser's model: `RunsTableModel` (rows updated in place, so selection survives
polling) and `RunsFilterProxy` (sort by any column, filter by method, status and text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor

from workbench import fmt

if TYPE_CHECKING:
    from workbench.store import Run

STATUS_COLOURS = {
    "queued": "#8a8f98", "running": "#2f7fd8", "finished": "#2e9d57",
    "failed": "#d64545", "cancelled": "#d9862b", "interrupted": "#8d5bd6",
}
COLUMNS = ("ID", "Name", "Method", "Dataset", "Status", "Progress", "Device", "Key metric", "Started", "Duration")
SORT_ROLE = Qt.ItemDataRole.UserRole
Index = QModelIndex | QPersistentModelIndex


class RunsTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []

    def set_runs(self, runs: list[Run]) -> None:
        """Replace the rows; a change in the set of runs resets the model, otherwise cells update."""
        if [r.id for r in runs] != [r.id for r in self.runs]:
            self.beginResetModel()
            self.runs = runs
            self.endResetModel()
        else:
            self.runs = runs
            if runs:
                self.dataChanged.emit(self.index(0, 0), self.index(len(runs) - 1, len(COLUMNS) - 1))

    def run_at(self, row: int) -> Run:
        return self.runs[row]

    def row_of(self, run_id: int) -> int | None:
        return next((i for i, r in enumerate(self.runs) if r.id == run_id), None)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(self.runs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        run = self.runs[index.row()]
        col = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return {
                "ID": run.id, "Name": run.name, "Method": run.method, "Dataset": run.config.get("dataset", ""),
                "Status": run.status, "Progress": f"{run.progress:.0%}", "Device": run.device or "",
                "Key metric": fmt.key_metric(run), "Started": fmt.clock(run.started_at),
                "Duration": fmt.duration(run),
            }[col]
        if role == SORT_ROLE:  # numbers sort as numbers
            if col == "Progress":
                return run.progress
            if col == "Started":
                return run.started_at or 0.0
            if col == "Duration":
                return ((run.finished_at or 0) - run.started_at) if run.started_at and run.finished_at else 0.0
            if col == "Key metric":
                return fmt.key_value(run) if fmt.key_value(run) is not None else float("-inf")
            return self.data(index, Qt.ItemDataRole.DisplayRole)
        if role == Qt.ItemDataRole.ForegroundRole and col == "Status":
            return QColor(STATUS_COLOURS.get(run.status, "#000000"))
        if role == Qt.ItemDataRole.ToolTipRole and run.error:
            return run.error
        return None


class RunsFilterProxy(QSortFilterProxyModel):
    """Sorting by the numeric sort role; rows kept if they match method, status and text."""

    def __init__(self) -> None:
        super().__init__()
        self.setSortRole(SORT_ROLE)
        self.method = ""
        self.status = ""
        self.text = ""

    def set_filters(self, *, method: str | None = None, status: str | None = None, text: str | None = None) -> None:
        self.beginFilterChange()
        self.method = self.method if method is None else method
        self.status = self.status if status is None else status
        self.text = self.text if text is None else text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:  # noqa: N802
        run = self.sourceModel().run_at(row)
        if self.method and run.method != self.method or self.status and run.status != self.status:
            return False
        if self.text:  # every word must appear; a "key:value" word must be one of the run's tags (study:3)
            haystack = " ".join([str(run.id), run.name, run.method, run.tags, run.notes, run.status]).lower()
            tags = run.tags.lower().split()
            return all(word in tags if ":" in word else word in haystack for word in self.text.split())
        return True
