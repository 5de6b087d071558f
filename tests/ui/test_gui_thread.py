"""No query on the GUI thread. The window polls twice a second all day; its views, forms and
actions read and write the store on worker threads, so a slow database server (PostgreSQL across
a network) never freezes it. Every query's thread is recorded while the window is driven."""

import contextlib
import subprocess
import sys
import threading
from typing import Iterator

from PySide6.QtGui import QImage
from sqlalchemy import event

from tests.conftest import finished_run
from tests.ui.conftest import in_dialog, poll, select_method, settle, shown
from workbench import paths
from workbench.methods import make_config
from workbench.store import RunStatus, Store
from workbench.ui.main_window import MainWindow
from workbench.ui.new_run_dialog import NewRunDialog
from workbench.ui.new_study_dialog import NewStudyDialog


@contextlib.contextmanager
def recorded(store: Store) -> Iterator[list[bool]]:
    """Whether each query the store runs meanwhile ran on the GUI thread (the main one)."""
    on_gui: list[bool] = []

    def seen(*_: object) -> None:
        on_gui.append(threading.current_thread() is threading.main_thread())

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        yield on_gui
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)


def test_the_views_and_actions_read_and_write_off_the_gui_thread(window: MainWindow, store: Store) -> None:
    """Details, Compare, Images, Inspect, Diagnostics and Distillation read the store on a worker
    thread (Details and Images did at every poll, Inspect too), as do Export's weight choices, the
    Datasets dialog and the parallel-runs box; Archive writes on one."""
    parent = finished_run(store, "mae")
    child = store.create_run("finetune", {}, parents={"encoder": parent}).id
    picture = paths.run_dir(parent) / "images" / "reconstructions-00000100.png"
    picture.parent.mkdir(parents=True, exist_ok=True)
    QImage(8, 8, QImage.Format.Format_RGB32).save(str(picture))
    store.add_artifact(parent, "image", picture, step=100, name="reconstructions")
    window.tabs.setCurrentWidget(window.details)
    poll(window)
    with recorded(store) as on_gui:
        window.select_run(child)
        assert window.details.lineage.text() == "Lineage — …"  # until its reading on a worker thread is shown
        shown(window)
        assert f"encoder: <a href='run:{parent}'>{parent} · " in window.details.lineage.text()
        window.select_run(parent)
        poll(window)
        shown(window)
        assert f"encoder of <a href='run:{child}'>{child} · " in window.details.lineage.text()
        assert [row[0] for row in window.details.artifact_rows] == ["checkpoint", "image"]
        window.tabs.setCurrentWidget(window.log)  # Details hidden: its links are not read at each poll
        links = []
        count = lambda *args: links.append(args[2]) if "FROM artifacts" in args[2] else None  # noqa: E731
        event.listen(store.engine, "before_cursor_execute", count)
        for _ in range(3):
            poll(window)
        shown(window)
        event.remove(store.engine, "before_cursor_execute", count)
        assert links == []
        writer = threading.Thread(target=store.add_artifact, args=(parent, "report", picture),
                                  kwargs={"step": 100, "name": "mae"})  # a worker's write: not the GUI's
        writer.start()
        writer.join()
        window.tabs.setCurrentWidget(window.details)  # shown again: read then
        shown(window)
        assert [row[0] for row in window.details.artifact_rows] == ["checkpoint", "image", "report"]
        window.table.selectAll()
        shown(window)
        assert window.compare.table.rowCount() == 2
        window.tabs.setCurrentWidget(window.snapshots)
        window.select_run(parent)
        settle(window)
        shown(window)
        assert [a.step for a in window.snapshots.frames] == [100]
        assert not window.snapshots.image.item.pixmap().isNull()
        bigger = picture.with_name("reconstructions-00000200.png")
        QImage(16, 16, QImage.Format.Format_RGB32).save(str(bigger))
        writer = Store()  # another process's write, as a worker's (not the window's store, whose queries count)
        writer.add_artifact(parent, "image", bigger, step=200, name="reconstructions")
        writer.close()
        poll(window)
        shown(window)
        assert window.snapshots.image.item.pixmap().width() == 16  # it follows the newest
        window.snapshots.slider.setValue(0)  # a tick of the slider: the file is read and decoded on a worker thread
        assert window.snapshots.step_label.text().startswith("step 100") and \
            window.snapshots.image.item.pixmap().width() == 16
        shown(window)
        assert window.snapshots.image.item.pixmap().width() == 8
        window.tabs.setCurrentWidget(window.inspect)
        poll(window)
        shown(window)
        assert [window.inspect.checkpoint.itemData(i) for i in range(window.inspect.checkpoint.count())] == [10]
        window.tabs.setCurrentWidget(window.diagnostics)
        window.select_run(child)
        shown(window)
        assert f"run {child} has no diagnostics" in window.diagnostics.title.text()
        window.tabs.setCurrentWidget(window.distill)
        window.select_run(parent)
        shown(window)
        assert f"run {parent} (mae) has no distillation report" in window.distill.title.text()
        export = window.actions.export_selected()
        assert [export.weights.itemData(i) for i in range(export.weights.count())] == ["last"]
        export.close()
        datasets = window.open_datasets()
        settle(window)
        assert datasets.tasks.wait() and datasets.table.rowCount() >= 1
        datasets.close()
        window.parallel.setValue(3)
        window.actions.archive.trigger()  # an action writes on a worker thread too
        settle(window)
        assert f"Archived run(s) {parent}" in window.statusBar().currentMessage()
    assert on_gui and not any(on_gui), f"{on_gui.count(True)} of {len(on_gui)} queries ran on the GUI thread"
    assert store.max_concurrent() == 3


def test_the_forms_read_and_write_off_the_gui_thread(window: MainWindow, store: Store) -> None:
    """New experiment, Duplicate and New study read what they offer on a worker thread as they open,
    check every edit against that, and write what they create on a worker thread: a store that
    answers slowly (a server across a network) never freezes the window at a keystroke."""
    window.schedule = lambda: []  # nothing trains here
    encoder = finished_run(store, "mae", width=96, heads=3)
    config = make_config("finetune", "tiny", {"width": 96, "heads": 3}).to_dict()
    probe = store.create_run("finetune", config, parents={"encoder": encoder}).id
    store.update_run(probe, status=RunStatus.FINISHED)
    poll(window)

    def edit_and_start(dialog: NewRunDialog) -> None:
        assert dialog.parent_boxes["encoder"].currentData() == encoder  # the copy's parent, read with the form
        dialog.form.widgets["epochs"].setValue(2)
        dialog.form.widgets["patch_size"].setValue(5)  # refused by the form's checks
        assert not dialog.start_button.isEnabled() and "patch size" in dialog.error.text()
        dialog.form.widgets["patch_size"].setValue(4)
        dialog.start_button.click()

    def plan_and_start(dialog: NewStudyDialog) -> None:
        dialog.tabs.setCurrentIndex(1)
        dialog.method.setCurrentText("finetune")
        assert dialog.parent_boxes["encoder"].currentData() == encoder
        dialog.fields[0].setCurrentText("lr")
        dialog.values[0].setText("0.001, 0.002")
        assert "2 runs" in dialog.status.text(), dialog.status.text()
        dialog.start_button.click()

    window.select_run(probe)
    with recorded(store) as on_gui:
        in_dialog(edit_and_start)
        copy = window.duplicate_run()
        in_dialog(lambda dialog: (select_method(dialog, "finetune"), dialog.reject()))
        assert window.new_run() is None
        studies = window.open_studies()
        settle(window)
        in_dialog(plan_and_start, NewStudyDialog)
        study = studies.new_study()
        settle(window)
    assert copy is not None and copy.config["epochs"] == 2 and store.parents(copy.id)["encoder"].id == encoder
    assert study is not None and len(store.study_members(study.id)) == 2
    assert on_gui and not any(on_gui), f"{on_gui.count(True)} of {len(on_gui)} queries ran on the GUI thread"


def test_the_window_loads_without_a_query_on_the_gui_thread(qtbot, store: Store) -> None:
    """Opening the window on an open store: the runs whose worker died since the last session are
    found on a worker thread (and said), then the first poll fills the table."""
    lost = store.create_run("vit", make_config("vit", "tiny").to_dict())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.update_run(lost.id, status=RunStatus.RUNNING, pid=dead.pid)  # its worker gone while no window watched
    with recorded(store) as on_gui:
        window = MainWindow(store)
        qtbot.addWidget(window)
        window.load()
        window.timer.stop()
        settle(window)
    assert on_gui and not any(on_gui), f"{on_gui.count(True)} of {len(on_gui)} queries ran on the GUI thread"
    assert f"Runs {lost.id} lost their worker since the last session" in window.statusBar().currentMessage()
    assert window.model.run_at(window.model.row_of(lost.id)).status == RunStatus.INTERRUPTED
    window.close()


def test_the_parallel_runs_box_writes_one_value_at_a_time_the_last_one_last(
        window: MainWindow, store: Store, monkeypatch) -> None:
    """Writes on a pool of threads could end out of order: the box showing 7, the store keeping 3."""
    import time

    written, write = [], store.set_max_concurrent

    def slow_first(value: int) -> None:
        time.sleep(0.3 if not written else 0)
        written.append(value)
        write(value)

    monkeypatch.setattr(store, "set_max_concurrent", slow_first)
    for value in (3, 5, 7):
        window.parallel.setValue(value)
    settle(window)
    assert written == [3, 7] and store.max_concurrent() == 7 == window.parallel.value()


def test_the_store_opens_on_a_worker_thread(qtbot, home) -> None:
    """A server may take its connect timeout (5 s) to answer, or never: the shown window's load
    returns at once, the store opens on a worker thread, and what needs it says it is not open yet."""
    from workbench.ui import until_loaded

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    window.load()
    assert not window.loaded and window.connection.label.text() == "store: opening…"
    assert window.new_run() is None and "not open yet" in window.statusBar().currentMessage()
    assert until_loaded(window) and "workbench.sqlite" in window.connection.label.text()
    window.timer.stop()
    settle(window)
    window.close()


def test_the_parallel_runs_box_reads_again_when_its_first_read_fails(qtbot, store: Store, monkeypatch) -> None:
    """A server that blinks as the window loads: the box, disabled until the store's value is read,
    says why and reads again (it stayed disabled for the session)."""
    from workbench.errors import StoreError
    from workbench.ui.widgets import ParallelRuns

    monkeypatch.setattr(ParallelRuns, "RETRY_MS", 200)
    store.set_max_concurrent(4)
    reads, read = [], store.max_concurrent

    def blinking() -> int:
        reads.append(1)
        if len(reads) == 1:
            raise StoreError("the server did not answer")
        return read()

    monkeypatch.setattr(store, "max_concurrent", blinking)
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.load()
    window.timer.stop()
    qtbot.waitUntil(lambda: "did not answer" in window.statusBar().currentMessage())
    qtbot.waitUntil(lambda: window.parallel.isEnabled(), timeout=10_000)
    assert window.parallel.value() == 4 and len(reads) >= 2
    settle(window)
    window.close()


def test_garbage_is_collected_on_the_gui_thread_only(qtbot) -> None:
    """A job that allocates on a worker thread never runs Python's cyclic collector there: it would
    free garbage Qt objects off the GUI thread (seen: a segfault in QObject::event while a job
    opened the store). The GUI thread collects instead, by the same thresholds, within seconds."""
    from workbench.ui.tasks import Tasks

    freed_on: list[str] = []

    class Cycle:
        def __init__(self) -> None:
            self.me = self  # garbage only the cyclic collector frees

        def __del__(self) -> None:
            freed_on.append(threading.current_thread().name)

    def job() -> list[list]:
        Cycle()  # garbage at once, in the youngest generation
        return [[] for _ in range(100_000)]  # kept: the collector's count stays past its threshold

    tasks = Tasks()
    kept: list[list] = []
    tasks.submit(job, kept.append)
    qtbot.waitUntil(lambda: bool(freed_on and kept), timeout=10_000)
    assert freed_on == [threading.main_thread().name]


def test_the_parallel_runs_box_follows_a_limit_set_elsewhere(qtbot, store: Store, monkeypatch) -> None:
    """`workbench limit 5` (or another window) while this one is open: the box shows 5 within
    FOLLOW_MS; a value the user sets here is written, not overwritten by a reading made before it."""
    from workbench.ui.widgets import ParallelRuns

    monkeypatch.setattr(ParallelRuns, "FOLLOW_MS", 200)
    store.set_max_concurrent(2)
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.load()
    window.timer.stop()
    qtbot.waitUntil(lambda: window.parallel.isEnabled() and window.parallel.value() == 2, timeout=10_000)
    store.set_max_concurrent(5)  # the command line
    qtbot.waitUntil(lambda: window.parallel.value() == 5, timeout=10_000)
    window.parallel.setValue(3)  # the user, here
    qtbot.waitUntil(lambda: store.max_concurrent() == 3, timeout=10_000)
    qtbot.wait(600)  # three readings later: still the user's
    assert window.parallel.value() == 3 == store.max_concurrent()
    box, gate, asked = window.parallel, threading.Event(), []

    def slow() -> int:  # a reading made before the user's change, answered after it
        asked.append(1)
        gate.wait(10)
        return 5

    box.follow.stop()
    qtbot.waitUntil(lambda: not box.reading, timeout=10_000)
    monkeypatch.setattr(store, "max_concurrent", slow)
    box._read_again()
    box._read_again()  # still reading: not asked twice
    box.setValue(4)
    qtbot.waitUntil(lambda: not box.writing, timeout=10_000)
    gate.set()
    qtbot.waitUntil(lambda: not box.reading, timeout=10_000)
    assert box.value() == 4 and len(asked) == 1  # the stale 5 is dropped
    settle(window)
    window.close()
