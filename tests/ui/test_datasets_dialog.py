"""The datasets dialog: register a real image folder, browse it, see thumbnails and skipped files."""

from pathlib import Path

from PySide6.QtWidgets import QApplication

from tests.data.test_user_datasets import write_folder
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
    assert new_run.start_button.isEnabled()
