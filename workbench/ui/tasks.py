"""`Tasks`: run a callable on a worker thread and get its result back on the GUI thread.

Store queries that may be slow (a long metric history), cancelling (which waits for a
worker to checkpoint) and deleting files go through here, so the window never freezes.

The window submits a job on every poll, all day: so a job leaves nothing behind. One relay
object carries every result back (a queued signal, tagged with the job's number) and the
callbacks are dropped once called; a QObject per job, with lambdas connected to its own
signals, is a reference cycle through C++ that Python's collector never frees (the soak test
found ~1 leaked per poll).

While a `Tasks` exists, Python's cyclic collector runs on the GUI thread only (`collect_on_gui_thread`).
"""

from __future__ import annotations

import concurrent.futures
import gc
import itertools
import time
import traceback
from typing import Any, Callable, TypeVar

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QTimer, Signal

Callback = Callable[[Any], None] | None
Submit = Callable[..., None]  # Tasks.submit
T = TypeVar("T")
COLLECT_MS = 1000  # how often the GUI thread looks whether a collection is due
_collector: QTimer | None = None


def collect_on_gui_thread() -> None:
    """Turn Python's automatic cyclic collection off and collect on the GUI thread instead, by the
    same thresholds, each COLLECT_MS.

    The automatic collector runs in whichever thread allocates past its threshold. In a worker
    thread (a store query) it frees garbage Qt objects there (a closed dialog, a window and its
    views), while the GUI thread may be delivering an event to one of them: a segfault in
    `QObject::event`, about one run in ten of tests/ui/test_store_connection.py. pyqtgraph's
    `GarbageCollector` does the same, but importing it loads pyqtgraph before the window paints."""
    global _collector
    gc.disable()
    if _collector is None:
        _collector = QTimer(QCoreApplication.instance())  # as long as the application
        _collector.timeout.connect(_collect_due)
        _collector.start(COLLECT_MS)


def _collect_due() -> None:
    """One step of what the automatic collector would have done by now: the youngest generation
    past its threshold, and the older ones past theirs."""
    if gc.isenabled():  # given back (a test's teardown): the interpreter collects on its own again
        return
    thresholds, counts = gc.get_threshold(), gc.get_count()
    generation = -1
    for g in range(3):
        if counts[g] <= thresholds[g]:
            break
        generation = g
    if generation >= 0:
        gc.collect(generation)


def wait_until(done: Callable[[], bool], seconds: float | None = None) -> bool:
    """Run a local event loop (the window stays live, as in a modal dialog's `exec`) until `done()`,
    for at most `seconds`; whether `done()`. It looks every 10 ms: no signal crosses threads, so
    none is left behind when the wait ends first."""
    deadline = None if seconds is None else time.monotonic() + seconds
    loop = QEventLoop()
    ticks = QTimer(loop)
    ticks.timeout.connect(lambda: (done() or deadline is not None and time.monotonic() > deadline) and loop.quit())
    ticks.start(10)
    if not done():
        loop.exec()
    ticks.timeout.disconnect()  # the lambda holds the loop: a cycle through C++ no collector frees
    return done()


def read_then(submit: Submit | None, read: Callable[[], T], show: Callable[[T], None],
              failed: Callable[[str], None] | None = None) -> None:
    """A view's reading of the store: `read` on a worker thread through `submit` (the window's
    `Tasks.submit`), then `show` of its result on the GUI thread; both inline for a view without
    `submit` (one made on its own, as in a test)."""
    if submit is None:
        show(read())
    else:
        submit(read, show, failed)


def read_until(submit: Submit, read: Callable[[], T], show: Callable[[T], None], failed: Callable[[str], None],
               every_s: float, context: QObject, wanted: Callable[[], bool] = lambda: True) -> None:
    """`read` on a worker thread through `submit`, then `show` of its result; after a failure,
    `failed` of its message, and `read` again every `every_s` seconds while `wanted()` and
    `context` lives: a store that does not open yet, a first read of it that failed."""
    def again(message: str) -> None:
        failed(message)
        if wanted():
            QTimer.singleShot(int(every_s * 1000), context, lambda: wanted() and submit(read, show, again))

    submit(read, show, again)


class _Relay(QObject):
    """Lives on the GUI thread; signals emitted from the pool arrive there as queued calls."""

    done = Signal(int, object)
    failed = Signal(int, str)


class Tasks(QObject):
    def __init__(self, parent: QObject | None = None, threads: int = 4) -> None:
        super().__init__(parent)
        collect_on_gui_thread()  # before its threads allocate anything
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="workbench-task")
        self.relay = _Relay(self)
        self.relay.done.connect(self._done)
        self.relay.failed.connect(self._failed)
        self._callbacks: dict[int, tuple[Callback, Callback]] = {}
        self._pending: set[concurrent.futures.Future] = set()
        self._numbers = itertools.count()
        self.waiting = False  # in `result`

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None) -> None:
        job = next(self._numbers)
        self._callbacks[job] = (on_done, on_error)
        self._start(self._run, job, fn)

    def _start(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """`fn(*args)` on the pool, its future kept until done (`close` waits for them)."""
        future = self.pool.submit(fn, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def result(self, fn: Callable[[], T], failed: Callable[[str], None]) -> T | None:
        """`fn()` run on a worker thread while a local event loop keeps the window live, as a modal
        dialog's `exec` does: for a dialog that needs the store's answer before it opens. None when
        `fn` raised (after `failed` of the message: a store that cannot be reached), while an
        earlier such wait is under way (a second click before the first form opened), or when the
        application quit meanwhile (its read is left to finish on its thread)."""
        if self.waiting:
            return None
        self.waiting = True
        future = self._start(fn)
        finished = wait_until(future.done)
        self.waiting = False
        if not finished:  # the loop was ended from outside (the app quits): never wait here
            return None
        try:
            return future.result()
        except Exception as exc:  # as `submit`'s errors: said, never raised into the event loop
            failed(str(exc) or traceback.format_exc())
            return None

    def _run(self, job: int, fn: Callable[[], Any]) -> None:
        try:
            result = fn()
        except Exception as exc:  # reported to the GUI, which shows it; the thread must not die
            self.relay.failed.emit(job, str(exc) or traceback.format_exc())
        else:
            self.relay.done.emit(job, result)

    def _done(self, job: int, result: Any) -> None:
        on_done, _ = self._callbacks.pop(job, (None, None))
        if on_done is not None:
            on_done(result)

    def _failed(self, job: int, message: str) -> None:
        _, on_error = self._callbacks.pop(job, (None, None))
        if on_error is not None:
            on_error(message)

    @property
    def busy(self) -> bool:
        """Whether a job's result (or error) is still to be delivered on the GUI thread."""
        return bool(self._callbacks)

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until every submitted job has finished (tests and shutdown); False on timeout.
        Their callbacks run later, from the event loop, as always."""
        _, not_done = concurrent.futures.wait(list(self._pending), timeout=msecs / 1000)
        return not not_done
