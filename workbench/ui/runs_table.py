"""The run browser's model: `RunsTableModel` (rows updated in place, so selection survives
polling; columns the user can add: any config field, any metric's final or best value) and
`RunsFilterProxy` (sort by any column, filter by method, status and text)."""

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
    "failed": "#d64545", "cancelled": "#d9862b", "interrupted": "#8d5bd6", "cancelling": "#d9862b",
}
BASE_COLUMNS = ("ID", "Name", "Status", "Key metric", "Progress", "Method", "Dataset", "Tags", "Device", "Started",
                "Duration")
SORT_ROLE = Qt.ItemDataRole.UserRole
Index = QModelIndex | QPersistentModelIndex
# an added column: "config:FIELD", "final:METRIC" or "best:METRIC"
EXTRA_KINDS = ("config", "final", "best")


def _blocks(rows: list[int]) -> list[tuple[int, int]]:
    """Ascending row numbers as (first, last) runs of consecutive rows."""
    blocks: list[tuple[int, int]] = []
    for row in rows:
        if blocks and row == blocks[-1][1] + 1:
            blocks[-1] = (blocks[-1][0], row)
        else:
            blocks.append((row, row))
    return blocks


def column_title(column: str) -> str:
    """'lr', 'val/top1 (final)', 'val/top1 (best)'; a summary value with no curve ('params') as is."""
    kind, _, name = column.partition(":")
    if kind == "final" and not name.startswith("val/"):
        return name
    return {"config": name, "final": f"{name} (final)", "best": f"{name} (best)"}.get(kind, column)


class RunsTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []
        self.signatures: list[tuple] = []  # what each row shows, in short: a changed one is redrawn
        self.columns: list[str] = list(BASE_COLUMNS)
        self.best: dict[int, dict[str, tuple[float, float]]] = {}  # run id -> metric -> (min, max)

    def set_runs(self, runs: list[Run], signatures: list[tuple] | None = None) -> list[int] | None:
        """Replace the rows: runs that came or went are inserted and removed (the views keep their
        selection and sort without looking at every row), and of the others only the rows whose
        shown values changed say so (with thousands of runs, a table-wide dataChanged makes the
        sorting proxy compare every row again on each poll). `signatures`: each run's
        `Store.run_signatures` tuple, read with the runs (else made here). The rows that changed or
        came; None after a reset (most rows new: another list, the first read)."""
        signatures = signatures if signatures is not None else [_shown(r) for r in runs]
        came: list[int] = []
        if [r.id for r in runs] != [r.id for r in self.runs]:
            came = self._insert_and_remove(runs, signatures)
            if came is None:
                self.beginResetModel()
                self.runs, self.signatures = runs, signatures
                self.endResetModel()
                return None
        changed = [i for i, (old, new) in enumerate(zip(self.signatures, signatures)) if old != new]
        self.runs, self.signatures = runs, signatures
        for start, end in _blocks(changed):  # one signal per block of consecutive rows
            self.dataChanged.emit(self.index(start, 0), self.index(end, len(self.columns) - 1))
        return sorted(changed + came)

    def _insert_and_remove(self, runs: list[Run], signatures: list[tuple]) -> list[int] | None:
        """Remove the rows of runs that went, insert those of runs that came (both lists in the
        store's id order); the inserted rows. None, changing nothing, when the orders disagree or
        most rows are new (a reset is then cheaper)."""
        ids, old_ids = {r.id for r in runs}, [r.id for r in self.runs]
        old = set(old_ids)
        kept = [i for i in old_ids if i in ids]
        if kept != [r.id for r in runs if r.id in old] or len(kept) < len(runs) // 2:
            return None
        for start, end in reversed(_blocks([i for i, rid in enumerate(old_ids) if rid not in ids])):
            self.beginRemoveRows(QModelIndex(), start, end)
            del self.runs[start:end + 1], self.signatures[start:end + 1]
            self.endRemoveRows()
        came = [i for i, r in enumerate(runs) if r.id not in old]
        for start, end in _blocks(came):  # ascending: the rows before `start` are already `runs`'
            self.beginInsertRows(QModelIndex(), start, end)
            self.runs[start:start], self.signatures[start:start] = runs[start:end + 1], signatures[start:end + 1]
            self.endInsertRows()
        return came

    def extra_columns(self) -> list[str]:
        return self.columns[len(BASE_COLUMNS):]

    def set_extra_columns(self, extras: list[str]) -> None:
        """The added columns after the base ones (unknown kinds are dropped)."""
        extras = [c for c in dict.fromkeys(extras) if c.partition(":")[0] in EXTRA_KINDS]
        if extras == self.extra_columns():
            return
        self.beginResetModel()
        self.columns = [*BASE_COLUMNS, *extras]
        self.endResetModel()

    def best_keys(self) -> list[str]:
        """Metrics whose best value a column shows (the window fetches them)."""
        return [c.partition(":")[2] for c in self.extra_columns() if c.startswith("best:")]

    def set_best(self, best: dict[int, dict[str, tuple[float, float]]]) -> None:
        """New best values of these runs: only their rows' best columns say so (all rows did, each
        poll a run trained: the proxy sorted by such a column compared every row, 830 ms at 5,000)."""
        self.best.update(best)
        columns = [c for c, column in enumerate(self.columns) if column.startswith("best:")]
        for start, end in _blocks([i for i, r in enumerate(self.runs) if r.id in best]) if columns else []:
            self.dataChanged.emit(self.index(start, columns[0]), self.index(end, columns[-1]))

    def run_at(self, row: int) -> Run:
        return self.runs[row]

    def row_of(self, run_id: int) -> int | None:
        return next((i for i, r in enumerate(self.runs) if r.id == run_id), None)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(self.runs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return column_title(self.columns[section])
        if role == Qt.ItemDataRole.ToolTipRole:
            return "right-click: show, hide or add columns (config fields, final or best metrics); drag to move"
        return None

    def value(self, run: Run, column: str) -> Any:
        """The raw value of a cell (numbers stay numbers, for sorting); None when there is none."""
        kind, _, name = column.partition(":")
        if kind == "config":
            return run.config.get(name)
        if kind == "final":
            return run.summary.get(name)
        if kind == "best":
            low, high = self.best.get(run.id, {}).get(name, (None, None))
            return high if fmt.higher_is_better(name) else low
        return {"ID": run.id, "Name": run.name, "Method": run.method, "Dataset": run.config.get("dataset", ""),
                "Status": fmt.status(run), "Progress": run.progress, "Device": run.device or fmt.job(run), "Tags": run.tags,
                "Key metric": fmt.key_value(run), "Started": run.started_at,
                "Duration": run.training_seconds if run.started_at and run.finished_at else None}[column]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        run = self.runs[index.row()]
        column = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if column == "Progress":
                return f"{run.progress:.0%}"
            if column == "Key metric":
                return fmt.key_metric(run)
            if column == "Started":
                return fmt.clock(run.started_at)
            if column == "Duration":
                return fmt.duration(run)
            value = self.value(run, column)
            if value is None:
                return ""
            if column == "ID" or isinstance(value, bool) or not isinstance(value, (int, float)):
                return value if column == "ID" else str(value)
            if column.startswith("config:"):
                return fmt.setting(value)  # lr 0.00316 as given, not 0.0032
            return fmt.number(value)  # a count as "95,478", whether stored as an int or (before) a float
        if role == SORT_ROLE:  # numbers sort as numbers; empty cells (None) sort last
            value = self.value(run, column)
            return value.lower() if isinstance(value, str) else value
        if role == Qt.ItemDataRole.ForegroundRole and column == "Status":
            return QColor(STATUS_COLOURS.get(fmt.status(run), "#000000"))
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == "Status":
                return run.error
            if column == "Name":
                return f"{run.id} · {run.name}" + (f"\ntags: {run.tags}" if run.tags else "")
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and (column == "Duration" or  # a running run's too
                                                          isinstance(self.value(run, column), (int, float))):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _shown(run: Run) -> tuple:
    """What of a run its row shows (or sorts and filters by)."""
    return (run.status, run.step, run.total_steps, run.name, run.tags, run.notes, run.device, run.job_id,
            run.job_state, run.cancel_requested_at, run.started_at, run.finished_at, run.error, run.summary,
            run.config)


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

    def lessThan(self, left: Index, right: Index) -> bool:  # noqa: N802
        """Empty cells last in either order; numbers as numbers, text as text."""
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:
            return (a is None) < (b is None) if self.sortOrder() == Qt.SortOrder.AscendingOrder else \
                (a is None) > (b is None)
        if isinstance(a, (int, float)) != isinstance(b, (int, float)):
            return str(a) < str(b)
        return a < b

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:  # noqa: N802
        run = self.sourceModel().run_at(row)
        if self.method and run.method != self.method or self.status and run.status != self.status:
            return False
        if self.text:  # every word must appear; a "key:value" word must be one of the run's tags (study:3)
            haystack = " ".join([str(run.id), run.name, run.method, run.tags, run.notes, run.status]).lower()
            tags = run.tags.lower().split()
            return all(word in tags if ":" in word else word in haystack for word in self.text.split())
        return True
