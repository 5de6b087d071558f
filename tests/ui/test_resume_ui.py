"""Resuming from the window (issue #18): a run with no checkpoint left restarts from step 0 only
after the user says yes; a resumed run's details show each of its segments."""

from tests.conftest import finished_run
from tests.ui.conftest import answer_next_box
from workbench.store import RunStatus, Store
from workbench.ui.main_window import MainWindow


def test_resume_without_a_checkpoint_asks_before_starting_from_step_0(window: MainWindow, store: Store) -> None:
    run = finished_run(store, "vit")
    store.abspath(store.latest_artifact(run, "checkpoint")).unlink()
    store.update_run(run, status=RunStatus.FAILED, step=10, error="boom")
    window.schedule = lambda: []  # queued is what is checked here; no worker starts
    window.poll()
    window.select_run(run)

    asked = answer_next_box("Cancel")
    window.actions.resume.trigger()
    assert f"Run {run} has no checkpoint left" in asked[0] and "replaces its metrics" in asked[0]
    assert store.get_run(run).status == RunStatus.FAILED and store.get_run(run).step == 10  # nothing changed

    asked = answer_next_box("Start again from step 0")
    window.actions.resume.trigger()
    assert asked and store.get_run(run).status == RunStatus.QUEUED and store.get_run(run).step == 0
    assert store.artifacts(run, "checkpoint") == []
    assert f"Run {run} queued to start again from step 0" in window.statusBar().currentMessage()
