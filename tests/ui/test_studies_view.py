"""The Studies window and the New study dialog, offscreen: planning feedback, starting a study,
the results table and plot against the runs' stored metrics, the verdicts on the paper's claims,
saving, and links to the runs."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from tests.conftest import finish_queued_members
from tests.ui.conftest import answer_next_box, poll
from workbench.engine.execute import execute
from workbench.store import RunStatus, Store
from workbench.studies import (
    BUDGETS,
    TEMPLATES,
    create_study,
    overview,
    results,
    sweep_spec,
    template_spec,
    to_csv,
    verdicts,
)
from workbench.ui.main_window import MainWindow
from workbench.ui.new_study_dialog import NewStudyDialog
from workbench.ui.widgets import NAME_WIDTH

QUICK = {"max_steps": 2}


def test_the_dialog_plans_as_you_type_and_starts_a_study(qtbot, store: Store) -> None:
    dialog = NewStudyDialog(store)
    qtbot.addWidget(dialog)
    assert "13 runs" in dialog.status.text() and dialog.start_button.isEnabled()  # MAE mask ratio, tiny
    assert dialog.preview.count() == 13 and "encoder from pretrain mask_ratio=0.25" in dialog.preview.item(4).text()
    dialog.template.setCurrentIndex(dialog.template.findData("deit-distill"))
    assert "4 runs" in dialog.status.text() and "Touvron" in dialog.trend.text()
    dialog.template.setCurrentIndex(dialog.template.findData("mae-mask-ratio"))
    dialog.common.setText("epochs=3")  # a stage whose recipe pins its epochs keeps them: said before Start
    assert "Note: stage" in dialog.status.text() and "keeps its own epochs=" in dialog.status.text()
    dialog.common.setText("")

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
    assert "4 runs" in dialog.status.text() and "2 at a time" in dialog.status.text()
    dialog.seeds.setText("0 1")  # a custom sweep repeats its points over seeds as a template does
    assert "the study sweeps seed (0, 1), so seed=3 would be ignored" in dialog.status.text()
    dialog.common.setText("max_steps=2")
    assert "8 runs" in dialog.status.text(), dialog.status.text()
    dialog.seeds.setText("")
    dialog.common.setText("max_steps=2 seed=3")
    dialog.parallel.setValue(3)
    assert "3 at a time" in dialog.status.text()
    dialog.start()  # the study is written on a worker thread
    qtbot.waitUntil(lambda: dialog.created is not None, timeout=30_000)
    study = dialog.created
    assert study is not None and study.template == ""
    runs = [r for r in store.list_runs()]
    assert len(runs) == 4 and all(r.config["seed"] == 3 and r.status == RunStatus.QUEUED for r in runs)
    assert {(r.config["pos_embed"], r.config["depth"]) for r in runs} == {
        ("learned-1d", 1), ("learned-1d", 2), ("none", 1), ("none", 2)}


def test_the_dialog_offers_every_budget_and_plans_cpu(qtbot, store: Store) -> None:
    dialog = NewStudyDialog(store)
    qtbot.addWidget(dialog)
    assert [dialog.budget.itemText(i) for i in range(dialog.budget.count())] == list(BUDGETS)
    assert "cpu: " in dialog.budget.toolTip()
    dialog.template.setCurrentIndex(dialog.template.findData("vit-pos-embed"))
    dialog.budget.setCurrentText("cpu")
    dialog.seeds.setText("0 1 2")
    assert "12 runs" in dialog.status.text() and dialog.start_button.isEnabled()
    assert dialog.spec().budget == "cpu" and store.list_runs() == []


def test_reference_runs_per_seed_are_one_dashed_line_at_their_mean(qtbot, window: MainWindow, store: Store) -> None:
    study = create_study(store, template_spec("mae-mask-ratio", seeds=[0, 1, 2]))
    scratch = [0.30, 0.41, 0.36]
    while finish_queued_members(store, study.id, lambda stage, p: {"val/top1": scratch[p["seed"]] if stage == "scratch"
                                                                   else 0.4, "val/loss": 0.1}):
        pass
    view = window.open_studies()
    qtbot.waitUntil(lambda: view.table_data is not None, timeout=10_000)
    view.chart.metric_box.setCurrentText("fine-tune top-1")
    lines = [item for item in view.chart.plot.getPlotItem().items if isinstance(item, pg.InfiniteLine)]
    assert len(lines) == 1 and lines[0].value() == pytest.approx(sum(scratch) / 3)
    assert lines[0].label.format == f"scratch (vit): {sum(scratch) / 3:.3f} (mean of 3 seeds)"


def test_the_window_shows_results_equal_to_the_runs_and_links_to_them(qtbot, window: MainWindow, store: Store,
                                                                       tmp_path) -> None:
    study = create_study(store, sweep_spec("vit", [("pos_embed", ["learned-1d", "none"])], common=QUICK))
    for m in store.study_members(study.id):
        assert execute(store, m.run_id, log=lambda _: None) == RunStatus.FINISHED
    poll(window)
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
    assert "a custom sweep: no published trend or claims" in view.chart.trend.text()
    assert view.chart.verdicts.isHidden()  # no empty "did the paper's claims hold here?"

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
    name = view.members.item(2, 0).text()  # the name in full (elided in view), then why it did not start
    assert view.members.item(2, 0).toolTip() == f"{name}\nnot started: the study was cancelled"
    assert view.members.item(2, 2).toolTip() == "not started: the study was cancelled"
    assert {r.status for r in store.list_runs()} == {RunStatus.CANCELLED}
    assert overview(store, study.id).status == "cancelled"


def test_the_verdict_panel_colours_each_claim_and_follows_the_runs(qtbot, window: MainWindow, store: Store,
                                                                     tmp_path) -> None:
    top1 = {"learned-1d": [0.50, 0.52, 0.54], "learned-2d": [0.30, 0.31, 0.32], "sincos-2d": [0.3, 0.3, 0.3],
            "none": [0.40, 0.41, 0.42]}
    study = create_study(store, template_spec("vit-pos-embed", seeds=[0, 1, 2]))
    last = ("none", 2)  # left queued: every claim about `none` waits for it
    finish_queued_members(store, study.id, lambda stage, p: None if (p["pos_embed"], p["seed"]) == last
                          else {"val/top1": top1[p["pos_embed"]][p["seed"]]})
    view = window.open_studies()
    qtbot.waitUntil(lambda: view.table_data is not None, timeout=10_000)
    panel = view.chart.verdicts.table

    def row(r: int) -> list[str]:
        return [panel.item(r, c).text() for c in range(panel.columnCount())]

    assert panel.rowCount() == 3 and row(0) == ["learned-1d > none\npaper +2.8 (64.2 vs 61.4)", "", "3 vs 2", "pending"]
    assert panel.item(0, 3).foreground().color().name() == "#6b6b6b"  # grey: nothing decided
    assert "waits for train: run" in panel.item(0, 0).toolTip()
    assert row(2)[2:] == ["3 vs 3", "contradicted"] and panel.item(2, 3).foreground().color().name() == "#b3261e"

    finish_queued_members(store, study.id, lambda stage, p: {"val/top1": top1[p["pos_embed"]][p["seed"]]})
    view.refresh()
    qtbot.waitUntil(lambda: panel.item(0, 3).text() != "pending", timeout=10_000)
    found = verdicts(results(overview(store, study.id)), TEMPLATES["vit-pos-embed"].claims)
    assert row(0)[1:] == [f"+0.1100 ± {found[0].se:.4f}", "3 vs 3", "held"]
    assert panel.item(0, 3).foreground().color().name() == "#2e7d32" and panel.item(0, 3).font().bold()
    assert row(1)[3] == "contradicted" and "effect ≤ −2 SE, against the claim" in panel.item(1, 0).toolTip()
    assert "2 SE" in view.chart.verdicts.rule.text()

    out = tmp_path / "results.md"
    view.save_table("md", str(out))
    assert "| learned-2d > none | -0.1000 ± " in out.read_text()


def test_a_members_progress_leaves_the_chart_and_its_zoom_alone(qtbot, window: MainWindow, store: Store) -> None:
    """While a member trains, each refresh shows its progress in the members table; the chart is
    drawn again (its zoom reset) only when the results change (it was, twice a second)."""
    long = " ".join(["positional embeddings on the shapes dataset, second attempt after the learning-rate fix"] * 2)
    study = create_study(store, sweep_spec("vit", [("pos_embed", ["learned-1d", "none"])], common=QUICK,
                                           study_name=long))
    done, training = (m.run_id for m in store.study_members(study.id))
    assert execute(store, done, log=lambda _: None) == RunStatus.FINISHED
    store.update_run(training, status=RunStatus.RUNNING, step=1, total_steps=10)
    store.set_max_concurrent(1)  # the machine's limit below the study's 2 at a time: the header says why one waits
    view = window.open_studies()
    qtbot.waitUntil(lambda: view.table_data is not None and view.members.item(1, 3).text() == "10%", timeout=10_000)
    assert "2 at a time (this machine trains 1 at once" in view.title.text()
    assert view.list.columnWidth(1) <= NAME_WIDTH and view.list.item(0, 1).toolTip() == long  # elided: progress
    assert view.members.item(0, 0).toolTip() == "vit pos_embed=learned-1d"                   # stays in view
    header = view.results.horizontalHeader()  # "pos_embed" was cut under its sort arrow
    assert all(view.results.columnWidth(c) >= header.sectionSizeHint(c) for c in range(header.count()))
    view.chart.plot.setYRange(-5, 5, padding=0)  # the user zooms
    drawn = view.chart.plot.getPlotItem().listDataItems()
    store.update_run(training, step=5)
    view.refresh()
    qtbot.waitUntil(lambda: view.members.item(1, 3).text() == "50%", timeout=10_000)
    assert view.chart.plot.getPlotItem().listDataItems() == drawn
    assert view.chart.plot.getPlotItem().viewRange()[1] == pytest.approx([-5, 5])
    store.update_run(training, status=RunStatus.FINISHED, step=10, summary={"val/top1": 0.5})
    view.refresh()
    qtbot.waitUntil(lambda: view.chart.plot.getPlotItem().listDataItems() != drawn, timeout=10_000)  # new results


def test_with_no_study_shown_the_verdict_panel_says_nothing_of_claims(qtbot, window: MainWindow) -> None:
    view = window.open_studies()
    qtbot.waitUntil(lambda: view.list.rowCount() == 0 and view.current() is None, timeout=10_000)
    view._show_current()
    assert view.chart.verdicts.isHidden()


def test_a_plan_checked_against_the_windows_catalog_takes_a_run_to_start_from(qtbot, store: Store) -> None:
    """The New study dialog plans every stage against the window's catalog as it is typed: a stage
    starting from a run (`init=run:ID`) is checked when the study starts, not there, where the
    catalog has no artifacts to look at (an AttributeError escaped the dialog's slot)."""
    from workbench.jobs.submit import checked_config
    from workbench.ui.catalog import Catalog

    run = store.create_run("vit", {})
    cfg = checked_config(Catalog.read(store), "vit", preset="tiny", overrides=[f"init=run:{run.id}"], parents={})
    assert cfg.init == f"run:{run.id}"


def test_each_study_is_plotted_in_its_own_range_a_log_sweep_on_a_log_axis(qtbot, store: Store) -> None:
    """Categories set the x range; the next study (numbers, other values) is fitted again, not left
    off-screen in the last one's range; an lr sweep by factors gets a log x axis."""
    from workbench.ui.study_chart import StudyChart, log_spaced

    chart = StudyChart()
    qtbot.addWidget(chart)
    tables = []
    for axes, value in (([("pos_embed", ["learned-1d", "none"])], lambda p: 0.55),
                        ([("lr", [1e-4, 1e-3, 1e-2])], lambda p: 1.2 - p["lr"] * 10)):
        study = create_study(store, sweep_spec("vit", axes, common=QUICK))
        finish_queued_members(store, study.id, lambda stage, p: {"val/top1": value(p), "val/loss": 1.0})
        tables.append(results(overview(store, study.id)))
    chart.show_table(tables[0], "")
    chart.show_table(tables[1], "")
    chart.metric_box.setCurrentText("val/top1")
    chart.show()
    qtbot.waitUntil(lambda: chart.plot.getPlotItem().viewRange()[0][0] < -3, timeout=5_000)
    (x0, x1), (y0, y1) = chart.plot.getPlotItem().viewRange()
    assert chart.plot.getPlotItem().ctrl.logXCheck.isChecked()
    assert x0 <= -4 and x1 >= -2 and y0 <= 1.1 and y1 >= 1.19  # log10 of 1e-4 .. 1e-2; every value in view
    assert log_spaced([1e-4, 1e-3, 1e-2]) and not log_spaced([0.25, 0.5, 0.75]) and not log_spaced([1, 2])
    seeds = create_study(store, sweep_spec("vit", [("seed", [0, 1, 2])], common=QUICK))  # one point, repeated
    finish_queued_members(store, seeds.id, lambda stage, p: {"val/top1": 0.5 + p["seed"] / 10, "val/loss": 1.0})
    chart.show_table(results(overview(store, seeds.id)), "")
    chart.metric_box.setCurrentText("val/top1")
    assert chart.best.text() == "vit val/top1: <b>0.6000</b> (mean of 3 seeds)"  # not "at (mean…); 1 of 1 points"
