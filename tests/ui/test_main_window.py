import subprocess
import sys

import pytest

from workbench.jobs import create_run
from workbench.store import RunStatus, Store
from workbench.ui.main_window import MainWindow


def test_the_gui_does_not_import_torch() -> None:
    code = ("import sys; import workbench.ui, workbench.ui.main_window; "
            "assert 'torch' not in sys.modules, 'the GUI imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_window_lists_runs_and_shows_their_curves(qtbot, store: Store) -> None:
    runs = [create_run(store, "vit", name=f"run {i}") for i in range(3)]
    for run in runs:  # finished runs: the window's runner must not start them
        store.update_run(run.id, status=RunStatus.FINISHED)
    store.add_metrics(runs[1].id, [(s, s / 10, "train/loss", 3 - s / 10, 0.0) for s in range(1, 11)])
    window = MainWindow(store)
    qtbot.addWidget(window)
    assert window.model.rowCount() == 3
    assert window.model.data(window.model.index(2, 1)) == "run 2"
    window.table.selectRow(1)
    assert window.curves.point_count(runs[1].id, "train/loss") == 10
    store.add_metrics(runs[1].id, [(11, 1.1, "train/loss", 1.5, 0.0)])
    window.poll()
    assert window.curves.point_count(runs[1].id, "train/loss") == 11  # only the new row was fetched
    assert window.model.rowCount() == 3 and window.selected_runs()[0].id == runs[1].id  # selection survives


@pytest.mark.slow
def test_new_run_trains_in_a_worker_and_cancel_stops_it(qtbot, store: Store) -> None:
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.new_action.trigger()
    run = store.list_runs()[-1]
    assert window.selected_runs()[0].id == run.id
    qtbot.waitUntil(lambda: window.curves.point_count(run.id, "train/loss") >= 2, timeout=90_000)
    window.cancel_selected()
    qtbot.waitUntil(lambda: store.get_run(run.id).status == RunStatus.CANCELLED, timeout=30_000)
    window.poll()
    assert window.model.run_at(0).status == "cancelled"
    window.close()
