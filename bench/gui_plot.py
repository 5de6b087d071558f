"""GUI speed: time to a visible main window, and the redraw time of the curves view with
10 runs x 100k points, beside a bare pyqtgraph plot of the same data and size, with pyqtgraph's
defaults for peak downsampling and clipping (the reference).
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


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-bench-"))
    visible, visible_inside, loaded = time_to_window()
    ours, bare = redraw_times()
    print(json.dumps({"bench": "gui_plot", "window_visible_s": round(visible, 3),
                      "window_visible_in_python_s": round(visible_inside, 3), "window_loaded_s": round(loaded, 3),
                      "redraw_ms": round(ours, 1), "bare_pyqtgraph_ms": round(bare, 1),
                      "redraw_ratio": round(ours / bare, 3), "runs": RUNS, "points_per_run": POINTS,
                      "targets": {"window_visible_s": 1.5, "redraw_ms": 30}}))


if __name__ == "__main__":
    main()
