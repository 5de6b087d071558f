"""`Tasks`: run a callable on a worker thread and get its result back on the GUI thread.

Store queries that may be slow (a long metric history), cancelling (which waits for a
worker to checkpoint) and deleting files go through here, so the window never freezes.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    """Lives on the GUI thread; signals emitted from the pool arrive there as queued calls."""

    done = Signal(object)
    failed = Signal(str)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # reported to the GUI, which shows it; the thread must not die
            self.relay.failed.emit(str(exc) or traceback.format_exc())
        else:
            self.relay.done.emit(result)


class Tasks(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)
        self._relays: set[_Relay] = set()

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None) -> None:
        relay = _Relay()
        self._relays.add(relay)
        if on_done:
            relay.done.connect(on_done)
        if on_error:
            relay.failed.connect(on_error)
        relay.done.connect(lambda _: self._relays.discard(relay))
        relay.failed.connect(lambda _: self._relays.discard(relay))
        self.pool.start(_Job(fn, relay))

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until every submitted job has finished (tests and shutdown)."""
        return self.pool.waitForDone(msecs)
