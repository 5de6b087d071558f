"""GUI speed: time to a visible main window, and the redraw time of the curves view with
10 runs x 100k points, beside a bare pyqtgraph plot of the same data and size, with pyqtgraph's
defaults for peak downsampling and clipping (the reference); and the time the curves view takes
to show another selection of runs, beside the same selection in a view just made.
Prints one JSON line (targets: window <= 1.5 s, redraw <= 30 ms).

    QT_QPA_PLATFORM=offscreen python bench/gui_plot.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

RUNS, POINTS, REPEATS = 10, 100_000, 5
WINDOW_CHILD = """
import time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
app = QApplication([])
from workbench.ui.main_window import MainWindow
window = MainWindow()  # as workbench.ui.main does: show, paint, then load
window.show()
app.processEvents()
print(time.perf_counter() - t0, flush=True)
window.load()
from workbench.ui import until_loaded
assert until_loaded(window)
print(time.perf_counter() - t0, flush=True)
window.close()
"""


def time_to_window() -> tuple[float, float, float]:
    """(seconds from process start to a visible window, inside Python alone, to a loaded one)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", WINDOW_CHILD], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    visible_inside = float(proc.stdout.readline())
    visible = time.perf_counter() - start
    loaded_inside = float(proc.stdout.readline())
    proc.wait()
    return visible, visible_inside, loaded_inside


def redraw_times() -> tuple[float, float]:
    """Median ms to redraw and repaint: the workbench's CurvesView, and a bare pyqtgraph plot."""
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from workbench.store import Store
    from workbench.ui.curves import CurvesView
    from workbench.ui.series import RunSeries

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    steps = np.arange(1, POINTS + 1, dtype=float)
    data = [np.exp(-steps / 30_000) + rng.normal(0, 0.05, POINTS) for _ in range(RUNS)]

    view = CurvesView(Store())
    view.resize(1200, 700)
    view.show()
    for rid, y in enumerate(data, start=1):
        series = RunSeries()
        series.extend(rid, {"train/loss": np.column_stack([steps, steps / 100, steps, y])})
        view.series[rid] = series
        view.names[rid] = f"run {rid}"
        view.methods[rid] = "vit"
    view._sync_keys()
    view.rebuild_plots()

    def timed(redraw) -> float:
        times = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            redraw()
            app.processEvents()
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    def ours() -> None:
        view.redraw(force=True)
        view.canvas.repaint()

    reference = pg.PlotWidget()  # pyqtgraph's defaults, its plot as wide as ours
    reference.resize(view.canvas.size())
    reference.show()
    reference.setDownsampling(auto=True, mode="peak")
    reference.setClipToView(True)
    curves = [reference.plot(steps, y) for y in data]

    def bare() -> None:
        for curve, y in zip(curves, data):
            curve.setData(steps, y)
        reference.repaint()

    return timed(ours), timed(bare)


SELECTION_KEYS = ("train/loss", "train/lr", "train/top1", "train/data_wait", "train/grad_norm", "val/top1",
                  "val/top5", "val/loss", "val_ema/top1", "sys/cpu", "sys/ram", "sys/img_s")


def selection_times() -> tuple[float, float]:
    """Median ms for the curves view to show another selection of runs with the same 12 metrics
    (2,000 points each, every metric ticked), and the same selection in a view just made (its
    plots made too: the reference)."""
    from PySide6.QtWidgets import QApplication

    from workbench.store import Store
    from workbench.ui.curves import CurvesView

    app = QApplication.instance() or QApplication([])
    store = Store()
    runs = []
    for n in range(4):
        run = store.create_run("vit", {}, name=f"selection-{n}")
        store.add_metrics(run.id, [(s, s / 10, k, 1.0 / s, 1e9 + s) for s in range(1, 2001) for k in SELECTION_KEYS])
        runs.append(store.get_run(run.id))
    choices = [runs[:1], runs[1:2], runs[:2], runs[2:3], runs[2:], runs[3:]]

    def show(view: CurvesView, chosen: list) -> float:
        t = time.perf_counter()
        view.set_runs({r.id: (r.name, r.method) for r in chosen}, chosen)
        app.processEvents()
        return (time.perf_counter() - t) * 1000

    def new_view() -> CurvesView:
        view = CurvesView(store)  # fetches inline: the time includes the read
        view.resize(1200, 900)
        view.show()
        view.keys.chosen = dict.fromkeys(SELECTION_KEYS, True)
        return view

    view, warm, cold = new_view(), [], []
    for chosen in choices * 2:
        warm.append(show(view, chosen))
        fresh = new_view()
        cold.append(show(fresh, chosen))
        fresh.close()
    return statistics.median(warm[len(choices):]), statistics.median(cold)


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-bench-"))
    visible, visible_inside, loaded = time_to_window()
    ours, bare = redraw_times()
    selection, first_selection = selection_times()
    print(json.dumps({"bench": "gui_plot", "window_visible_s": round(visible, 3),
                      "window_visible_in_python_s": round(visible_inside, 3), "window_loaded_s": round(loaded, 3),
                      "redraw_ms": round(ours, 1), "bare_pyqtgraph_ms": round(bare, 1),
                      "redraw_ratio": round(ours / bare, 3), "runs": RUNS, "points_per_run": POINTS,
                      "selection_ms": round(selection, 1), "selection_in_a_new_view_ms": round(first_selection, 1),
                      "selection_ratio": round(selection / first_selection, 3),
                      "targets": {"window_visible_s": 1.5, "redraw_ms": 30}}))


if __name__ == "__main__":
    main()
