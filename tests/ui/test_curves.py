"""The curves view: a crosshair with every run's value at the cursor, a legend that never
covers a line, one-point series as markers, the raw curve faint behind a smoothed one, and
losses of different methods never forced onto one axis."""

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.conftest import finished_run
from workbench.store import Store
from workbench.ui.curves import CurvesView
from workbench.ui.theme import UNLISTED


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
    line, dots = view.crosshairs["train/loss"]
    for _ in range(20):  # a mouse moving: the read-outs are rate-limited to 30 a second, the last one shown
        view.canvas.scene().sigMouseMoved.emit(scene_pos)
    qtbot.waitUntil(line.isVisible, timeout=2000)
    qtbot.wait(100)  # the read-out's text laid out (the plot may have moved under the cursor)
    view.canvas.scene().sigMouseMoved.emit(scene_pos)
    qtbot.wait(100)
    x = plot.vb.mapSceneToView(scene_pos).x()
    assert abs(line.value() - x) < 1e-9
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


def test_losses_of_different_kinds_get_a_plot_each_and_alike_ones_share_one(qtbot, store: Store) -> None:
    mae, vit, swin = finished_run(store, "mae"), finished_run(store, "vit"), finished_run(store, "swin")
    store.add_metrics(mae, [(1, 0.1, "train/loss", 0.05, 0.0), (2, 0.2, "train/loss", 0.04, 0.0)])
    for run in (vit, swin):  # both cross-entropy over the classes
        store.add_metrics(run, [(1, 0.1, "train/loss", 2.3, 0.0), (2, 0.2, "train/loss", 2.1, 0.0),
                                (2, 0.2, "val/top1", 0.3, 0.0)])
    view = _view(qtbot, store, {mae: "mae", vit: "vit", swin: "swin"})
    assert {"train/loss · mae", "train/loss · swin, vit", "val/top1"} <= set(view.plots)
    assert "train/loss" not in view.plots and view.note.isVisible() and "one plot per kind of loss" in view.note.text()
    assert ("train/loss · mae", vit) not in view.curves and ("train/loss · swin, vit", vit) in view.curves
    assert ("train/loss · swin, vit", swin) in view.curves
    assert ("val/top1", vit) in view.curves  # accuracies share one axis


def test_grouped_runs_show_each_groups_mean_and_band_as_numpy_computes_them(qtbot, store: Store) -> None:
    from workbench.ui import groups
    from workbench.ui.compare import CompareView

    rng = np.random.default_rng(0)
    runs, values = [], {}
    for lr in (0.001, 0.002):
        for seed in (0, 1, 2):
            rid = finished_run(store, "vit", lr=lr, seed=seed)
            values[rid] = rng.normal(1.0 / lr / 1000, 0.1, size=20)
            store.add_metrics(rid, [(s + 1, s / 10, "train/loss", float(values[rid][s]), 100.0 + s) for s in range(20)])
            store.update_run(rid, summary={"val/top1": float(values[rid][-1])})
            runs.append(store.get_run(rid))
    view = CurvesView(store)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    view.set_runs({r.id: (f"{r.id} · {r.name}", r.method) for r in runs}, runs)
    assert [view.group_by.itemText(i) for i in range(view.group_by.count())] == \
        [groups.NONE, groups.BUT_SEED, groups.TAGS, "lr"]  # the seed never sets runs apart
    view.group_by.setCurrentText(groups.BUT_SEED)
    assert list(view.groups) == ["lr=0.001", "lr=0.002"] and all(len(ids) == 3 for ids in view.groups.values())
    for label, ids in view.groups.items():
        mean_item, low_item, high_item, _ = view.bands[("train/loss", label)]
        stacked = np.stack([values[r] for r in ids])
        x, mean = mean_item.getOriginalDataset()
        assert list(x) == list(range(1, 21))
        np.testing.assert_allclose(mean, stacked.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(high_item.getOriginalDataset()[1] - mean, stacked.std(axis=0, ddof=1), rtol=1e-9)
        np.testing.assert_allclose(mean - low_item.getOriginalDataset()[1], stacked.std(axis=0, ddof=1), rtol=1e-9)
    assert "lr=0.001 (3 runs)" in view.legend.text()
    assert not any(item.isVisible() for item, _ in view.curves.values())  # members hidden until asked for
    view.show_members.setChecked(True)
    assert all(item.isVisible() for item, _ in view.curves.values()) and len(view.curves) == 6
    view.band_kind.setCurrentText("min–max band")
    label, ids = next(iter(view.groups.items()))
    _, low_item, high_item, _ = view.bands[("train/loss", label)]
    stacked = np.stack([values[r] for r in ids])
    np.testing.assert_allclose(low_item.getOriginalDataset()[1], stacked.min(axis=0))
    np.testing.assert_allclose(high_item.getOriginalDataset()[1], stacked.max(axis=0))

    compare = CompareView(store)
    qtbot.addWidget(compare)
    compare.show_runs(runs, view.groups)
    assert compare.table.rowCount() == 2
    headers = [compare.table.horizontalHeaderItem(c).text() for c in range(compare.table.columnCount())]
    row = [compare.table.item(0, c).text() for c in range(compare.table.columnCount())]
    finals = [values[r][-1] for r in view.groups[row[0]]]
    assert row[1] == "3" and row[headers.index("val/top1 (final)")] == \
        f"{np.mean(finals):.4f} ± {np.std(finals, ddof=1):.4f}"
    view.group_by.setCurrentText(groups.NONE)
    assert view.groups == {} and view.bands == {} and all(item.isVisible() for item, _ in view.curves.values())


def test_curves_grow_poll_by_poll_and_a_stale_read_is_not_added_twice(qtbot, store: Store) -> None:
    run = finished_run(store, "vit")
    values = []

    def log(steps: range) -> None:
        rows = [(s, s / 10, "train/loss", 1.0 / s, float(s)) for s in steps]
        values.extend(r[3] for r in rows)
        store.add_metrics(run, rows)

    log(range(1, 51))
    view = _view(qtbot, store, {run: "vit"})
    held = [view.series[run].table("train/loss")]
    for first in range(51, 251, 40):  # past the buffers' first capacity: they grow, earlier views stay right
        log(range(first, first + 40))
        view.refresh()
        held.append(view.series[run].table("train/loss"))
    curve, _ = view.curves[("train/loss", run)]
    assert view.point_count(run, "train/loss") == 250 and list(curve.getOriginalDataset()[1]) == values
    assert all(list(table[:, 3]) == values[:len(table)] for table in held)
    stale = (0, *store.metric_columns(run))  # a read begun before the last poll's rows arrived
    view._received({run: stale})
    assert view.point_count(run, "train/loss") == 250


def test_the_same_runs_again_keep_their_plots_and_follow_sets_auto_range(qtbot, store: Store) -> None:
    """A tab switch hands the view the selection it has (it rebuilt every plot, ~70 ms a switch);
    new points still come, and unticking follow stops the axes following them."""
    run = finished_run(store, "vit")
    store.add_metrics(run, [(s, s / 10, "train/loss", 1.0 / s, 0.0) for s in range(1, 6)])
    view = _view(qtbot, store, {run: "vit"})
    plot = view.plots["train/loss"]
    store.add_metrics(run, [(6, 0.6, "train/loss", 0.1, 0.0)])
    view.set_runs({run: (f"{run} · vit-run", "vit")})
    assert view.plots["train/loss"] is plot and view.point_count(run, "train/loss") == 6
    assert plot.vb.state["autoRange"] == [True, True]
    view.follow.setChecked(False)
    assert plot.vb.state["autoRange"] == [False, False]
    view.set_runs({})  # another selection: the plots go
    assert "train/loss" not in view.plots


def test_another_selection_keeps_each_metrics_plot_with_only_its_runs_curves(qtbot, store: Store) -> None:
    """A selection of other runs with the same metrics reuses the plots it had (a selection made
    a dozen plots twice, ~200 ms); a reused plot shows only the new runs' curves, and its crosshair
    reads them."""
    a, b = finished_run(store, "vit"), finished_run(store, "vit")
    store.add_metrics(a, [(s, s / 10, "train/loss", 10.0 - s, 0.0) for s in range(1, 6)])
    store.add_metrics(b, [(s, s / 10, "train/loss", 20.0 - s, 0.0) for s in range(1, 6)])
    view = _view(qtbot, store, {a: "vit"})
    plot = view.plots["train/loss"]
    line, dots = view.crosshairs["train/loss"]
    for runs in ({}, {b: "vit"}):  # none selected (no plot shown), then another run
        view.set_runs({rid: (f"{rid} · {m}-run", m) for rid, m in runs.items()})
    QApplication.processEvents()
    assert view.plots["train/loss"] is plot and view.crosshairs["train/loss"] == (line, dots)
    curves = [item for item in plot.listDataItems() if item not in (line, dots)]
    assert len(curves) == 1 and list(curves[0].getOriginalDataset()[1]) == [19.0, 18.0, 17.0, 16.0, 15.0]
    scene_pos = plot.vb.sceneBoundingRect().center()
    view.canvas.scene().sigMouseMoved.emit(scene_pos)
    qtbot.waitUntil(line.isVisible, timeout=2000)
    qtbot.waitUntil(lambda: "@" in view.readout.text(), timeout=2000)
    assert f"{b} · vit-run" in view.readout.text() and f"{a} · vit-run" not in view.readout.text()
    assert len(dots.data) == 1


def test_the_users_ticks_outlive_a_selection_of_other_runs(qtbot, store: Store) -> None:
    """A run selected before its rows arrive empties the metric list for a moment: the metrics
    the user ticked (and unticked) come back as they were, not reset to the defaults."""
    a, b = finished_run(store, "vit"), finished_run(store, "vit")
    for run in (a, b):
        store.add_metrics(run, [(s, s / 10, key, 1.0 / s, 0.0) for s in range(1, 4)
                                for key in ("train/loss", "train/lr", "val/top1")])
    view = _view(qtbot, store, {a: "vit"})
    assert view.keys.ticked() == ["train/loss", "val/top1"]  # the defaults
    items = {view.keys.item(i).text(): view.keys.item(i) for i in range(view.keys.count())}
    view.keys.show_keys([*items, "train/images_per_s_of_a_long_name"], set())  # as wide as the longest, at most
    assert view.keys.minimumWidth() > 150 and view.keys.item(3).toolTip() == "train/images_per_s_of_a_long_name"
    view.keys.show_keys(list(items), {"train/loss", "val/top1"})
    items = {view.keys.item(i).text(): view.keys.item(i) for i in range(view.keys.count())}
    items["train/lr"].setCheckState(Qt.CheckState.Checked)  # as a click does
    items["val/top1"].setCheckState(Qt.CheckState.Unchecked)
    assert set(view.plots) == {"train/loss", "train/lr"}
    view.set_runs({})  # nothing selected: an empty list
    builds = []
    real_rebuild = view.rebuild_plots
    view.rebuild_plots = lambda: (builds.append(True), real_rebuild())
    view.set_runs({b: (f"{b} · vit-run", "vit")})
    assert view.keys.ticked() == ["train/loss", "train/lr"] and set(view.plots) == {"train/loss", "train/lr"}
    assert len(builds) == 2  # for the runs, then for their metrics as they arrive (three times before)


def test_the_users_ticks_come_back_with_the_window(qtbot, store: Store, tmp_path) -> None:
    """The view's state, as the window saves it (an INI file through QSettings), keeps the ticks."""
    from PySide6.QtCore import QSettings

    run = finished_run(store, "vit")
    store.add_metrics(run, [(s, s / 10, key, 1.0 / s, 0.0) for s in range(1, 4) for key in ("train/loss", "train/lr")])
    view = _view(qtbot, store, {run: "vit"})
    items = {view.keys.item(i).text(): view.keys.item(i) for i in range(view.keys.count())}
    items["train/lr"].setCheckState(Qt.CheckState.Checked)
    items["train/loss"].setCheckState(Qt.CheckState.Unchecked)
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    settings.setValue("curves/state", view.state())
    settings.sync()
    again = CurvesView(store)
    qtbot.addWidget(again)
    again.restore(dict(QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat).value("curves/state")))
    again.set_runs({run: (f"{run} · vit-run", "vit")})
    assert again.keys.ticked() == ["train/lr"]


def test_smoothing_a_growing_series_smooths_only_its_new_rows_alike() -> None:
    """A poll's new rows are smoothed from where the last smoothing ended: the same curve as
    smoothing the whole history again (which took 6.5 ms a 100k-point curve at every poll)."""
    from workbench.ui.series import RunSeries, ema

    rng = np.random.default_rng(0)
    values = rng.normal(size=3000)
    rows = np.column_stack([np.arange(3000.0), np.zeros(3000), np.zeros(3000), values])
    series = RunSeries()
    for start in range(0, 3000, 700):  # polls bringing 700 rows each
        series.extend(start + 700, {"train/loss": rows[start:start + 700]})
        assert np.allclose(series.smoothed("train/loss", 0.9), ema(values[:start + 700], 0.9))
    assert np.allclose(series.smoothed("train/loss", 0.5), ema(values, 0.5))  # another smoothing: all again
    assert np.array_equal(series.smoothed("train/loss", 0.0), values)  # no smoothing: the values as they are


def test_twenty_runs_get_twenty_colours(qtbot, store: Store) -> None:
    runs = {finished_run(store, "vit"): "vit" for _ in range(20)}
    for rid in runs:
        store.add_metrics(rid, [(1, 0.1, "train/loss", 1.0, 0.0), (2, 0.2, "train/loss", 0.5, 0.0)])
    view = _view(qtbot, store, runs)
    colours = {view.colour(rid) for rid in runs}
    assert len(colours) == 20 and UNLISTED not in colours  # the eleventh run was the first's blue; none is the
    # grey of a run whose series is not loaded
