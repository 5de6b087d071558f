"""`RunsTableModel`: the run browser's rows, updated in place so selection survives polling."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from workbench import fmt
from workbench.store import Run

STATUS_COLOURS = {
    "queued": "#8a8f98", "running": "#2f7fd8", "finished": "#2e9d57",
    "failed": "#d64545", "cancelled": "#d9862b", "interrupted": "#8d5bd6",
}
COLUMNS = ("ID", "Name", "Method", "Status", "Progress", "Device", "Key metric", "Started", "Duration")
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

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(self.runs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        run = self.runs[index.row()]
        col = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return {
                "ID": run.id, "Name": run.name, "Method": run.method, "Status": run.status,
                "Progress": f"{run.progress:.0%}", "Device": run.device or "", "Key metric": fmt.key_metric(run),
                "Started": fmt.clock(run.started_at), "Duration": fmt.duration(run),
            }[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == "Status":
            return QColor(STATUS_COLOURS.get(run.status, "#000000"))
        if role == Qt.ItemDataRole.ToolTipRole and run.error:
            return run.error
        return None
