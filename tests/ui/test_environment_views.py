"""The environment a run was trained in, in Details and in Compare."""

from workbench.store import Store
from workbench.ui.compare import CompareView
from workbench.ui.details import RunDetailsView

ENV = {"workbench": "0.1.0", "python": "3.11.7", "torch": "2.14.1", "timm": "1.0.31", "host": "a"}


def test_details_show_and_compare_tells_where_the_environments_differ(qtbot, store: Store) -> None:
    runs = []
    for torch_version, host in (("2.14.1", "a"), ("2.13.0", "b")):
        run = store.create_run("vit", {"lr": 0.001})
        store.update_run(run.id, summary={"val/top1": 0.5, "environment": {**ENV, "torch": torch_version, "host": host}})
        runs.append(store.get_run(run.id))
    details = RunDetailsView(store)
    qtbot.addWidget(details)
    details.show_run(runs[0])
    assert details.environment.text() == ("Environment — workbench 0.1.0 · python 3.11.7 · torch 2.14.1 · "
                                          "timm 1.0.31 · host a")
    details.show_run(store.get_run(store.create_run("vit", {}).id))  # not started: nothing to say
    assert details.environment.isHidden()

    compare = CompareView(store)
    qtbot.addWidget(compare)
    compare.show_runs(runs)
    headers = [compare.table.horizontalHeaderItem(c).text() for c in range(compare.table.columnCount())]
    assert "env: torch" in headers and "env: host" not in headers and "env: timm" not in headers
    col = headers.index("env: torch")
    assert sorted(compare.table.item(r, col).text() for r in range(2)) == ["2.13.0", "2.14.1"]
    assert compare.hint.text().endswith("software differs: torch 2.13.0 vs 2.14.1")
