"""The views of what models learned, on real tiny runs: the mask preview (the training code's
masks), the snapshot player, reconstructions and attention maps from another process, and the
distillation comparison against the stored metrics."""

import numpy as np
import pytest
from PIL import Image

from tests.conftest import finished_run
from workbench.data.masking import make_mask
from workbench.draw import HEADER_PX
from workbench.engine.execute import execute
from workbench.errors import WorkbenchError
from workbench.jobs import create_run
from workbench.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("inspect_views")]  # one module fixture


@pytest.fixture(scope="module")
def runs(tmp_path_factory, dataset_cache):
    """Finished tiny runs: an MAE with several snapshots, a CNN teacher, a hard-distilled DeiT
    and its no-distillation baseline."""
    home = tmp_path_factory.mktemp("inspect-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(home))
        patch.setenv("WORKBENCH_DATASETS", str(dataset_cache))
        store = Store()

        def train(method: str, overrides: list[str], parents: dict | None = None) -> int:
            run = create_run(store, method, preset="tiny", overrides=overrides, parents=parents)
            assert execute(store, run.id, log=lambda _: None) == "finished"
            return run.id

        ids = {"mae": train("mae", ["max_steps=30", "eval_every=10"]),
               "teacher": train("cnn", ["max_steps=30", "eval_every=30"])}
        ids["deit"] = train("deit", ["max_steps=20", "eval_every=20"], {"teacher": ids["teacher"]})
        ids["baseline"] = train("deit", ["max_steps=20", "eval_every=20", "distill=none"])
        yield store, ids


def test_mask_preview_shows_the_training_masks(qtbot) -> None:
    from workbench.ui.mask_preview import MaskPreview

    preview = MaskPreview()
    qtbot.addWidget(preview)
    preview.configure(8, 4, exact=False)
    preview.set_choices(("block", "random"), (0.05, 0.6))
    preview.strategy.setCurrentText("block")
    images = [np.full((32, 32, 3), 200 + i, np.uint8) for i in range(3)]
    preview.set_images(images)
    with qtbot.waitSignal(preview.changed):
        preview.slider.setValue(40)
    assert preview.values() == (0.4, "block", 0)
    expected = make_mask("block", 3, (8, 8), 0.4, np.random.default_rng(0), exact=False)
    assert np.array_equal(preview.masks, expected)
    before = preview.picture.pixmap().toImage()
    preview.seed.setValue(7)
    assert np.array_equal(preview.masks, make_mask("block", 3, (8, 8), 0.4, np.random.default_rng(7), exact=False))
    assert preview.picture.pixmap().toImage() != before  # the picture follows the masks
    preview.slider.setValue(60)
    assert preview.spin.value() == pytest.approx(0.6)
    assert "of 64 patches masked" in preview.count.text() and "up to 38" in preview.count.text()


def test_new_run_dialog_mask_preview_edits_the_form(runs, qtbot) -> None:
    from workbench.ui.new_run_dialog import NewRunDialog

    store, _ = runs
    dialog = NewRunDialog(store, method="mae")
    qtbot.addWidget(dialog)
    assert not dialog.mask_box.isHidden()
    qtbot.waitUntil(lambda: len(dialog.mask_preview.images) == 5, timeout=30_000)
    dialog.mask_preview.slider.setValue(50)
    dialog.mask_preview.strategy.setCurrentText("grid")
    assert dialog.form.values()["mask_ratio"] == 0.5 and dialog.form.values()["mask_strategy"] == "grid"
    assert dialog.mask_preview.masks.sum(1).tolist() == [32] * 5  # MAE masks exactly round(64 * 0.5)
    dialog.form.set_values({"mask_ratio": 0.9})
    assert dialog.mask_preview.slider.value() == 90
    dialog.set_method("vit")
    assert dialog.mask_box.isHidden()


def test_snapshot_player_steps_through_training(runs, qtbot) -> None:
    from workbench.ui.snapshots import SnapshotsView

    store, ids = runs
    view = SnapshotsView(store)
    qtbot.addWidget(view)
    view.show_run(store.get_run(ids["mae"]))
    assert view.kind.currentText() == "reconstructions"
    steps = [a.step for a in view.frames]
    assert steps == sorted(steps) and len(steps) >= 3
    assert view.slider.value() == len(steps) - 1 and f"step {steps[-1]}" in view.step_label.text()
    view.slider.setValue(0)
    assert f"step {steps[0]}" in view.step_label.text() and not view.image.item.pixmap().isNull()
    view.play.setChecked(True)
    qtbot.waitUntil(lambda: view.slider.value() == len(steps) - 1, timeout=10_000)
    qtbot.waitUntil(lambda: not view.play.isChecked(), timeout=5_000)  # stops at the newest


def test_inspect_view_reconstructs_and_maps_attention(runs, qtbot, tmp_path) -> None:
    from workbench.ui.inspect_view import InspectView
    from workbench.ui.tasks import Tasks

    store, ids = runs
    tasks = Tasks()
    view = InspectView(store, tasks)
    qtbot.addWidget(view)
    view.show_run(store.get_run(ids["mae"]))
    qtbot.waitUntil(lambda: view.samples.count() == 10, timeout=30_000)
    assert view.reconstruct_button.isEnabled() and view.attention_button.isEnabled()
    view.mask.slider.setValue(50)
    view.mask.seed.setValue(3)
    assert view.start("reconstruct")
    qtbot.waitUntil(lambda: view.result is not None or view.info.text().startswith("failed"), timeout=120_000)
    result = view.result
    assert result is not None, view.info.text()
    expected = make_mask("random", 1, (8, 8), 0.5, np.random.default_rng(3))
    assert result["masked"] == int(expected.sum()) == 32 and result["visible"] == 32 and result["seed"] == 3
    assert 0 < result["mse"] < 1 and "MSE over the masked pixels" in view.info.text()
    pixmap = view.output.item.pixmap()
    assert pixmap.width() == 4 * 194 + 2 and pixmap.height() == HEADER_PX + 196  # four 192 px panels, a header
    assert view.source.text().startswith("image: a validation image of class")
    assert view.output.save(str(tmp_path / "grid.png")) and (tmp_path / "grid.png").stat().st_size > 1000

    assert view.start("attention")
    qtbot.waitUntil(lambda: view.result is not None or view.info.text().startswith("failed"), timeout=120_000)
    assert view.result is not None and view.result["heads"] == 4 and view.result["blocks"] == 2
    assert view.output.item.pixmap().width() == 6 * 162 + 2  # image, four heads, rollout
    assert view.result["prediction"] == [] and "an encoder: no prediction" in view.info.text()  # MAE: no head
    image = tmp_path / "mine.png"
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(image)
    assert view.load_file(str(image)) and view.source.text() == f"image: {image}"

    view.show_run(None)  # the run was deselected (or deleted): nothing of it stays on screen
    assert view.samples.count() == 0 and view.output.item.pixmap().isNull() and view.source.text() == "image: none yet"
    view.show_run(store.get_run(ids["teacher"]))  # a CNN: nothing to ask
    qtbot.waitUntil(lambda: "nothing to inspect" in view.title.text(), timeout=30_000)
    assert not view.attention_button.isEnabled() and not view.reconstruct_button.isEnabled()
    assert tasks.wait()


def test_inspect_refuses_what_a_run_cannot_do(runs) -> None:
    from workbench import inspect

    store, ids = runs
    with pytest.raises(WorkbenchError, match="only methods that reconstruct pixels"):
        inspect.reconstruct(store, ids["deit"], "val:0")
    with pytest.raises(WorkbenchError, match="without a ViT inside"):
        inspect.attention(store, ids["teacher"], "val:0")
    with pytest.raises(WorkbenchError, match="must leave at least one"):
        inspect.reconstruct(store, ids["mae"], "val:0", ratio=0.999)
    with pytest.raises(WorkbenchError, match="no readable checkpoint at step 12345"):
        inspect.attention(store, ids["deit"], "val:0", step=12345)
    image, info = inspect.attention(store, ids["deit"], "val:1")  # the student, with its two prefix tokens
    assert info["heads"] == 4 and image.dtype == np.uint8
    classes = inspect.load_trained(store, ids["deit"]).data.classes
    names, probs = zip(*info["prediction"])  # the student's own top three for this image
    assert len(names) == 3 and set(names) <= set(classes) and probs == tuple(sorted(probs, reverse=True))
    assert 0 < sum(probs) <= 1 + 1e-6


def test_distillation_view_matches_the_stored_metrics(runs, qtbot) -> None:
    from workbench.ui.distill_view import DistillView

    store, ids = runs
    view = DistillView(store)
    qtbot.addWidget(view)
    assert view.body.isHidden() and "select a finished DeiT run" in view.title.text()  # before any run
    view.show_run(store.get_run(ids["deit"]))
    summary = store.get_run(ids["deit"]).summary
    assert view.baseline.currentData() == ids["baseline"]
    assert view.bars["cls+dist"] == pytest.approx(summary["val/top1"])
    assert view.bars["cls"] == pytest.approx(summary["val/top1_cls"])
    assert view.bars["dist"] == pytest.approx(summary["val/top1_dist"])
    assert view.bars["teacher"] == pytest.approx(summary["val/teacher_top1"])
    assert view.bars["baseline"] == pytest.approx(store.get_run(ids["baseline"]).summary["val/top1"])
    assert f"{summary['val/agreement']:.1%}" in view.title.text()
    cells = [[int(view.matrix.item(r, c).text()) for c in range(10)] for r in range(10)]
    assert sum(map(sum, cells)) == 1000
    assert sum(cells[i][i] for i in range(10)) / 1000 == pytest.approx(summary["val/agreement"])
    assert not view.grid.item.pixmap().isNull()
    view.baseline.setCurrentIndex(0)  # no baseline
    assert "baseline" not in view.bars
    not_offered = view.why_not.text()
    assert f"{ids['mae']} · mae-{ids['mae']} (mae is not a classifier)" in not_offered
    assert f"{ids['teacher']} · cnn-{ids['teacher']} (its teacher, shown already)" in not_offered

    plain = finished_run(store, "vit")  # the paper's baseline: a plain ViT, no report of its own
    store.update_run(plain, summary={"val/top1": 0.42})
    elsewhere = finished_run(store, "vit", dataset="shapes64")
    view.show_run(None)
    view.show_run(store.get_run(ids["deit"]))
    assert [view.baseline.itemData(i) for i in range(1, view.baseline.count())] == [ids["baseline"], plain]
    assert view.baseline.currentData() == ids["baseline"]  # the same student undistilled comes first
    view.baseline.setCurrentIndex(view.baseline.findData(plain))
    assert view.bars["baseline"] == pytest.approx(0.42) and "baseline 42.0%" in view.title.text()
    assert f"{elsewhere} · vit-{elsewhere} (dataset shapes64)" in view.why_not.text()
    assert not view.body.isHidden()
    view.show_run(store.get_run(ids["mae"]))
    assert view.bars == {} and "no distillation report" in view.title.text()
    assert view.body.isHidden() and view.baseline.isHidden()  # no empty axes and tables
