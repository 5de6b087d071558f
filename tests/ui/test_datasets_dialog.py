"""The datasets dialog: register a real image folder, browse it, see thumbnails and skipped files."""

from pathlib import Path

from PySide6.QtWidgets import QApplication

from tests.data.test_user_datasets import write_folder
from tests.ui.conftest import answer_next_box
from workbench.data import registry
from workbench.store import Store
from workbench.ui.datasets_dialog import DatasetsDialog
from workbench.ui.new_run_dialog import NewRunDialog


def test_register_browse_and_use_a_folder(qtbot, store: Store, tmp_path: Path) -> None:
    write_folder(tmp_path / "photos")
    dialog = DatasetsDialog(store)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 0).text() == "shapes"
    dialog.name.setText("photos")
    dialog.path.setText(str(tmp_path / "photos"))
    dialog.register()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=30_000)
    assert "registered photos: 36 images, 6 skipped" in dialog.status.text()
    assert dialog.selected_name() == "photos"
    qtbot.waitUntil(lambda: dialog.thumbnails.pixmap() is not None and not dialog.thumbnails.pixmap().isNull(),
                    timeout=30_000)
    assert dialog.thumbnails.pixmap().width() > 300  # a row of thumbnails per class
    assert "blue (12)" in dialog.summary.text()
    skipped = [dialog.problems.item(i).text() for i in range(dialog.problems.count())]
    assert any("notes.txt" in s and "not an image file" in s for s in skipped) and len(skipped) == 6

    dialog.name.setText("nothing")
    dialog.path.setText(str(tmp_path / "missing"))
    dialog.register()
    qtbot.waitUntil(lambda: "Not registered" in dialog.status.text(), timeout=30_000)
    assert "there is no folder" in dialog.status.text()

    new_run = NewRunDialog(store)
    qtbot.addWidget(new_run)
    combo = new_run.form.widgets["dataset"]
    assert [combo.itemText(i) for i in range(combo.count())] == ["shapes", "photos"]
    combo.setCurrentText("photos")
    QApplication.processEvents()
    assert not new_run.start_button.isEnabled()  # the tiny preset's batch of 64 is more than it holds
    assert "larger than the training set of dataset 'photos' (33 images" in new_run.error.text()
    new_run.form.widgets["batch_size"].setValue(16)
    QApplication.processEvents()
    assert new_run.start_button.isEnabled()


def test_a_validation_folder_shows_its_count_and_replaces_the_held_out_share(qtbot, store: Store,
                                                                              tmp_path: Path) -> None:
    write_folder(tmp_path / "train")
    write_folder(tmp_path / "val", per_class=4)
    dialog = DatasetsDialog(store)
    qtbot.addWidget(dialog)
    assert dialog.val_fraction.isEnabled()
    dialog.val_path.setText(str(tmp_path / "val"))
    assert not dialog.val_fraction.isEnabled() and "not used" in dialog.val_fraction.toolTip()
    dialog.name.setText("split")
    dialog.path.setText(str(tmp_path / "train"))
    dialog.register()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=30_000)
    row = [dialog.table.item(1, c).text() for c in range(dialog.table.columnCount())]
    assert row[0] == "split" and row[4] == "12 images"  # 4 good images in each of 3 classes
    assert f"12 images in {tmp_path / 'val'}" in dialog.summary.text()
    assert dialog.remove_button.isEnabled() and not dialog.remove_button.hasFocus()  # Enter does not forget it
    dialog.table.selectRow(0)  # shapes, built in: nothing to forget
    assert not dialog.remove_button.isEnabled()
    dialog.table.selectRow(1)
    dialog.val_path.clear()
    assert dialog.val_fraction.isEnabled()

    filling = registry.resolve(store, "split", 16).filling  # a run's decoded cache of it
    filling.thread.join()
    assert filling.folder.is_dir()
    seen = answer_next_box("Cancel")
    dialog.remove_selected()
    assert "split" in seen[0] and store.get_dataset("split") is not None  # forgetting asks first
    answer_next_box("Forget")
    dialog.remove_selected()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=30_000)  # forgotten on a worker thread
    assert store.get_dataset("split") is None and not filling.folder.exists()  # its cache with it
    assert "forgot split (1 decoded cache(s) deleted)" == dialog.status.text()
    assert (tmp_path / "val").is_dir() and (tmp_path / "train").is_dir()  # the user's files untouched
