"""The curves view: a crosshair with every run's value at the cursor, a legend that never
covers a line, one-point series as markers, the raw curve faint behind a smoothed one, and
losses of different methods never forced onto one axis."""

import numpy as np
from PySide6.QtWidgets import QApplication

from tests.conftest import finished_run
from workbench.store import Store
from workbench.ui.curves import CurvesView


def _view(qtbot, store: Store, runs: dict[int, str]) -> CurvesView:
    view = CurvesView(store)  # fetches inline: no thread pool to wait for
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    view.set_runs({rid: (f"{rid} · {method}-run", method) for rid, method in runs.items()})
    QApplication.processEvents()
    return view


def test_crosshair_reads_each_run_at_the_cursor_and_the_legend_sits_outside(qtbot, store: Store) -> None:
    a, b = finished_run(store, "vit"), finished_run(store, "vit")
    store.add_metrics(a, [(s, s / 10, "train/loss", 10.0 - s, 0.0) for s in range(1, 6)])
    store.add_metrics(b, [(s, s / 10, "train/loss", 20.0 - s, 0.0) for s in range(1, 6)])
    view = _view(qtbot, store, {a: "vit", b: "vit"})
    plot = view.plots["train/loss"]
    assert plot.legend is None  # no legend inside a plot, over its lines
    assert view.legend.isVisible() and f"{a} · vit-run" in view.legend.text() and f"{b} · vit-run" in view.legend.text()
    scene_pos = plot.vb.sceneBoundingRect().center()
    x = plot.vb.mapSceneToView(scene_pos).x()
    view._hover(scene_pos)
    line, dots = view.crosshairs["train/loss"]
    assert line.isVisible() and abs(line.value() - x) < 1e-9
    step = int(np.clip(np.ceil(x), 1, 5))
    assert f"<b>{10 - step:.4g}</b> @ {step:g}" in view.readout.text()
    assert f"<b>{20 - step:.4g}</b> @ {step:g}" in view.readout.text()
    assert len(dots.data) == 2
    view.show_legend.setChecked(False)
    assert not view.legend.isVisible()


def test_one_point_is_a_marker_and_smoothing_keeps_the_raw_curve_faint_behind(qtbot, store: Store) -> None:
    run = finished_run(store, "vit")
    store.add_metrics(run, [(1, 0.1, "val/top1", 0.3, 0.0)])
    store.add_metrics(run, [(s, s / 10, "train/loss", float(s % 3), 0.0) for s in range(1, 50)])
    view = _view(qtbot, store, {run: "vit"})
    single, _ = view.curves[("val/top1", run)]
    assert single.opts["symbol"] == "o"  # a line of one point would be invisible
    loss, _ = view.curves[("train/loss", run)]
    assert loss.opts["symbol"] is None and ("train/loss", run) not in view.raw
    view.smooth.setValue(80)
    raw = view.raw[("train/loss", run)]
    assert raw.isVisible() and raw.opts["pen"].color().alpha() < 100
    assert list(raw.getOriginalDataset()[1]) == [float(s % 3) for s in range(1, 50)]
    assert np.ptp(loss.getOriginalDataset()[1][10:]) < np.ptp(raw.getOriginalDataset()[1][10:])
    view.smooth.setValue(0)
    assert not raw.isVisible()


def test_losses_of_different_methods_get_a_plot_each(qtbot, store: Store) -> None:
    mae, vit = finished_run(store, "mae"), finished_run(store, "vit")
    store.add_metrics(mae, [(1, 0.1, "train/loss", 0.05, 0.0), (2, 0.2, "train/loss", 0.04, 0.0)])
    store.add_metrics(vit, [(1, 0.1, "train/loss", 2.3, 0.0), (2, 0.2, "train/loss", 2.1, 0.0),
                            (2, 0.2, "val/top1", 0.3, 0.0)])
    view = _view(qtbot, store, {mae: "mae", vit: "vit"})
    assert {"train/loss · mae", "train/loss · vit", "val/top1"} <= set(view.plots)
    assert "train/loss" not in view.plots and view.note.isVisible() and "one plot per method" in view.note.text()
    assert ("train/loss · mae", vit) not in view.curves and ("train/loss · vit", vit) in view.curves
    assert ("val/top1", vit) in view.curves  # accuracies share one axis
