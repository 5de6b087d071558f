"""The desktop app, offscreen: browsing, filtering, comparing, details, and job control."""

import csv
import subprocess
import sys

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from tests.conftest import finished_run
from tests.ui.conftest import answer_next_box, poll, settle, shown
from workbench import paths
from workbench.store import RunStatus, Store
from workbench.ui import groups
from workbench.ui.main_window import MainWindow
from workbench.ui.runs_table import BASE_COLUMNS
from workbench.ui.widgets import NAME_WIDTH


def test_the_gui_does_not_import_torch(home) -> None:
    code = ("import sys; from PySide6.QtWidgets import QApplication, QMessageBox; app = QApplication([]); "
            "from workbench.ui.main_window import MainWindow; w = MainWindow(); w.show(); "
            "assert 'sqlalchemy' not in sys.modules, 'the window waited for SQLAlchemy'; w.load(); "
            "from workbench.ui import until_loaded; assert until_loaded(w); "
            "from workbench.ui.new_study_dialog import NewStudyDialog; s = w.open_studies(); "
            "assert NewStudyDialog(w.store, s).validate(); w.close(); "
            "assert 'torch' not in sys.modules, 'the GUI imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runs_are_listed_filtered_and_sorted(window: MainWindow, store: Store) -> None:
    ids = [finished_run(store, "vit"), finished_run(store, "mae"), finished_run(store, "vit")]
    store.update_run(ids[2], status=RunStatus.FAILED, tags="baseline", error="boom")
    poll(window)
    assert window.proxy.rowCount() == 3
    assert window.proxy.index(0, 0).data() == ids[2]  # newest first
    window.method_filter.setCurrentText("mae")
    method = window.model.columns.index("Method")
    assert window.proxy.rowCount() == 1 and window.proxy.index(0, method).data() == "mae"
    window.method_filter.setCurrentIndex(0)
    window.status_filter.setCurrentText("failed")
    assert window.proxy.rowCount() == 1
    window.status_filter.setCurrentIndex(0)
    window.search.setText("baseline")
    assert window.proxy.rowCount() == 1 and window.proxy.index(0, 0).data() == ids[2]
    window.search.clear()
    window.show()
    window.select_run(ids[2])
    assert window.banner.isVisible() and "boom" in window.banner.text()
    assert "Duplicate it to change a setting, or Resume" in window.banner.text()  # failed at step 0
    store.update_run(ids[2], step=10)
    poll(window)
    assert "boom — Resume continues it." in window.banner.text()
    window.select_run(ids[0])
    assert not window.banner.isVisible()


def test_no_page_can_widen_the_window_past_a_small_screen(window: MainWindow) -> None:
    """A tab's page with a long unwrapped line (a run name, a message) is clipped, not given the
    width: a new user's window grew to 2,700 px on a 1,600-px screen and could not be narrowed."""
    window.show()
    window.tabs.addTab(QLabel("a very long line that does not wrap " * 40), "wide")
    QApplication.processEvents()  # the layouts take the new page's size
    assert window.minimumSizeHint().width() <= 1366


def test_curves_fetch_incrementally_and_export(window: MainWindow, store: Store, tmp_path) -> None:
    run = finished_run(store, "vit")
    store.add_metrics(run, [(s, s / 10, "train/loss", 3 - s / 10, 100.0 + s) for s in range(1, 11)])
    poll(window)
    window.select_run(run)
    window.tasks.wait()
    QApplication.processEvents()
    assert window.curves.point_count(run, "train/loss") == 10
    assert "train/loss" in window.curves.plots
    store.add_metrics(run, [(11, 1.1, "train/loss", 1.5, 111.0), (11, 1.1, "val/top1", 0.5, 111.0)])
    poll(window)
    window.tasks.wait()
    QApplication.processEvents()
    assert window.curves.point_count(run, "train/loss") == 11
    assert set(window.curves.plots) == {"train/loss", "val/top1"}  # the key metric is shown by default
    window.curves.x_axis.setCurrentText("wall time (s)")
    item, _ = window.curves.curves[("train/loss", run)]
    assert item.getOriginalDataset()[0][0] == 0.0  # seconds since the run's first row
    window.curves.smooth.setValue(50)
    item, _ = window.curves.curves[("train/loss", run)]
    assert item.getOriginalDataset()[1][-1] > 1.5  # smoothed: pulled towards earlier values
    rows = list(csv.DictReader(open(window.curves.export_csv(str(tmp_path / "m.csv")))))
    assert len(rows) == 12 and rows[0]["key"] == "train/loss"
    png = window.curves.export_png(str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 1000 and png


def test_details_notes_cli_command_and_compare(window: MainWindow, store: Store) -> None:
    a = finished_run(store, "vit", lr=0.002)
    b = finished_run(store, "vit", lr=0.004, pos_embed="none")
    store.update_run(a, summary={"val/top1": 0.4, "params": 75082.0})
    store.update_run(b, summary={"val/top1": 0.6, "params": 75082.0})
    store.add_metrics(b, [(1, 1.0, "val/top1", 0.7, 0.0), (2, 2.0, "val/top1", 0.6, 0.0)])
    poll(window)
    window.select_run(a)
    details = window.details
    assert "--set" in details.cli_command() and "lr=0.002" in details.cli_command()
    details.notes.setPlainText("first try")
    details.tags.setText("lr-sweep")
    details.save_notes()
    shown(window)  # written on a worker thread
    assert (store.get_run(a).notes, store.get_run(a).tags) == ("first try", "lr-sweep")
    details.notes.setPlainText("first try; lr too low")  # typed, not saved, then another run chosen
    store.update_run(a, tags="lr-sweep kept")  # a tag added elsewhere meanwhile: not overwritten
    window.select_run(b)
    shown(window)
    assert (store.get_run(a).notes, store.get_run(a).tags) == ("first try; lr too low", "lr-sweep kept")
    assert details.notes.toPlainText() == "" and store.get_run(b).notes == ""
    details.show_run(None)  # the run shown leaves (moved to the Trash, say): nothing can be typed for it
    assert not details.save_button.isEnabled() and not details.notes.isEnabled() and details.tags.text() == ""
    details.tags.setText("typed anyway")  # even text put there (by code) is saved for no run
    details.save_notes()
    shown(window)
    assert store.get_run(b).tags == ""
    store.rename_run(a, "a learning rate too low for this depth, " * 3)  # elided in the table, whole in its tooltip
    poll(window)
    window.table.selectAll()
    shown(window)  # Compare reads the runs' best values on a worker thread
    table = window.compare.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert {"lr", "pos_embed", "val/top1 (final)", "val/top1 (best)"} <= set(headers)
    assert "method" not in headers and "(all vit)" in window.compare.hint.text()  # no column of one value
    assert "width" not in headers  # equal in both runs
    best = headers.index("val/top1 (best)")
    values = {table.item(r, 0).text(): table.item(r, best).text() for r in range(table.rowCount())}
    assert values[f"{b} · vit-{b}"] == "0.7000"
    assert headers.index("val/top1 (final)") < headers.index("lr")  # what runs are judged by comes first,
    assert headers.index("pos_embed") < headers.index("params")  # then what differs, in view, then other results
    assert table.item(0, headers.index("params")).text() == "75,082"  # a count, not 75082.0000
    assert sorted(table.item(r, headers.index("lr")).text() for r in range(2)) == ["0.002", "0.004"]  # as given
    assert table.columnWidth(0) <= NAME_WIDTH and table.item(0, 0).toolTip() == table.item(0, 0).text()
    window.compare.show_runs([])
    shown(window)
    assert table.isHidden()  # no header of squeezed columns under "select two or more runs"


def test_delete_always_asks_moves_to_the_trash_and_deletes_for_good_only_from_there(
        window: MainWindow, store: Store) -> None:

    teacher, other = finished_run(store, "cnn"), finished_run(store, "vit")
    student = store.create_run("deit", store.get_run(other).config, parents={"teacher": teacher}).id
    store.update_run(student, status=RunStatus.FINISHED)
    folder = paths.run_dir(other)
    (folder / "worker.log").write_text("hello")
    poll(window)
    window.select_run(other)
    assert window.actions.delete.isEnabled() and not window.actions.restore.isEnabled()
    seen = answer_next_box("Cancel")
    window.actions.delete.trigger()  # the Del key, the toolbar button and the menu item: all ask
    assert f"{other} · vit-{other}" in seen[0] and "Trash" in seen[0]
    assert [r.id for r in store.list_runs()] == [teacher, other, student] and folder.exists()

    answer_next_box("Move to Trash")
    window.actions.delete.trigger()
    settle(window)
    assert [r.id for r in store.list_runs()] == [teacher, student]
    assert [r.id for r in store.list_runs(trashed=True)] == [other] and folder.exists()  # files kept
    assert window.model.row_of(other) is None and "Trash" in window.statusBar().currentMessage()
    window.actions.undo.trigger()
    settle(window)
    assert window.model.row_of(other) is not None and store.list_runs(trashed=True) == []

    window.table.selectAll()
    answer_next_box("Move to Trash")
    window.actions.delete.trigger()
    window.status_filter.setCurrentText("Trash")
    settle(window)
    assert window.proxy.rowCount() == 3 and not window.actions.delete.isEnabled()
    window.select_run(teacher)  # the teacher alone would orphan its student: it stays, unasked
    assert window.actions.restore.isEnabled() and window.actions.purge.isEnabled()
    window.actions.purge.trigger()
    settle(window)
    assert (f"Nothing deleted: run {teacher} stays in the Trash: run {student} was trained from it"
            in window.statusBar().currentMessage())
    assert len(store.list_runs(trashed=True)) == 3
    window.select_run(student)
    window.actions.restore.trigger()
    settle(window)
    seen = answer_next_box("Delete for good")
    window.actions.empty_trash.trigger()
    settle(window)  # the Trash listed, the question, the deletion: each on a worker thread or after one
    assert seen[0].startswith("Delete 1 run and") and "cannot be undone" in seen[0]
    assert f"Kept: run {teacher} stays in the Trash: run {student} was trained from it" in seen[0]
    assert [r.id for r in store.list_runs(trashed=True)] == [teacher] and [r.id for r in store.list_runs()] == [student]
    assert not folder.exists()  # the deleted run's files
    window.status_filter.setCurrentIndex(0)
    settle(window)
    assert window.proxy.rowCount() == 1


def test_a_run_is_renamed_from_the_edit_menu_or_a_right_click(window: MainWindow, store: Store, qtbot) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QInputDialog

    run, other = finished_run(store, "vit"), finished_run(store, "vit")
    poll(window)
    window.select_run(run)
    assert window.actions.rename in window.table.actions()  # the rows' context menu offers it

    had: list[str] = []

    def type_name(text: str) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QInputDialog):
            QTimer.singleShot(20, lambda: type_name(text))
            return
        had.append(box.textValue())  # the name it has, to edit
        box.setTextValue(text)
        box.accept()

    QTimer.singleShot(0, lambda: type_name("  vit, 2-D   positions "))
    window.actions.rename.trigger()
    settle(window)
    assert store.get_run(run).name == "vit, 2-D positions" and store.get_run(other).name == f"vit-{other}"
    assert had == [f"vit-{run}"]
    assert window.model.run_at(window.model.row_of(run)).name == "vit, 2-D positions"
    QTimer.singleShot(0, lambda: type_name("   "))  # an empty name is refused, saying so
    window.actions.rename.trigger()
    settle(window)
    refusal = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert len(refusal) == 1 and "cannot be empty" in refusal[0].text()
    refusal[0].close()
    assert store.get_run(run).name == "vit, 2-D positions"
    window.table.selectAll()
    assert not window.actions.rename.isEnabled()  # one run at a time


def _menu_action(menu, text: str):
    found = next((a for a in menu.actions() if a.text() == text), None)
    assert found is not None, f"no {text!r} in {[a.text() for a in menu.actions()]}"
    return found


def test_the_run_table_is_the_users_and_the_window_comes_back_as_it_was_left(qtbot, store: Store) -> None:
    long, other = finished_run(store, "vit", lr=0.00316), finished_run(store, "vit", lr=0.004)
    store.update_run(long, name="a very long run name " * 8, summary={"val/top1": 0.4}, tags="sweep")
    store.update_run(other, summary={"val/top1": 0.5})
    store.add_metrics(long, [(1, 0.1, "val/top1", 0.6, 0.0), (2, 0.2, "val/top1", 0.4, 0.0)])
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.load()
    window.timer.stop()
    settle(window)
    model, header = window.model, window.table.horizontalHeader()
    assert window.table.columnWidth(model.columns.index("Name")) <= NAME_WIDTH  # long names elide
    assert model.index(model.row_of(long), model.columns.index("Tags")).data() == "sweep"
    assert header.sectionsMovable()

    menu = window.runs.header_menu(QPoint(5, 5))
    _menu_action(_menu_action(menu, "Add config column").menu(), "lr").trigger()
    menu = window.runs.header_menu(QPoint(5, 5))
    _menu_action(_menu_action(menu, "Add metric column").menu(), "val/top1 (best)").trigger()
    _menu_action(window.runs.header_menu(QPoint(5, 5)), "Device").trigger()  # hide it
    poll(window)
    assert model.columns[-2:] == ["config:lr", "best:val/top1"]
    row = model.row_of(long)
    assert [model.index(row, c).data() for c in (len(model.columns) - 2, len(model.columns) - 1)] == ["0.00316",
                                                                                               "0.6000"]  # lr as given
    assert header.isSectionHidden(model.columns.index("Device"))
    best = model.columns.index("best:val/top1")
    window.table.sortByColumn(best, Qt.SortOrder.DescendingOrder)
    assert window.proxy.index(0, 0).data() == long  # 0.6 beats a run with no val/top1 curve
    window.select_run(other)
    window.tabs.setCurrentIndex(4)
    window.curves.smooth.setValue(30)
    window.close()

    again = MainWindow(store)
    qtbot.addWidget(again)
    again.load()
    again.timer.stop()
    settle(again)
    assert again.model.columns == model.columns
    assert again.table.horizontalHeader().isSectionHidden(model.columns.index("Device"))
    assert again.table.horizontalHeader().sortIndicatorSection() == best
    assert again.proxy.index(0, 0).data() == long
    assert [r.id for r in again.selected_runs()] == [other] and again.tabs.currentIndex() == 4
    assert again.curves.smooth.value() == 30
    again.select_run(long)  # a user's choice before the start's restore (it waits for reconcile) ...
    again.tabs.setCurrentIndex(2)
    again._restore_selection()
    assert [r.id for r in again.selected_runs()] == [long] and again.tabs.currentIndex() == 2  # ... is kept
    _menu_action(again.runs.header_menu(QPoint(5, 5)), "Reset columns").trigger()
    assert again.model.columns == list(BASE_COLUMNS) and not again.table.horizontalHeader().isSectionHidden(
        model.columns.index("Device"))
    again.close()


def test_runs_that_come_and_go_elsewhere_leave_the_selection_as_it_was(window: MainWindow, store: Store) -> None:
    """A run created by the command line or a study, or one deleted in another window, is a row
    inserted or removed: the selection stays (a model reset cleared it without a word, while the
    curves still showed the runs), and the table is not re-sorted from scratch."""
    a, b, gone = (finished_run(store, "vit") for _ in range(3))
    poll(window)
    changes = []
    window.table.selectionModel().selectionChanged.connect(lambda *_: changes.append(True))
    window.runs.select_runs([a, b])  # brushing, a restored selection: one change, not one per row (each rebuilt the views)
    assert sorted(r.id for r in window.selected_runs()) == [a, b] and len(changes) == 1
    resets = []
    window.model.modelReset.connect(lambda: resets.append(True))
    new = store.create_run("vit", {}).id
    poll(window)
    store.set_trashed([gone], True)
    poll(window)
    assert window.model.row_of(new) is not None and window.model.row_of(gone) is None and not resets
    assert sorted(r.id for r in window.selected_runs()) == [a, b] and sorted(window.curves.names) == [a, b]
    assert [window.proxy.index(i, 0).data() for i in range(window.proxy.rowCount())] == [new, b, a]  # newest first


def test_a_column_widens_when_its_first_value_comes_until_the_user_sizes_it(qtbot, store: Store) -> None:
    """Columns are fitted when the first run shows, before it has a key metric; its first value
    widens that column (it was cut to 'val/top1=0.…'), but never one the user has sized."""
    run = store.create_run("vit", {})
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.load()
    window.timer.stop()
    settle(window)
    table, key = window.table, window.model.columns.index("Key metric")
    empty = table.columnWidth(key)
    store.update_run(run.id, status=RunStatus.RUNNING, step=20, summary={"val/top1": 0.123456})
    poll(window)
    assert table.columnWidth(key) > empty and table.columnWidth(key) >= table.sizeHintForColumn(key)

    table.horizontalHeader().resizeSection(key, empty)  # the user narrows it again (as by dragging its edge)
    store.update_run(run.id, step=40, summary={"val/top1": 0.2})
    poll(window)
    assert table.columnWidth(key) == empty
    window.close()

    again = MainWindow(store)  # and it stays the user's next time
    qtbot.addWidget(again)
    again.load()
    again.timer.stop()
    settle(again)
    poll(again)
    assert again.table.columnWidth(key) == empty
    again.close()


def test_first_launch_hint_actions_follow_the_selection_and_every_outcome_is_said(
        window: MainWindow, store: Store, qtbot) -> None:
    from importlib import metadata

    window.show()
    assert window.runs.stack.currentWidget() is window.runs.hint_page  # no runs yet: what to do first
    assert "New experiment" in window.runs.hint.text() and "Studies" in window.runs.hint.text()
    for action in (window.duplicate_action, window.actions.cancel, window.actions.delete, window.actions.export,
                   window.actions.resume, window.actions.folder):
        assert not action.isEnabled(), action.text()  # nothing selected: nothing to act on

    run = finished_run(store, "vit")
    poll(window)
    assert window.runs.stack.currentWidget() is window.table
    window.select_run(run)
    assert window.duplicate_action.isEnabled() and window.actions.delete.isEnabled()
    assert window.actions.export.isEnabled() and not window.actions.cancel.isEnabled()

    window.tabs.setCurrentWidget(window.details)
    window.details.tags.setText("keep")
    window.details.save_notes()
    shown(window)  # written on a worker thread, then said
    assert window.statusBar().currentMessage() == f"Saved the notes and tags of run {run}"
    window.details.copy_cli_command()
    shown(window)
    assert QApplication.clipboard().text().startswith("workbench train --method vit")
    assert window.statusBar().currentMessage() == f"Copied the command that recreates this run (run {run}) to the clipboard"

    about = window.about()
    for package in ("torch", "timm", "PySide6"):
        assert package in about.text()
    assert metadata.version("timm") in about.text()
    about.close()
    assert [a.text() for a in window.menuBar().actions()][-1] == "&Help"

    studies = window.open_studies()
    screen = window.screen().availableGeometry()
    assert screen.contains(studies.frameGeometry()) or studies.frameGeometry().width() <= screen.width()
    assert screen.intersects(studies.frameGeometry())
    studies.activateWindow()
    qtbot.waitUntil(studies.isActiveWindow, timeout=5000)
    qtbot.keyClick(studies, Qt.Key.Key_Escape)
    assert not studies.isVisible()
    window.open_studies()
    studies.activateWindow()
    qtbot.waitUntil(studies.isActiveWindow, timeout=5000)
    qtbot.keySequence(studies, QKeySequence.StandardKey.Close)
    assert not studies.isVisible()


def test_closing_the_window_closes_the_studies_window_too(window: MainWindow) -> None:
    window.show()
    studies = window.open_studies()
    assert studies.isVisible()
    window.close()
    assert not studies.isVisible()  # else the app would go on running without its main window


def test_a_long_run_name_never_squeezes_the_run_table(window: MainWindow, store: Store) -> None:
    run = finished_run(store, "vit")
    store.update_run(run, name="a plain ViT from scratch on the built-in shapes " * 6)
    window.resize(1360, 820)
    window.show()
    poll(window)
    QApplication.processEvents()
    before = window.splitter.sizes()[0]
    window.select_run(run)
    for tab in range(window.tabs.count()):  # every view shows the run: none may demand more width
        window.tabs.setCurrentIndex(tab)
        poll(window)
        window.tasks.wait()
        QApplication.processEvents()
        assert window.splitter.sizes()[0] >= before - 2, window.tabs.tabText(tab)


def test_archive_hides_ended_runs_without_asking_and_unarchive_brings_them_back(
        window: MainWindow, store: Store) -> None:
    kept, archived = finished_run(store, "vit"), finished_run(store, "vit")
    queued = store.create_run("vit", store.get_run(kept).config).id
    poll(window)
    window.select_run(queued)
    settle(window)
    assert not window.actions.archive.isEnabled()  # a queued or running run stays in the list
    window.select_run(archived)
    settle(window)  # the actions follow the selection once its change is handled
    assert window.actions.archive.isEnabled() and not window.actions.unarchive.isVisible()
    window.actions.archive.trigger()  # nothing is deleted: no question asked
    settle(window)
    assert [r.id for r in store.list_runs()] == [kept, queued] and window.model.row_of(archived) is None
    assert "Show Archived" in window.statusBar().currentMessage()
    window.status_filter.setCurrentText("Archived")
    settle(window)
    assert window.proxy.rowCount() == 1 and window.model.row_of(archived) is not None
    assert window.jobs_label.text() == "1 archived run" and not window.actions.archive.isVisible()
    window.select_run(archived)
    settle(window)
    assert window.actions.unarchive.isEnabled()
    window.actions.unarchive.trigger()
    window.status_filter.setCurrentText("all statuses")
    settle(window)
    assert window.model.row_of(archived) is not None and store.list_runs(archived=True) == []


def test_parallel_coordinates_brushing_an_axis_selects_those_runs_in_the_table(
        window: MainWindow, store: Store) -> None:
    scores = {}
    for lr in (0.001, 0.002, 0.004):
        for depth in (1, 2):
            rid = finished_run(store, "vit", lr=lr, depth=depth)
            scores[rid] = 0.3 + lr * 50 + depth * 0.01
            store.update_run(rid, summary={"val/top1": scores[rid]})
    poll(window)
    window.tabs.setCurrentWidget(window.coords)
    settle(window)
    view = window.coords
    assert view.fields == ["depth", "lr"] and view.metric_box.currentText() == "val/top1"
    assert view.logicalDpiX() > 0  # Qt's QWidget.metric(), which an attribute named `metric` shadowed (a TypeError)
    assert view.matrix.shape == (6, 3) and len(view.lines) == 6
    ticks = [item.toPlainText() for item in view.plot.items if isinstance(item, pg.TextItem)]
    assert {"1", "2", "0.001", "0.004", "0.3600", "0.5200"} <= set(ticks), ticks  # a depth is "2", not "2.0000"
    view.set_range(2, 0.5, 1.1)  # the upper half of the metric's axis
    top = sorted(r for r, s in scores.items() if (s - min(scores.values())) / (max(scores.values()) - min(scores.values()))
                 >= 0.5)
    assert sorted(r.id for r in window.selected_runs()) == top and len(top) == 2
    view.set_range(0, -0.1, 0.5)  # and depth 1 only
    brushed = [r for r in top if store.get_run(r).config["depth"] == 1]
    assert [r.id for r in window.selected_runs()] == brushed
    window.select_run(top[-1] if top[-1] not in brushed else top[0])  # the user picks a run in the table
    chosen = [r.id for r in window.selected_runs()]
    other = next(r for r in scores if r not in top)
    drawn = view.lines[other]
    store.update_run(other, summary={"val/top1": scores[other], "train/loss": 0.5})  # a training step's log: kept
    poll(window)
    settle(window)
    assert view.lines[other] is drawn
    store.update_run(other, summary={"val/top1": scores[other] - 0.001})  # a result changes: redrawn
    poll(window)
    settle(window)
    assert view.lines[other] is not drawn
    assert [round(v, 3) for v in view.ranges[0].getRegion()] == [-0.1, 0.5]  # the dragged ranges stay
    assert [round(v, 3) for v in view.ranges[2].getRegion()] == [0.5, 1.1]
    assert view.inside() == brushed and [r.id for r in window.selected_runs()] == chosen  # not overridden


def test_parallel_with_runs_of_many_methods_keeps_to_the_settings_most_runs_have(window: MainWindow,
                                                                                 store: Store) -> None:
    """Runs of six methods differ in ~40 fields: the view draws method and the fields every run has
    (lr, swept here), and says how many it leaves out, not 40 overprinted axes."""
    from workbench.ui.parallel import MAX_SETTINGS

    for i, method in enumerate(("vit", "mae", "swin", "cnn", "dvae", "mpp")):
        rid = finished_run(store, method, lr=0.001 * (i + 1))
        store.update_run(rid, summary={"val/loss": 1.0 - i / 10})
    view = window.coords
    view.show_runs(store.list_runs())
    differ = len(groups.differing(store.list_runs()))
    assert differ > MAX_SETTINGS and len(view.fields) == MAX_SETTINGS
    assert {"method", "lr"} <= set(view.fields) and view.matrix.shape[1] == MAX_SETTINGS + 1
    assert f"{MAX_SETTINGS} of the {differ} settings that differ are shown" in view.hint.text()
    ticks = {item.toPlainText() for item in view.plot.items if isinstance(item, pg.TextItem)}
    assert {"vit", "mae", "swin", "cnn", "dvae", "mpp"} <= ticks  # every category named, not only the ends
    mine = [r for r in store.list_runs() if r.method == "vit"] + [finished_run(store, "vit", lr=0.5)]
    view.show_runs([store.get_run(r) if isinstance(r, int) else r for r in mine])
    assert view.fields == ["lr"] and "settings that differ" not in view.hint.text()


def test_parallel_draws_a_run_without_a_setting_below_its_axis_not_at_another_runs_value(window: MainWindow,
                                                                                          store: Store) -> None:
    """A field only the MAE run has (one value) put every ViT line through that value's height."""
    runs = [finished_run(store, "vit", lr=0.001), finished_run(store, "vit", lr=0.002), finished_run(store, "mae")]
    for rid in runs:
        store.update_run(rid, summary={"val/loss": 1.0})
    view = window.coords
    view.show_runs([store.get_run(r) for r in runs])
    own = [i for i, f in enumerate(view.fields) if f in store.get_run(runs[2]).config
           and f not in store.get_run(runs[0]).config]
    assert own, view.fields
    column = view.matrix[:, own[0]]
    assert np.isnan(column[:2]).all() and column[2] == 0.5
    ticks = [item.toPlainText() for item in view.plot.items if isinstance(item, pg.TextItem)]
    assert "not set" in ticks
    assert ticks.count("1.0000") == 1  # the metric's one value labelled once, not at both ends


def test_the_theme_switch_darkens_plots_and_banners_and_is_remembered(window: MainWindow, store: Store) -> None:
    from workbench.ui import theme

    def lightness(canvas) -> int:
        return canvas.backgroundBrush().color().lightness()

    assert window.theme_actions["system"].isChecked()
    try:
        window.theme_actions["dark"].trigger()
        QApplication.processEvents()
        assert lightness(window.curves.canvas) < 60 and lightness(window.coords.canvas) < 60
        assert lightness(window.diagnostics.heatmap) < 60
        assert "#4a1f1c" in window.banner.styleSheet()  # the error banner's dark tint
        assert window.settings.value("view/theme") == "dark"
        window.theme_actions["light"].trigger()
        QApplication.processEvents()
        assert lightness(window.curves.canvas) > 200 and "#fdecea" in window.banner.styleSheet()
        reopened = MainWindow(store)  # the next window starts in the theme chosen last
        assert reopened.theme_actions["light"].isChecked()
        reopened.close()
    finally:
        theme.apply("system")  # the palette is the application's: leave it as the other tests expect


def test_a_run_the_filter_hides_leaves_the_selection_as_it_is(window: MainWindow, store: Store) -> None:
    """A run started while the table is filtered (and the filter hides it): selecting it cleared
    the user's selection and showed nothing."""
    shown_run, hidden = finished_run(store, "vit"), finished_run(store, "mae")
    store.update_run(shown_run, tags="baseline")
    poll(window)
    window.search.setText("baseline")
    settle(window)
    window.select_run(shown_run)
    window.select_run(hidden)
    assert [r.id for r in window.selected_runs()] == [shown_run]
    window.search.clear()


def test_a_run_selected_by_the_window_while_ctrl_is_held_stays_selected(window: MainWindow, store: Store,
                                                                         qtbot) -> None:
    """The window selects a run itself (one just created: once when its poll shows it, and again
    on request). With Ctrl held, or left so by the last key event of an earlier test, the second
    selection once toggled the run off."""
    first, second = finished_run(store, "vit"), finished_run(store, "vit")
    poll(window)
    qtbot.keyPress(window.table, Qt.Key.Key_Control, Qt.KeyboardModifier.ControlModifier)
    try:
        assert QApplication.keyboardModifiers() & Qt.KeyboardModifier.ControlModifier  # as the user holds it
        window.select_run(first)
        window.select_run(second)
        window.select_run(second)
        assert [r.id for r in window.selected_runs()] == [second]
    finally:
        qtbot.keyRelease(window.table, Qt.Key.Key_Control)


def test_parallel_keeps_the_metric_chosen_over_a_visit_to_runs_without_it(window: MainWindow, store: Store) -> None:
    """The Trash's runs lack val/loss: the axis shows another metric there, and val/loss again after."""
    kept = [finished_run(store, "vit", lr=lr) for lr in (0.001, 0.002)]
    for rid in kept:
        store.update_run(rid, summary={"val/top1": 0.3 + rid / 100, "val/loss": 2.0 - rid / 100})
    gone = [finished_run(store, "vit", lr=lr) for lr in (0.003, 0.004)]
    for rid in gone:
        store.update_run(rid, summary={"val/top1": 0.2})
    view = window.coords
    view.show_runs([store.get_run(r) for r in kept])
    view.metric_box.setCurrentText("val/loss")  # the user's choice
    view.show_runs([store.get_run(r) for r in gone])
    assert view.metric_box.currentText() == "val/top1"
    view.show_runs([store.get_run(r) for r in kept])
    assert view.metric_box.currentText() == "val/loss"


def test_an_error_no_code_caught_is_said_in_the_window_once_at_a_time(window: MainWindow, monkeypatch) -> None:
    """A bug in a slot printed its traceback on stderr only, and the click seemed to do nothing."""
    import sys

    from workbench.ui import say_errors

    monkeypatch.setattr(sys, "excepthook", lambda *_: None)  # what Python prints: stderr
    say_errors(window)
    for _ in range(3):  # a slot failing at every poll: one box, not three
        try:
            raise ImportError("cannot import name 'fit_columns' from 'workbench.ui.widgets'")
        except ImportError:
            sys.excepthook(*sys.exc_info())
    boxes = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert len(boxes) == 1 and boxes[0].text().startswith("ImportError: cannot import name 'fit_columns'")
    boxes[0].close()
    QApplication.processEvents()
    try:
        raise ValueError("the next one")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    assert [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()][0].startswith("ValueError")
    for box in window.findChildren(QMessageBox):
        box.close()
    QApplication.processEvents()
    printed = []
    monkeypatch.setattr(sys, "excepthook", lambda *args: printed.append(args))
    say_errors(window)

    def off_the_gui_thread() -> None:  # a widget made here would crash the window: printed only
        try:
            raise KeyError("in a pool thread")
        except KeyError:
            sys.excepthook(*sys.exc_info())

    import threading

    thread = threading.Thread(target=off_the_gui_thread)
    thread.start()
    thread.join()
    assert len(printed) == 1 and not [box for box in window.findChildren(QMessageBox) if box.isVisible()]
