"""The new-experiment dialog: generated form, inline validation, parents, presets, and a real
run started from it (slow: a real worker trains while the window polls)."""

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.conftest import finished_run
from tests.ui.conftest import in_dialog, poll, select_method, settle
from workbench.jobs import create_run
from workbench.store import RunStatus, Store
from workbench.ui.main_window import MainWindow
from workbench.ui.new_run_dialog import NewRunDialog


def test_form_is_generated_from_the_config_with_help(qtbot, store: Store) -> None:
    dialog = NewRunDialog(store)
    qtbot.addWidget(dialog)
    form = dialog.form
    assert form.cls.method == "vit"
    assert form.values()["width"] == 64  # the tiny preset
    assert "patch side in pixels" in form.widgets["patch_size"].toolTip()
    assert form.widgets["pos_embed"].count() == 4
    workers = form.widgets["num_workers"]  # a minimum that means something says it, not a bare -1
    assert workers.value() == -1 and workers.text() == "auto" and form.values()["num_workers"] == -1
    workers.setValue(4)
    assert workers.text() == "4" and form.values()["num_workers"] == 4
    assert form.widgets["eval_every"].text() == "each epoch"
    assert dialog.start_button.isEnabled() and dialog.error.text() == ""
    dialog.preset.setCurrentText("paper")
    dialog.apply_preset()
    assert form.values()["image_size"] == 224 and form.values()["patch_size"] == 16


def test_the_cluster_group_shows_slurms_fields_only_for_a_slurm_run(qtbot, store: Store) -> None:
    dialog = NewRunDialog(store)
    qtbot.addWidget(dialog)
    form = dialog.form
    slurm_fields = [name for name in form.widgets if name.startswith("slurm_")]
    assert len(slurm_fields) >= 8 and form.rows["executor"] is form.rows["slurm_partition"]  # one group
    assert not any(form.rows[n].isRowVisible(form.widgets[n]) for n in slurm_fields)
    form.widgets["executor"].setCurrentText("slurm")
    assert all(form.rows[n].isRowVisible(form.widgets[n]) for n in slurm_fields)
    form.widgets["slurm_sbatch"].setText("-C a100")
    qtbot.waitUntil(lambda: not dialog.start_button.isEnabled(), timeout=30_000)
    assert "slurm sbatch: '-C' is not an sbatch flag" in dialog.error.text() and "d64545" in form.widgets["slurm_sbatch"].styleSheet()
    form.widgets["executor"].setCurrentText("local")
    assert not form.rows["slurm_sbatch"].isRowVisible(form.widgets["slurm_sbatch"])


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
    select_method(dialog, "mae")
    assert dialog.form.cls.method == "mae" and dialog.start_button.isEnabled()
    dialog.form.widgets["mask_ratio"].setText("0.99")
    assert not dialog.start_button.isEnabled() and "mask ratio" in dialog.error.text()
    assert dialog.mask_preview.count.text() == "no preview: a mask ratio of 0.99 is outside 0.05–0.95"


def test_a_batch_larger_than_the_chosen_dataset_is_said_before_start(qtbot, store: Store, tmp_path) -> None:
    store.add_dataset("few", "imagefolder", tmp_path, stats={"classes": ["a", "b"], "images": 12})
    dialog = NewRunDialog(store)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.form.widgets["dataset"].findText("few") >= 0, timeout=30_000)
    dialog.form.widgets["dataset"].setCurrentText("few")
    qtbot.waitUntil(lambda: not dialog.start_button.isEnabled(), timeout=30_000)
    assert "batch size: 64 is larger than the training set of dataset 'few' (11 images, 1 of its 12 held out for " \
           "validation)" in dialog.error.text()
    dialog.form.widgets["batch_size"].setValue(8)
    qtbot.waitUntil(dialog.start_button.isEnabled, timeout=30_000)


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
    assert dialog.start_from.kind.currentText() == "the encoder run's weights"  # not "random weights"
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
    older = create_run(store, "mae", preset="tiny")
    store.update_run(older.id, status=RunStatus.FINISHED)
    newest = create_run(store, "mae", preset="tiny")
    store.update_run(newest.id, status=RunStatus.FINISHED)
    picked = NewRunDialog(store, method="finetune", selected=[vit.id, older.id])  # selected in the table
    qtbot.addWidget(picked)
    assert picked.parent_boxes["encoder"].currentData() == older.id  # not the newest MAE
    plain = NewRunDialog(store, method="finetune")
    qtbot.addWidget(plain)
    assert plain.parent_boxes["encoder"].currentData() == newest.id
    plain.set_method("vit")
    assert plain.start_from.kind.currentText() == "random weights"


@pytest.mark.slow
def test_a_run_started_from_the_dialog_trains_in_the_spare_worker_and_can_be_cancelled(qtbot, store: Store) -> None:
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.load()
    warmed = []

    def start(dialog: NewRunDialog) -> None:
        window.tasks.wait()  # the spare worker's start, asked for as the dialog opened
        warmed.append(window.runner.spare.proc)
        dialog.name.setText("from the dialog")
        dialog.form.widgets["log_every"].setValue(5)
        dialog.form.widgets["epochs"].setValue(3)
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)

    in_dialog(start)
    run = window.new_run()
    assert run is not None and run.name == "from the dialog" and run.config["epochs"] == 3
    settle(window)  # the poll the dialog's Start asked for starts the queued run
    window.select_run(run.id)
    assert store.get_run(run.id).status == RunStatus.RUNNING
    assert store.get_run(run.id).pid == warmed[0].pid  # the spare took it ...
    qtbot.waitUntil(lambda: window.curves.point_count(run.id, "train/loss") >= 2, timeout=90_000)
    qtbot.waitUntil(lambda: poll(window) or window.runner.spare is not None, timeout=10_000)
    following = window.runner.spare.proc  # the next run's, once this one trains
    assert following.pid != warmed[0].pid and following.poll() is None
    window.actions.cancel.trigger()
    qtbot.waitUntil(lambda: store.get_run(run.id).status == RunStatus.CANCELLED, timeout=30_000)
    poll(window)
    assert window.model.run_at(window.model.row_of(run.id)).status == "cancelled"
    assert "worker start" in window.log.toPlainText()
    assert f"run {run.id}: vit on cpu" in window.log.toPlainText()  # the spare wrote the run's log
    window.close()
    assert following.wait(timeout=10) is not None  # the window's end ends its spare (untaken, it holds nothing)


def test_the_next_new_experiment_opens_on_the_last_preset_chosen_even_after_a_duplicate(
        window: MainWindow, store: Store) -> None:
    window.schedule = lambda: []  # nothing trains here: only the dialogs matter

    def start_tiny_mae(dialog: NewRunDialog) -> None:
        select_method(dialog, "mae")
        dialog.preset.setCurrentText("tiny")
        dialog.apply_preset()
        dialog.start_button.click()

    in_dialog(start_tiny_mae)
    first = window.new_run()
    assert first.method == "mae" and first.config["decoder_width"] == 48
    settle(window)  # the new run is in the table once the poll it started is shown
    window.select_run(first.id)
    assert [r.id for r in window.selected_runs()] == [first.id]
    in_dialog(lambda dialog: dialog.start_button.click())
    copy = window.duplicate_run()
    assert copy is not None, window.statusBar().currentMessage()
    assert copy.name == f"{first.name} (copy)" and copy.config == first.config

    opened = {}

    def look(dialog: NewRunDialog) -> None:
        opened.update(method=dialog.form.cls.method, preset=dialog.preset.currentText(), **dialog.form.values())
        dialog.reject()

    in_dialog(look)
    assert window.new_run() is None
    assert (opened["method"], opened["preset"], opened["decoder_width"], opened["width"]) == ("mae", "tiny", 48, 64)


def test_the_wheel_scrolls_the_form_and_never_edits_an_unfocused_field(qtbot, store: Store) -> None:
    dialog = NewRunDialog(store, method="mae")
    qtbot.addWidget(dialog)
    dialog.resize(900, 500)  # short enough to scroll
    dialog.show()
    spin = dialog.form.widgets["decoder_width"]
    dialog.name.setFocus()
    bar = dialog.scroll.verticalScrollBar()
    dialog.scroll.ensureWidgetVisible(spin)
    QApplication.processEvents()
    before = (spin.value(), bar.value())
    centre = QPointF(spin.rect().center())

    def wheel(widget, delta: int) -> None:
        QApplication.sendEvent(widget, QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(),
                                                   QPoint(0, delta), Qt.MouseButton.NoButton,
                                                   Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                                                   False))

    wheel(spin, 120)
    assert spin.value() == before[0] and bar.value() < before[1]  # the page moved, the value did not
    wheel(dialog.form.widgets["mask_strategy"], -120)
    assert dialog.form.values()["mask_strategy"] == "random"
    spin.setFocus()
    wheel(spin, 120)
    assert spin.value() != before[0]  # once focused (clicked), the wheel edits it


def test_start_from_a_weights_file_fills_and_locks_the_shape_and_starts_with_init(qtbot, store: Store,
                                                                                 tmp_path) -> None:
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=96, depth=3,
                               num_heads=3, mlp_ratio=2.0, num_classes=10)
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    dialog = NewRunDialog(store)
    qtbot.addWidget(dialog)
    assert not dialog.form.rows["init"].isRowVisible(dialog.form.widgets["init"])  # edited by Start from instead
    dialog.start_from.kind.setCurrentIndex(2)  # a file or folder
    dialog.start_from.text.setText(str(tmp_path / "w.safetensors"))
    values = dialog.form.values()
    assert (values["width"], values["depth"], values["mlp_ratio"], values["patch_size"]) == (96, 3, 2.0, 8)
    assert not dialog.form.widgets["width"].isEnabled() and "re-initialised" in dialog.form.widgets["width"].toolTip()
    assert dialog.form.widgets["patch_size"].isEnabled()  # another patch size is resampled
    dialog.form.widgets["heads"].setValue(3)
    assert dialog.start_button.isEnabled(), dialog.error.text()
    dialog.start()  # the run is written on a worker thread
    qtbot.waitUntil(lambda: dialog.created is not None, timeout=30_000)
    assert dialog.created.config["init"] == str(tmp_path / "w.safetensors")
    dialog.start_from.kind.setCurrentIndex(0)  # random weights again: nothing locked
    assert dialog.form.values()["init"] == "" and dialog.form.widgets["width"].isEnabled()
    (tmp_path / "notes.pth").write_text("not weights")
    dialog.start_from.kind.setCurrentIndex(2)
    dialog.start_from.text.setText(str(tmp_path / "notes.pth"))  # said as it is typed, not by a failed run
    assert not dialog.start_button.isEnabled()
    assert "neither a .safetensors file nor a file torch.save wrote" in dialog.error.text()

    select_method(dialog, "dvae")  # no timm network: no Start from
    assert dialog.head.isRowVisible(dialog.start_from) is False


def test_a_started_form_cannot_be_cancelled_until_its_run_is_written(qtbot, store: Store) -> None:
    """The run is written on a worker thread: Cancel (or Esc, or closing the window) meanwhile would
    leave the user believing nothing was made while a run is queued and trains."""
    from PySide6.QtWidgets import QDialog, QDialogButtonBox

    dialog = NewRunDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start()
    assert dialog.starting and dialog.start_button.text() == "Starting…" and not dialog.start_button.isEnabled()
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).isEnabled()
    dialog.reject()
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.created is not None, timeout=30_000)
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Accepted
    assert [r.id for r in store.list_runs()] == [dialog.created.id]


def test_duplicating_a_run_that_started_from_a_run_no_longer_offered_opens_the_form(
        window: MainWindow, store: Store) -> None:
    """Its source archived (or not finished): the form opens, its Start from naming what it was."""
    source = finished_run(store, "vit")
    copied = finished_run(store, "vit", init=f"run:{source}:best")
    store.set_archived([source], True)
    poll(window)
    window.select_run(copied)
    seen = []
    in_dialog(lambda dialog: (seen.append(dialog.start_from.value()), dialog.reject()))
    assert window.duplicate_run() is None and seen == [f"run:{source}:best"]


def test_a_teacher_sets_the_students_dataset_and_an_encoder_suggests_the_fine_tunes(qtbot, store: Store,
                                                                                    tmp_path) -> None:
    """A DeiT student learns its teacher's classes: picking a teacher trained on another dataset
    takes that dataset into the form (locked, saying why), and no teacher frees it again. A
    fine-tune starts on its encoder's dataset, which may be changed."""
    from tests.data.test_user_datasets import write_folder
    from workbench.data import registry

    write_folder(tmp_path / "photos", per_class=30)
    registry.register(store, "photos", "imagefolder", tmp_path / "photos")
    teacher = finished_run(store, "cnn", dataset="photos")
    dialog = NewRunDialog(store, method="deit")
    qtbot.addWidget(dialog)
    dataset = dialog.form.widgets["dataset"]
    assert dialog.parent_boxes["teacher"].currentData() == teacher
    assert dialog.form.values()["dataset"] == "photos" and not dataset.isEnabled()
    assert f"taken from the teacher run {teacher}" in dataset.toolTip()
    assert dialog.start_button.isEnabled(), dialog.error.text()
    dialog.parent_boxes["teacher"].setCurrentIndex(0)
    assert dataset.isEnabled() and "needs a finished cnn, vit, deit or swin run" in dialog.error.text()
    encoder = finished_run(store, "mae", dataset="photos")
    tune = NewRunDialog(store, method="finetune")
    qtbot.addWidget(tune)
    assert tune.parent_boxes["encoder"].currentData() == encoder
    assert tune.form.values()["dataset"] == "photos" and tune.form.widgets["dataset"].isEnabled()
    tune.form.set_values({"dataset": "shapes"})
    tune.validate()
    assert tune.start_button.isEnabled(), tune.error.text()
