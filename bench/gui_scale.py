"""The window with many runs: a store of `--runs` runs (5,000) and `--rows` metric rows (10 M) in
all, one of them a 100k-point run; then the main window's poll (its read, off the GUI thread,
and its showing, on it), again with the table sorted by a best-value column while a run trains,
and so with the Parallel tab shown, and the time the curves take to show the 100k-point run, the median of a few. Prints one JSON line beside the goals (poll <= 50 ms, curves <= 200 ms); the
reference in the same run is the same poll on a store of 50 runs.

    QT_QPA_PLATFORM=offscreen python bench/gui_scale.py [--runs 5000] [--rows 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

KEYS = ("train/loss", "train/lr", "train/top1", "val/top1", "val/loss")


def build(home: Path, runs: int, rows: int, big: int) -> int:
    """A store at `home` with `runs` finished runs and about `rows` metric rows, one run holding
    `big` train/loss points; its id. Rows go in through sqlite3 in big transactions (the store's
    own insert is measured elsewhere: bench/ingest.py)."""
    os.environ["WORKBENCH_HOME"] = str(home)
    from workbench.methods import make_config
    from workbench.store import Store

    store = Store()
    config = make_config("vit", "tiny").to_dict()
    ids = []
    for i in range(runs):
        run = store.create_run("vit", {**config, "lr": 10 ** (-4 + 2 * (i % 7) / 6), "seed": i % 3},
                               name=f"scale-{i}")
        ids.append(run.id)
    store.close()
    per_run = max(0, (rows - big) // max(1, runs - 1))
    with sqlite3.connect(home / "workbench.sqlite") as db:
        db.execute("PRAGMA synchronous=OFF")
        for run_id in ids:
            n = big if run_id == ids[0] else per_run
            steps = range(1, n // len(KEYS) + 2) if run_id != ids[0] else range(1, n + 1)
            keys = ("train/loss",) if run_id == ids[0] else KEYS
            db.executemany("INSERT INTO metrics (run_id, step, epoch, key, value, wall_time) VALUES (?,?,?,?,?,?)",
                           ((run_id, s, s / 100, k, 1.0 / s, 1e9 + s) for s in steps for k in keys))
            summary = json.dumps({"val/top1": 0.1 + (run_id % 50) / 100, "val/loss": 2.0})
            db.execute("UPDATE runs SET status='finished', step=?, total_steps=?, summary=?, started_at=?, "
                       "finished_at=? WHERE id=?", (len(steps), len(steps), summary, 1e9, 1e9 + 60, run_id))
    return ids[0]


def measure(home: Path, big: int, repeats: int) -> dict[str, float]:
    """Median ms of the window's poll (read; show) and of showing the big run's curves."""
    os.environ["WORKBENCH_HOME"] = str(home)
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from workbench.ui import driven_window
    from workbench.ui.curves import CurvesView

    window = driven_window()
    while window.polling:
        window.tasks.wait(120_000)
        app.processEvents()

    def polls(moving: int | None = None) -> tuple[list[float], list[float]]:
        """Seconds of each poll's read and show; `moving`: a run that trains a step before each."""
        reads, shows = [], []
        for i in range(repeats):
            if moving is not None:
                window.store.update_run(moving, step=i + 1)
            read = window._prepare_poll()
            t0 = time.perf_counter()
            result = read()
            t1 = time.perf_counter()
            window._show(result)
            app.processEvents()
            t2 = time.perf_counter()
            reads.append(t1 - t0)
            shows.append(t2 - t1)
        return reads, shows

    reads, shows = polls()
    window.runs.add_column("best:train/loss")  # a best-value column, the table sorted by it, one run training
    window.table.sortByColumn(window.model.columns.index("best:train/loss"), Qt.SortOrder.DescendingOrder)
    polls()  # the first reads every run's best value
    best_reads, best_shows = polls(moving=big)
    window.tabs.setCurrentWidget(window.coords)  # the Parallel tab draws the table's runs, in its order
    _, parallel_shows = polls(moving=big)
    curves = []
    for _ in range(repeats):
        view = CurvesView(window.store)  # fetches inline: the time includes the read
        view.resize(1000, 700)
        view.show()
        t0 = time.perf_counter()
        view.set_runs({big: ("big", "vit")})
        app.processEvents()
        curves.append(time.perf_counter() - t0)
        assert view.point_count(big, "train/loss") > 0
        view.close()
    window.close()
    ms = lambda xs: round(1000 * statistics.median(xs), 1)  # noqa: E731
    return {"poll_read_ms": ms(reads), "poll_show_ms": ms(shows), "poll_ms": ms([a + b for a, b in zip(reads, shows)]),
            "curves_ms": ms(curves), "sorted_by_best_poll_read_ms": ms(best_reads),
            "sorted_by_best_poll_show_ms": ms(best_shows), "parallel_tab_poll_show_ms": ms(parallel_shows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--big", type=int, default=100_000, help="points of the one long run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("HOME", "BIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), int(args.child[1]), args.repeats)), flush=True)
        os._exit(0)  # the figures are out; Qt's teardown of a window that polled has nothing to add
    import subprocess
    import sys

    out = {"bench": "gui_scale", "runs": args.runs, "rows": args.rows, "big_run_points": args.big}
    for label, runs, rows in (("reference", 50, 50 * 200), ("scale", args.runs, args.rows)):
        home = Path(tempfile.mkdtemp(prefix=f"wb-scale-{label}-"))
        t0 = time.perf_counter()
        big = build(home, runs, rows, args.big)
        built = time.perf_counter() - t0
        child = subprocess.run([sys.executable, __file__, "--child", str(home), str(big), "--repeats",
                                str(args.repeats)], capture_output=True, text=True, check=True,
                               env={**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")})
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        out |= {f"{label}_{k}": v for k, v in figures.items()}
        if label == "scale":
            out["build_s"] = round(built, 1)
            out["db_mb"] = round((home / "workbench.sqlite").stat().st_size / 2**20)
    out |= {"goal_poll_ms": 50, "goal_curves_ms": 200,
            "poll_ratio_to_reference": round(out["scale_poll_ms"] / max(out["reference_poll_ms"], 1e-3), 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
