"""GUI soak: the real app in a real X window (Xvfb) for N minutes, polling at its own 500 ms with
live runs training, every tab and several selections shown in turn. Reports whether it crashed,
its memory over time, the poll's latency beside the poll interval (the reference: a poll
that takes a large share of its interval makes the window sluggish), and how late a 50 ms timer
fires (everything the GUI thread does: showing what the poll read, redrawing curves). Prints one
JSON line.

    python bench/gui_soak.py --minutes 15          # needs Debian's xvfb (xvfb-run) or a DISPLAY
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

CHILD = r"""
import json, sys, time
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from workbench.ui.main_window import MainWindow

minutes, out = float(sys.argv[1]), open(sys.argv[2], "w", buffering=1)
app = QApplication([])
window = MainWindow()
window.show()
app.processEvents()
window.load()
from workbench.ui import until_loaded
assert until_loaded(window)
times, started = [], time.monotonic()
real_poll = window.poll

def timed_poll():
    t = time.perf_counter()
    real_poll()
    times.append(time.perf_counter() - t)

window.timer.timeout.disconnect()
window.timer.timeout.connect(timed_poll)
lags, last_beat = [], [time.perf_counter()]
import gc
full_collections, collecting = [], [0.0]

def timed_gc(phase, info):  # the oldest generation's collections: the longest pauses of the GUI thread
    if phase == "start":
        collecting[0] = time.perf_counter()
    elif info["generation"] == 2:
        full_collections.append(time.perf_counter() - collecting[0])

gc.callbacks.append(timed_gc)

def beat():  # how late a 50 ms timer fires: all the GUI thread did meanwhile (showing reads, redraws)
    now = time.perf_counter()
    lags.append(max(0.0, now - last_beat[0] - 0.05))
    last_beat[0] = now

probe = QTimer()
probe.setTimerType(Qt.TimerType.PreciseTimer)
probe.timeout.connect(beat)
probe.start(50)
import threading, traceback
stalls, gui_thread = [], threading.main_thread().ident

def watch():  # where the GUI thread is when its timer is over 150 ms late: the Python lines of a long pause
    seen = None
    while True:
        time.sleep(0.02)
        late = time.perf_counter() - last_beat[0] - 0.05
        frame = sys._current_frames().get(gui_thread)
        if late > 0.15 and frame is not None:
            where = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_stack(frame)[-6:]]
            if where != seen:
                stalls.append({"late_ms": round(late * 1000), "stack": where})
            seen = where
        else:
            seen = None

from pathlib import Path
threading.Thread(target=watch, daemon=True).start()
tick = [0]

def every_10_s():  # what a user does: another tab, another selection, the Studies window now and then
    tick[0] += 1
    window.tabs.setCurrentIndex(tick[0] % window.tabs.count())
    window.table.clearSelection()
    if tick[0] % 4 == 1:
        window.table.selectAll()
    elif tick[0] % 4 in (2, 3):
        window.table.selectRow(tick[0] % 4 - 2)
    if tick[0] % 9 == 0:
        window.open_studies()
    elif tick[0] % 9 == 3 and window.studies is not None:
        window.studies.close()
    import psutil
    out.write(json.dumps({"t": round(time.monotonic() - started, 1), "rss_mb": psutil.Process().memory_info().rss / 2**20,
                          "polls": len(times), "poll_ms": [round(x * 1000, 2) for x in times],
                          "lag_ms": [round(x * 1000, 2) for x in lags],
                          "gc2_ms": [round(x * 1000, 2) for x in full_collections],
                          "stalls": stalls[:], "action": tick[0],
                          "none_refs": sys.getrefcount(None),
                          "steps": {r.id: r.step for r in window.store.list_runs()}}) + "\n")
    times.clear()
    lags.clear()
    full_collections.clear()
    stalls.clear()

ticker = QTimer()
ticker.timeout.connect(every_10_s)
ticker.start(10_000)
forced = []

def finish():
    ticker.stop()
    window.close()  # the app quits once its last window has closed; if another stays open, say so
    QTimer.singleShot(30_000, lambda: (forced.append(True), app.quit()))

QTimer.singleShot(int(minutes * 60_000), finish)
app.exec()
out.write(json.dumps({"closed": True, "quit_forced": bool(forced)}) + "\n")
"""


def spread(values: list[float]) -> dict[str, float]:
    """Median, 95th percentile and maximum (none for fewer than 20 values)."""
    if len(values) <= 20:
        return {}
    return {"p50": round(statistics.median(values), 1), "p95": round(statistics.quantiles(values, n=20)[-1], 1),
            "max": round(max(values), 1)}


def start_runs(home: Path, count: int) -> list[int]:
    """Queue `count` tiny runs long enough to train for the whole soak (the window starts them)."""
    from workbench.jobs import create_run
    from workbench.store import Store

    store = Store()
    methods = ["vit", "mae"]
    ids = [create_run(store, methods[i % 2], preset="tiny", overrides=["epochs=2000", "eval_every=200"],
                      name=f"soak-{methods[i % 2]}").id for i in range(count)]
    store.close()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--runs", type=int, default=2, help="live runs training meanwhile")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wb-soak-"))
    env = dict(os.environ, WORKBENCH_HOME=str(home))
    env.pop("QT_QPA_PLATFORM", None)  # a real X window, not offscreen
    os.environ.update(WORKBENCH_HOME=str(home))
    runs = start_runs(home, args.runs)
    stats = home / "soak.jsonl"
    command = [sys.executable, "-c", CHILD, str(args.minutes), str(stats)]
    if not env.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            sys.exit("no DISPLAY and no xvfb-run: apt-get install xvfb (or run under a desktop)")
        command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *command]
    errors = open(home / "stderr.txt", "w+")  # a file: a full pipe would stall the app
    child = subprocess.Popen(command, env=env, stderr=errors, stdout=subprocess.DEVNULL)
    app = None
    rss_outside: list[float] = []
    while child.poll() is None:  # the app's memory as the system sees it, including Qt's own
        time.sleep(5)
        if app is None:
            app = next((p for p in psutil.Process(child.pid).children(recursive=True) + [psutil.Process(child.pid)]
                        if "python" in p.name() and "-c" in p.cmdline()), None)
        try:
            rss_outside.append(app.memory_info().rss / 2**20 if app else 0.0)
        except psutil.NoSuchProcess:
            break
    child.wait()
    errors.seek(0)
    stderr = errors.read()
    for run_id in runs:
        subprocess.run([sys.executable, "-m", "workbench.cli", "cancel", str(run_id)], env=env, capture_output=True)
    rows = [json.loads(line) for line in stats.read_text().splitlines()] if stats.exists() else []
    samples = [r for r in rows if "rss_mb" in r]
    polls = [ms for r in samples for ms in r["poll_ms"]]
    lags = [ms for r in samples for ms in r.get("lag_ms", [])]
    full = [ms for r in samples for ms in r.get("gc2_ms", [])]
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    interval_ms = 500
    result = {
        "bench": "gui_soak", "minutes": args.minutes, "live_runs": args.runs,
        "crashed": child.returncode != 0 or not any(r.get("closed") for r in rows),
        "quit_forced": any(r.get("quit_forced") for r in rows),
        "exit_code": child.returncode, "fatal": [line for line in stderr.splitlines() if "Fatal" in line][:3],
        "qt_warnings": len([line for line in stderr.splitlines() if line.strip()]),
        "polls": len(polls),
        "poll_ms": spread(polls),  # window.poll itself: it hands the store's reads to worker threads
        "gui_lag_ms": spread(lags),  # the GUI thread's whole load: a 50 ms timer's lateness
        "full_gc": {"count": len(full), "max_ms": round(max(full), 1) if full else None},  # generation 2
        # where the GUI thread was in its longest pauses (over 150 ms), the longest first
        "stalls": sorted((st for r in samples for st in r.get("stalls", [])), key=lambda st: -st["late_ms"])[:5],
        "poll_share_of_interval": round(statistics.mean(polls) / interval_ms, 3) if polls else None,
        "rss_mb": {"after_1_min": round(next((r["rss_mb"] for r in samples if r["t"] >= 60), 0), 1),
                   "end": round(last.get("rss_mb", 0), 1), "max": round(max(r["rss_mb"] for r in samples), 1)}
        if samples else {},
        "rss_over_time_mb": [round(r["rss_mb"], 1) for r in samples[5::6]],  # one a minute
        "rss_growth_after_1_min_mb": round(last["rss_mb"] - next(r["rss_mb"] for r in samples if r["t"] >= 60), 1)
        if samples and samples[-1]["t"] >= 60 else None,
        "none_refcount_change": last.get("none_refs", 0) - first.get("none_refs", 0) if samples else None,
        "live_run_steps": last.get("steps", {}),
        "rss_outside_max_mb": round(max(rss_outside), 1) if rss_outside else None,
    }
    print(json.dumps(result))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
