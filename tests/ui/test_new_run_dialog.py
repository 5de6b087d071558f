"""The new-experiment dialog: generated form, inline validation, parents, presets, and a real
run started from it (slow: a real worker trains while the window polls)."""

import pytest
from PySide6.QtCore import Qt

from workbench.jobs import create_run
from workbench.store import RunStatus, Store
from workbench.ui.main_window import MainWindow
from workbench.ui.new_run_dialog import NewRunDialog


def _select_method(dialog: NewRunDialog, method: str) -> None:
    for i in range(dialog.methods.count()):
        if dialog.methods.item(i).data(Qt.ItemDataRole.UserRole) == method:
            dialog.methods.setCurrentRow(i)
            return
    raise AssertionError(method)


def test_form_is_generated_from_the_config_with_help(qtbot, store: Store) -> None:
    dialog = NewRunDialog(store)
    qtbot.addWidget(dialog)
    form = dialog.form
    assert form.cls.method == "vit"
    assert form.values()["width"] == 64  # the tiny preset
    assert "patch side in pixels" in form.widgets["patch_size"].toolTip()
    assert form.widgets["pos_embed"].count() == 3
    assert dialog.start_button.isEnabled() and dialog.error.text() == ""
    dialog.preset.setCurrentText("paper")
    dialog.apply_preset()
    assert form.values()["image_size"] == 224 and form.values()["patch_size"] == 16


def test_invalid_input_disables_start_and_says_why(qtbot, store: Store) -> None:
    dialog = NewRunDialog(store)
    qtbot.addWidget(dialog)
    dialog.form.widgets["patch_size"].setValue(5)
    assert not dialog.start_button.isEnabled()
    assert "patch size: patch size 5 does not divide image size 32" in dialog.error.text()
    assert "d64545" in dialog.form.widgets["patch_size"].styleSheet()
    dialog.form.widgets["patch_size"].setValue(4)
    assert dialog.start_button.isEnabled() and dialog.form.widgets["patch_size"].styleSheet() == ""
    dialog.form.widgets["lr"].setText("abc")
    assert not dialog.start_button.isEnabled() and "lr" in dialog.error.text()
    _select_method(dialog, "mae")
    assert dialog.form.cls.method == "mae" and dialog.start_button.isEnabled()
    dialog.form.widgets["mask_ratio"].setText("0.99")
    assert not dialog.start_button.isEnabled() and "mask ratio" in dialog.error.text()


def test_parent_pickers_offer_compatible_finished_runs_and_fill_the_encoder_shape(qtbot, store: Store) -> None:
    mae = create_run(store, "mae", preset="tiny", overrides=["width=96", "heads=3"])
    unfinished = create_run(store, "mae", preset="tiny")
    vit = create_run(store, "vit", preset="tiny")
    for run in (mae, vit):
        store.update_run(run.id, status=RunStatus.FINISHED)
    ckpt = store.home / "c.pt"
    ckpt.write_bytes(b"w")
    store.add_artifact(mae.id, "checkpoint", ckpt)
    dialog = NewRunDialog(store, method="finetune")
    qtbot.addWidget(dialog)
    box = dialog.parent_boxes["encoder"]
    offered = [box.itemData(i) for i in range(box.count())]
    assert offered == [None, mae.id]  # not the unfinished MAE, not the ViT
    assert unfinished.id not in offered
    form = dialog.form
    assert form.values()["width"] == 96 and not form.widgets["width"].isEnabled()
    assert "taken from the encoder run" in form.widgets["width"].toolTip()
    assert dialog.start_button.isEnabled()
    box.setCurrentIndex(0)
    assert not dialog.start_button.isEnabled() and "needs a finished mae, beit or mpp run" in dialog.error.text()
    assert form.widgets["width"].isEnabled()


@pytest.mark.slow
def test_a_run_started_from_the_dialog_trains_and_can_be_cancelled(qtbot, store: Store) -> None:
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.load()
    dialog = NewRunDialog(store, window)
    qtbot.addWidget(dialog)
    dialog.name.setText("from the dialog")
    dialog.form.widgets["log_every"].setValue(5)
    dialog.form.widgets["epochs"].setValue(3)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    run = dialog.created
    assert run is not None and run.name == "from the dialog" and run.config["epochs"] == 3
    window.poll()  # the runner starts the queued run
    window.select_run(run.id)
    assert store.get_run(run.id).status == RunStatus.RUNNING
    qtbot.waitUntil(lambda: window.curves.point_count(run.id, "train/loss") >= 2, timeout=90_000)
    window.cancel_selected()
    qtbot.waitUntil(lambda: store.get_run(run.id).status == RunStatus.CANCELLED, timeout=30_000)
    window.poll()
    assert window.model.run_at(window.model.row_of(run.id)).status == "cancelled"
    assert "worker start" in window.log.toPlainText()
    window.close()
