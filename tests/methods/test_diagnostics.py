"""Classifier diagnostics: the arithmetic on hand-made logits, and a real run's end-of-training
report read by `workbench show --json`, `workbench diagnose` and the GUI's Diagnostics view."""

import json

import numpy as np
import torch

from workbench.cli import main
from workbench.engine.execute import execute
from workbench.jobs import create_run
from workbench.methods.diagnostics import Diagnostics
from workbench.store import Store

CLASSES = [f"class {i}" for i in range(6)]


def _pixels(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).mul(255).clamp(0, 255).byte().numpy()


def test_confusion_precision_recall_top5_and_the_most_confident_mistakes() -> None:
    diagnostics = Diagnostics(CLASSES, _pixels, k=2)
    labels = torch.tensor([0, 0, 1, 2, 3, 5])
    logits = torch.full((6, 6), -5.0)
    for row, (pred, strength) in enumerate([(0, 5), (1, 9), (1, 5), (0, 1), (3, 5), (4, 7)]):
        logits[row, pred] = strength
    logits[3, 2] = 0.5  # the true class of row 3 is its second choice
    images = torch.arange(6).float().view(6, 1, 1, 1).expand(6, 3, 4, 4) / 10  # image i is grey level i/10
    diagnostics.add(logits[:3], labels[:3], images[:3])  # in two batches, as validation arrives
    diagnostics.add(logits[3:], labels[3:], images[3:])
    data, gallery = diagnostics.result()
    confusion = np.array(data["confusion"])
    assert confusion.sum() == data["n"] == 6 and confusion[0, 0] == 1 and confusion[0, 1] == 1 and confusion[5, 4] == 1
    assert data["top1"] == 3 / 6
    rows = {r["class"]: r for r in data["per_class"]}
    assert rows["class 0"]["recall"] == 0.5 and rows["class 0"]["precision"] == 0.5  # 1 of 2; 1 of its 2 predictions
    assert rows["class 1"]["precision"] == 0.5 and rows["class 4"]["precision"] == 0.0 and rows["class 4"]["recall"] is None
    assert data["top5"] == 1.0  # every true class is among the top five of six
    # the two most confident mistakes: row 1 (class 0 as 1, logit 9) then row 5 (class 5 as 4, logit 7)
    assert [(m[2], m[3]) for m in diagnostics.mistakes] == [(0, 1), (5, 4)]
    assert diagnostics.mistakes[0][1][0, 0, 0] == 25  # image 1's pixels (0.1 x 255)
    assert gallery["mistakes"].ndim == 3


def test_a_finished_classifier_reports_its_diagnostics_everywhere(store: Store, qtbot, capsys, tmp_path) -> None:
    from workbench.ui.diagnostics_view import Diagnosis, DiagnosticsView

    run = create_run(store, "vit", preset="tiny", overrides=["max_steps=4", "eval_every=4"])
    assert execute(store, run.id, log=lambda _: None) == "finished"
    assert main(["show", str(run.id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["diagnostics"]
    assert shown["n"] == sum(map(sum, shown["confusion"])) == 1000 and len(shown["per_class"]) == 10
    assert abs(shown["top1"] - store.get_run(run.id).summary["val/top1"]) < 1e-6  # the last evaluation's weights
    assert main(["diagnose", str(run.id), "--weights", "last", "--json", "--out", str(tmp_path / "m.png")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["confusion"] == shown["confusion"] and again["weights"] == "last: step 4"
    assert (tmp_path / "m.png").stat().st_size > 0
    assert main(["diagnose", str(run.id), "--weights", "last", "--out", str(tmp_path / "text.png")]) == 0
    said = capsys.readouterr()
    assert f"the most confident mistakes: {tmp_path / 'text.png'}" in said.err
    rows = said.out.split("confusion (rows: true class, columns: predicted)\n")[1].splitlines()[1:]
    assert [[int(n) for n in row.split()[2:]] for row in rows] == shown["confusion"]  # the matrix, as text

    view = DiagnosticsView(store)
    qtbot.addWidget(view)
    view.show_run(store.get_run(run.id))
    assert view.matrix.rowCount() == 10 and view.per_class.rowCount() == 10
    table = view.per_class  # its four columns in view, "support" not cut
    assert table.minimumWidth() >= sum(table.columnWidth(c) for c in range(4)) > 0
    recalls = [view.per_class.item(r, 2).text() for r in range(10)]
    assert all(len(text) == 5 for text in recalls), recalls  # "0.900", not "0.9"
    assert f"top-1 {shown['top1']:.4f}" in view.title.text() and not view.gallery.item.pixmap().isNull()
    assert view.matrix.horizontalHeaderItem(3).text() == "3"  # numbered as the rows: "gree" named two classes
    assert view.matrix.verticalHeaderItem(3).text().startswith("3 ")
    assert view.matrix.horizontalHeaderItem(3).toolTip() == f"3 {shown['classes'][3]}"
    assert view.weights.isHidden()  # its best evaluation was its last: the weights Export writes
    best = store.artifacts(run.id, "best")[-1]
    store.delete_artifacts([best.id])  # as if its best evaluation had been at step 2
    store.add_artifact(run.id, "best", store.abspath(best), step=2, meta={**best.meta, "value": 0.125})
    view.show_run(None)
    view.show_run(store.get_run(run.id))  # a best evaluation before the end: the view says whose these are
    assert not view.weights.isHidden()
    assert ("These describe the last weights (step 4). Export writes the best by default (val/top1 0.125 at "
            "step 2)") in view.weights.text()
    view._show(store.get_run(run.id), Diagnosis(shown, None))  # a report that keeps no pictures (DeiT's)
    wrong = shown["n"] - sum(row[i] for i, row in enumerate(shown["confusion"]))
    assert wrong > 0 and f"{wrong:,} of the 1,000 validation images were classified wrong" in view.gallery.text.toPlainText()
    right = {**shown, "confusion": [[n if i == j else 0 for j, n in enumerate(row)] for i, row in enumerate(shown["confusion"])]}
    view._show(store.get_run(run.id), Diagnosis(right, None))  # a classifier right on every image: no gallery
    assert "no mistakes: every one of the 1,000 validation images" in view.gallery.text.toPlainText()
    mae = create_run(store, "mae", preset="tiny", overrides=["max_steps=1"])
    view.show_run(store.get_run(mae.id))
    assert "has no diagnostics" in view.title.text() and view.per_class.rowCount() == 0
    assert view.matrix.columnCount() == 0  # not the classifier's class headers


def test_a_count_matrix_is_shaded_from_the_palettes_background(qtbot) -> None:
    """On a dark palette the cells of few counts are dark, not white with black text."""
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QTableWidget

    from workbench.ui.widgets import fill_count_matrix

    table = QTableWidget()
    qtbot.addWidget(table)
    dark = table.palette()
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 30))
    dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    table.setPalette(dark)
    fill_count_matrix(table, [[9, 0], [1, 8]], ["cat", "dog"])
    empty = table.item(0, 1)
    assert empty.background().color().lightness() < 60 and empty.foreground().color().lightness() > 200
    assert table.item(0, 0).background().color().blue() > 150  # the diagonal, at its peak: blue
