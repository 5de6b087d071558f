"""The run table's model on its own: what it signals when runs come, go, change or get new
best values (the views' selection and sort depend on it)."""

from __future__ import annotations

from tests.conftest import finished_run
from workbench.store import Store
from workbench.ui.runs_table import RunsTableModel


def _signals(model: RunsTableModel) -> list[tuple]:
    seen: list[tuple] = []
    model.dataChanged.connect(lambda a, b, *_: seen.append(("changed", a.row(), b.row(), a.column(), b.column())))
    model.rowsInserted.connect(lambda _, first, last: seen.append(("inserted", first, last)))
    model.rowsRemoved.connect(lambda _, first, last: seen.append(("removed", first, last)))
    model.modelReset.connect(lambda: seen.append(("reset",)))
    return seen


def test_rows_come_and_go_as_inserts_and_removes_and_best_values_touch_their_rows(store: Store) -> None:
    ids = [finished_run(store, "vit") for _ in range(6)]
    model = RunsTableModel()
    model.set_runs(store.list_runs())
    model.set_extra_columns(["best:val/top1"])
    seen = _signals(model)
    store.set_trashed(ids[1:3], True)
    new = store.create_run("vit", {}).id
    assert model.set_runs(store.list_runs()) == [4]  # the row that came
    assert seen == [("removed", 1, 2), ("inserted", 4, 4)]
    assert [r.id for r in model.runs] == [ids[0], *ids[3:], new]

    seen.clear()
    best = model.columns.index("best:val/top1")
    model.set_best({ids[4]: {"val/top1": (0.1, 0.4)}, ids[5]: {"val/top1": (0.2, 0.5)}})
    assert seen == [("changed", 2, 3, best, best)]  # those two rows' best column, nothing else
    assert model.index(2, best).data() == "0.4000"

    seen.clear()
    model.set_runs(store.list_runs(trashed=True))  # another list altogether: one reset
    assert seen == [("reset",)]
