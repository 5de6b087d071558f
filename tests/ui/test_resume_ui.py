"""Resuming from the window (issue #18): a run with no checkpoint left restarts from step 0 only
after the user says yes; a resumed run's details show each of its segments."""

import time

from tests.conftest import finished_run
from tests.ui.conftest import answer_next_box, poll, settle
from workbench.store import RunStatus, Store
from workbench.ui.main_window import MainWindow


def test_resume_without_a_checkpoint_asks_before_starting_from_step_0(window: MainWindow, store: Store) -> None:
    run = finished_run(store, "vit")
    store.abspath(store.latest_artifact(run, "checkpoint")).unlink()
    store.update_run(run, status=RunStatus.FAILED, step=10, error="boom")
    window.schedule = lambda: []  # queued is what is checked here; no worker starts
    poll(window)
    window.select_run(run)

    asked = answer_next_box("Cancel")
    window.actions.resume.trigger()
    settle(window)  # resumed on a worker thread, which finds no checkpoint; then the question
    assert f"Run {run} has no checkpoint left" in asked[0] and "replaces its metrics" in asked[0]
    assert store.get_run(run).status == RunStatus.FAILED and store.get_run(run).step == 10  # nothing changed

    asked = answer_next_box("Start again from step 0")
    window.actions.resume.trigger()
    settle(window)
    assert asked and store.get_run(run).status == RunStatus.QUEUED and store.get_run(run).step == 0
    assert store.artifacts(run, "checkpoint") == []
    assert f"Run {run} queued to start again from step 0" in window.statusBar().currentMessage()


def test_details_show_the_first_start_each_segment_and_the_warnings(window: MainWindow, store: Store) -> None:
    run = finished_run(store, "vit")
    t0 = time.mktime((2026, 11, 30, 12, 1, 0, 0, 0, -1))
    segments = [[t0, t0 + 120], [t0 + 540, None]]  # 12:01-12:03, then resumed 12:10-12:12
    store.update_run(run, started_at=t0, finished_at=t0 + 660, summary={
        "val/top1": 0.5, "segments": segments, "warnings": ["resumed at step 2 on changed images"]})
    window.show()
    poll(window)
    window.select_run(run)
    window.tabs.setCurrentWidget(window.details)
    text = window.details.timing.text()
    assert "started 2026-11-30 12:01" in text and "trained 0:04:00" in text
    assert "2 segments: 12:01–12:03, 12:10–12:12" in text
    assert "resumed at step 2 on changed images" in window.details.warnings.text()
    assert window.details.warnings.isVisible()
    duration = window.model.columns.index("Duration")
    assert window.proxy.index(0, duration).data() == "0:04:00"  # training time, not 11 minutes of wall time
