"""The Studies window and the New study dialog, offscreen: planning feedback, starting a study,
the results table and plot against the runs' stored metrics, saving, and links to the runs."""

from __future__ import annotations

import pytest

from tests.ui.conftest import answer_next_box
from workbench.engine.execute import execute
from workbench.store import RunStatus, Store
from workbench.studies import create_study, overview, results, sweep_spec, to_csv
from workbench.ui.main_window import MainWindow
from workbench.ui.new_study_dialog import NewStudyDialog

QUICK = {"max_steps": 2}


def test_the_dialog_plans_as_you_type_and_starts_a_study(qtbot, store: Store) -> None:
    dialog = NewStudyDialog(store)
    qtbot.addWidget(dialog)
    assert "13 runs" in dialog.status.text() and dialog.start_button.isEnabled()  # MAE mask ratio, tiny
    assert dialog.preview.count() == 13 and "encoder from pretrain mask_ratio=0.25" in dialog.preview.item(4).text()
    dialog.template.setCurrentIndex(dialog.template.findData("deit-distill"))
    assert "4 runs" in dialog.status.text() and "Touvron" in dialog.trend.text()

    dialog.tabs.setCurrentIndex(1)
    dialog.method.setCurrentText("mae")
    dialog.fields[0].setCurrentText("mask_ratio")
    dialog.values[0].setText("0.5, 1.2")
    assert not dialog.start_button.isEnabled()
    assert "1.2 is outside the allowed range" in dialog.status.text()
    dialog.values[0].setText("0.5, 0.75")
    dialog.common.setText("max_steps=2 seed=3")
    assert "4 runs" in dialog.status.text()  # two encoders, each linearly probed (ticked by default)
    dialog.follow["finetune"].setChecked(True)
    assert "6 runs" in dialog.status.text()
    dialog.method.setCurrentText("vit")
    assert not dialog.follow["probe"].isEnabled()
    dialog.fields[0].setCurrentText("pos_embed")
    dialog.values[0].setText("learned-1d,none")
    dialog.fields[1].setCurrentText("depth")
    dialog.values[1].setText("1,2")
    assert "4 runs" in dialog.status.text()
    dialog.start()
    study = dialog.created
    assert study is not None and study.template == ""
    runs = [r for r in store.list_runs()]
    assert len(runs) == 4 and all(r.config["seed"] == 3 and r.status == RunStatus.QUEUED for r in runs)
    assert {(r.config["pos_embed"], r.config["depth"]) for r in runs} == {
        ("learned-1d", 1), ("learned-1d", 2), ("none", 1), ("none", 2)}


def test_the_window_shows_results_equal_to_the_runs_and_links_to_them(qtbot, window: MainWindow, store: Store,
                                                                       tmp_path) -> None:
    study = create_study(store, sweep_spec("vit", [("pos_embed", ["learned-1d", "none"])], common=QUICK))
    for m in store.study_members(study.id):
        assert execute(store, m.run_id, log=lambda _: None) == RunStatus.FINISHED
    window.poll()
    view = window.open_studies()
    qtbot.waitUntil(lambda: view.list.rowCount() == 1 and view.table_data is not None, timeout=10_000)
    assert view.list.item(0, 4).text() == "finished" and view.list.item(0, 5).text() == "100%"
    expected = results(overview(store, study.id))
    shown = [[view.results.item(r, c).text() for c in range(view.results.columnCount())]
             for r in range(view.results.rowCount())]
    assert len(shown) == len(expected.rows) == 2
    for row, want in zip(shown, expected.rows):
        assert row[0] == want[0] and float(row[1]) == pytest.approx(want[1], abs=5e-5) and row[2] == "finished"

    # the plot: one point per sweep value, at category positions, y = the stored top-1
    curves = view.chart.plot.getPlotItem().listDataItems()
    assert len(curves) == 1
    xs, ys = curves[0].getData()
    assert list(xs) == [0, 1] and list(ys) == [row[1] for row in expected.rows]
    assert "highest vit val/top1" in view.chart.best.text()
    assert "custom sweep" in view.chart.trend.text()

    out = tmp_path / "results.csv"
    view.save_table("csv", str(out))
    assert out.read_text() == to_csv(expected)

    view.runs_button.click()
    assert window.search.text() == f"study:{study.id}" and window.proxy.rowCount() == 2
    view.members.doubleClicked.emit(view.members.model().index(1, 0))
    assert window.search.text() == "" and window.selected_runs()[-1].id == store.study_members(study.id)[1].run_id
    assert not view.cancel_button.isEnabled() and view.delete_button.isEnabled()
    seen = answer_next_box("Forget study")
    view.delete_button.click()
    assert f"study {study.id}" in seen[0]
    qtbot.waitUntil(lambda: view.list.rowCount() == 0, timeout=10_000)
    assert len(store.list_runs()) == 2  # the runs stay


def test_a_running_study_can_be_cancelled_from_the_window(qtbot, window: MainWindow, store: Store) -> None:
    study = create_study(store, sweep_spec("mae", [("mask_ratio", [0.5, 0.75])], follow_ups=("probe",),
                                           common=QUICK))
    view = window.open_studies()
    qtbot.waitUntil(lambda: view.current() is not None, timeout=10_000)
    assert view.current().status == "running" and view.cancel_button.isEnabled()
    assert view.members.rowCount() == 4 and view.members.item(2, 2).text() == "waiting"
    view.cancel_current()
    qtbot.waitUntil(lambda: view.current() is not None and view.current().status == "cancelled", timeout=30_000)
    assert view.resume_button.isEnabled() and not view.cancel_button.isEnabled()
    assert view.members.item(2, 5).text() == "not started: the study was cancelled"
    assert {r.status for r in store.list_runs()} == {RunStatus.CANCELLED}
    assert overview(store, study.id).status == "cancelled"
