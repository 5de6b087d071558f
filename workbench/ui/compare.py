"""`CompareView`: the selected runs side by side, like a hyper-parameter table: one row per
run, each evaluation metric's final and best value first (what runs are judged by), then a
column for every config value that differs between them, and for every piece of software that
differs between the environments they ran in (`env: torch`). When the curves group the runs, one
row per group instead: its runs' n, and each metric's final and best as mean ± sd. Numbers are formatted (counts as
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
from workbench.studies.results import mean_sd
from workbench.ui.tasks import Submit, read_then
from workbench.ui.widgets import fit_columns


class Cell(QTableWidgetItem):
    """A cell that sorts by number when it holds one; a `setting`'s number shows as given (lr
    0.00316), a result's to four places."""

    def __init__(self, value: object, setting: bool = False) -> None:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        super().__init__((fmt.setting(value) if setting else fmt.number(value)) if numeric else str(value))
        self.key = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, Cell) and self.key is not None and other.key is not None:
            return self.key < other.key
        return self.text() < other.text()


class CompareView(QWidget):
    def __init__(self, store: Store, submit: Submit | None = None) -> None:
        super().__init__()
        self.store = store
        self.submit = submit  # reads the runs' best values off the GUI thread (Tasks.submit); None: inline
        self._asked = 0  # the latest show_runs: an older one's reading, arriving late, is dropped
        self.hint = QLabel("select two or more runs to compare them")
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().hide()
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # run names differ at their ends
        self.table.setWordWrap(False)  # a long name on one line, elided, not cut after its second
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.table)

    def show_runs(self, runs: list[Run], groups: dict[str, list[int]] | None = None) -> None:
        """One row per run, or per group (label -> run ids) when given, once each run's best values
        are read (a query per run)."""
        self._asked += 1
        asked, ids = self._asked, [r.id for r in runs]

        def read() -> dict[int, dict[str, tuple[float, float]]]:
            return {run_id: self.store.metric_extremes(run_id) for run_id in ids}

        def show(extremes: dict[int, dict[str, tuple[float, float]]]) -> None:
            if asked == self._asked:
                self._show(runs, groups, extremes)

        read_then(self.submit, read, show, lambda message: self.hint.setText(f"could not read the runs' metrics: "
                                                                             f"{message}"))

    def _show(self, runs: list[Run], groups: dict[str, list[int]] | None,
              extremes: dict[int, dict[str, tuple[float, float]]]) -> None:
        self.table.setVisible(bool(runs))  # no empty header of squeezed columns
        if groups:
            self._show_groups(runs, groups, extremes)
            return
        self.table.setSortingEnabled(False)
        keys = sorted({k for r in runs for k in r.config})
        differing = [k for k in keys if len({repr(r.config.get(k)) for r in runs}) > 1]
        first = {config_class(r.method).key_metric for r in runs}  # what the runs are judged by, first
        metrics = sorted({k for r in runs for k in r.results}, key=lambda k: (k not in first, k))
        judged = [k for k in metrics if k in first]  # then the settings that differ, then the other results
        tracked = [k for k in metrics if k.startswith("val/")]  # a curve, so final and best differ

        def headers(keys: list[str]) -> list[str]:
            return [h for k in keys for h in ([f"{k} (final)", f"{k} (best)"] if k in tracked else [k])]

        env_keys = [k for k in dict.fromkeys(k for r in runs for k in r.environment)
                    if k != "host" and len({r.environment.get(k) for r in runs}) > 1]
        named = ["run", "method"] if len({r.method for r in runs}) > 1 else ["run"]  # one method: said in the hint
        columns = ([*named, *headers(judged), *differing, *headers(metrics[len(judged):])]
                   + [f"env: {k}" for k in env_keys])
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(runs))
        start = len(named) + len(headers(judged))
        settings = range(start, start + len(differing))  # shown as given

        def results(run: Run, keys: list[str]) -> list[object]:
            cells: list[object] = []
            for key in keys:
                low, high = extremes[run.id].get(key, (None, None))
                best = high if fmt.higher_is_better(key) else low
                cells += [run.summary.get(key, "")] + (["" if best is None else best] if key in tracked else [])
            return cells

        for row, run in enumerate(runs):
            values = [f"{run.id} · {run.name}", *([run.method] if len(named) > 1 else []), *results(run, judged),
                      *(run.config.get(k, "") for k in differing), *results(run, metrics[len(judged):]),
                      *(run.environment.get(k, "-") for k in env_keys)]
            for col, value in enumerate(values):
                self.table.setItem(row, col, Cell(value, setting=col in settings))
            self.table.item(row, 0).setToolTip(str(values[0]))  # elided past NAME_WIDTH
        fit_columns(self.table, (0,), sortable=True)  # a long run name no longer hides the settings that differ
        envs = ("; software differs: " + ", ".join(f"{k} {' vs '.join(sorted({r.environment.get(k, '-') for r in runs}))}"
                                                  for k in env_keys)) if env_keys else ""
        alike = f" (all {runs[0].method})" if len(named) == 1 and runs else ""
        self.hint.setText(f"{len(runs)} runs{alike} · {len(differing)} config values differ{envs}"
                          if len(runs) > 1 else "select two or more runs to compare them")
        self.table.sortItems(0, Qt.SortOrder.AscendingOrder)

    def _show_groups(self, runs: list[Run], groups: dict[str, list[int]],
                     extremes: dict[int, dict[str, tuple[float, float]]]) -> None:
        """A row per group: n, then each metric's final and best over its runs as mean ± sd (sorting
        by the mean), then the config values that differ between groups ("mixed" within one)."""
        self.table.setSortingEnabled(False)
        by_id = {r.id: r for r in runs}
        members = {label: [by_id[i] for i in ids if i in by_id] for label, ids in groups.items()}
        metrics = sorted({k for r in runs for k in r.results if k.startswith("val/")})
        columns = ["group", "n"] + [f"{k} ({which})" for k in metrics for which in ("final", "best")]
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(members))
        for row, (label, group) in enumerate(members.items()):
            cells: list[QTableWidgetItem] = [Cell(label), Cell(len(group))]
            for key in metrics:
                finals = [r.summary[key] for r in group if isinstance(r.summary.get(key), (int, float))]
                pick = max if fmt.higher_is_better(key) else min
                bests = [pick(extremes[r.id][key]) for r in group if key in extremes[r.id]]
                cells += [MeanCell(finals), MeanCell(bests)]
            for col, cell in enumerate(cells):
                self.table.setItem(row, col, cell)
        fit_columns(self.table, sortable=True)
        self.hint.setText(f"{len(members)} groups of {len(runs)} runs · mean ± sd over each group's runs")
        self.table.sortItems(0, Qt.SortOrder.AscendingOrder)


class MeanCell(Cell):
    """'0.4650 ± 0.0060' of some runs' values (sample sd; one value as is), sorting by the mean."""

    def __init__(self, values: list[float]) -> None:
        super().__init__(mean_sd(values))
        self.key = sum(values) / len(values) if values else None
