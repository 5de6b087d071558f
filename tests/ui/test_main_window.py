"""The desktop app, offscreen: browsing, filtering, comparing, details, and job control."""

import csv
import subprocess
import sys

from PySide6.QtWidgets import QApplication

from tests.conftest import finished_run
from workbench.store import RunStatus, Store
from workbench.ui.main_window import MainWindow


def test_the_gui_does_not_import_torch(home) -> None:
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from workbench.ui.main_window import MainWindow; w = MainWindow(); w.show(); "
            "assert 'sqlalchemy' not in sys.modules, 'the window waited for SQLAlchemy'; w.load(); "
            "from workbench.ui.new_study_dialog import NewStudyDialog; s = w.open_studies(); "
            "assert NewStudyDialog(w.store, s).validate(); w.close(); "
            "assert 'torch' not in sys.modules, 'the GUI imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runs_are_listed_filtered_and_sorted(window: MainWindow, store: Store) -> None:
    ids = [finished_run(store, "vit"), finished_run(store, "mae"), finished_run(store, "vit")]
    store.update_run(ids[2], status=RunStatus.FAILED, tags="baseline", error="boom")
    window.poll()
    assert window.proxy.rowCount() == 3
    assert window.proxy.index(0, 0).data() == ids[2]  # newest first
    window.method_filter.setCurrentText("mae")
    assert window.proxy.rowCount() == 1 and window.proxy.index(0, 2).data() == "mae"
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
    window.select_run(ids[0])
    assert not window.banner.isVisible()


def test_curves_fetch_incrementally_and_export(window: MainWindow, store: Store, tmp_path) -> None:
    run = finished_run(store, "vit")
    store.add_metrics(run, [(s, s / 10, "train/loss", 3 - s / 10, 100.0 + s) for s in range(1, 11)])
    window.poll()
    window.select_run(run)
    window.tasks.wait()
    QApplication.processEvents()
    assert window.curves.point_count(run, "train/loss") == 10
    assert "train/loss" in window.curves.plots
    store.add_metrics(run, [(11, 1.1, "train/loss", 1.5, 111.0), (11, 1.1, "val/top1", 0.5, 111.0)])
    window.poll()
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
    store.update_run(a, summary={"val/top1": 0.4})
    store.update_run(b, summary={"val/top1": 0.6})
    store.add_metrics(b, [(1, 1.0, "val/top1", 0.7, 0.0), (2, 2.0, "val/top1", 0.6, 0.0)])
    window.poll()
    window.select_run(a)
    details = window.details
    assert "--set" in details.cli_command() and "lr=0.002" in details.cli_command()
    details.notes.setPlainText("first try")
    details.tags.setText("lr-sweep")
    details.save_notes()
    assert (store.get_run(a).notes, store.get_run(a).tags) == ("first try", "lr-sweep")
    window.table.selectAll()
    table = window.compare.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert {"lr", "pos_embed", "val/top1 (final)", "val/top1 (best)"} <= set(headers)
    assert "width" not in headers  # equal in both runs
    best = headers.index("val/top1 (best)")
    values = {table.item(r, 0).text(): table.item(r, best).text() for r in range(table.rowCount())}
    assert values[f"{b} · vit-{b}"] == "0.7000"


def test_delete_removes_the_run_and_its_folder(window: MainWindow, store: Store) -> None:
    from workbench import paths

    run = finished_run(store, "vit")
    folder = paths.run_dir(run)
    (folder / "worker.log").write_text("hello")
    window.poll()
    window.select_run(run)
    window.delete_selected(confirm=False)
    window.tasks.wait()
    assert store.list_runs() == [] and not folder.exists()
