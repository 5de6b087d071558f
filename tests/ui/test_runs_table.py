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


def test_the_table_order_the_parallel_view_draws_follows_every_change_of_the_rows(qtbot, store: Store) -> None:
    """`table_runs` keeps the rows' order between polls; it must still follow sorting, filters,
    rows that come and go (hidden ones too: they move the model's rows) and a re-sort by a value."""
    from PySide6.QtCore import Qt

    from workbench.ui.runs_panel import RunsPanel

    panel = RunsPanel()
    qtbot.addWidget(panel)

    def order() -> list[int]:  # what the table shows, mapped row by row
        proxy = panel.proxy
        return [panel.model.run_at(proxy.mapToSource(proxy.index(row, 0)).row()).id for row in range(proxy.rowCount())]

    def check() -> None:
        assert [r.id for r in panel.table_runs()] == order()
        assert [r.id for r in panel.table_runs()] == order()  # kept: the same again

    ids = [finished_run(store, "vit") for _ in range(3)] + [finished_run(store, "mae") for _ in range(3)]
    panel.set_runs(store.list_runs())
    check()
    assert [r.id for r in panel.table_runs()] == ids[::-1]  # newest first
    panel.table.sortByColumn(panel.model.columns.index("ID"), Qt.SortOrder.AscendingOrder)
    check()
    panel.proxy.set_filters(method="mae")
    check()
    assert [r.id for r in panel.table_runs()] == ids[3:]
    new_vit = store.create_run("vit", {}, name="aaa").id  # comes hidden by the filter: the model's rows move
    store.set_trashed([ids[0]], True)
    panel.set_runs(store.list_runs())
    check()
    panel.proxy.set_filters(method="")
    check()
    assert new_vit in [r.id for r in panel.table_runs()] and ids[0] not in [r.id for r in panel.table_runs()]
    panel.model.set_extra_columns(["best:val/top1"])
    panel.table.sortByColumn(panel.model.columns.index("best:val/top1"), Qt.SortOrder.DescendingOrder)
    check()
    panel.model.set_best({ids[1]: {"val/top1": (0.1, 0.9)}})  # a value that moves its row to the top
    check()
    assert panel.table_runs()[0].id == ids[1]
