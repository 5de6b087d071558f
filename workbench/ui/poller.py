"""`Poller`: the window's reads of the store, on a worker thread, one at a time.

A store on a server may answer slowly, or not at all, so the GUI thread never waits for it: a
poll snapshots what it needs on the GUI thread (`prepare`, which returns the reading to do),
reads on a worker thread, and shows the result back on the GUI thread (`show`). A poll asked
for while one is reading (a filter, Refresh) runs once that one is shown, and callbacks that
need the result (select the run just made) run after it. A server that cannot be reached shows
the connection banner and is tried again every few seconds (`Connection`).
"""

from __future__ import annotations

from typing import Any, Callable

from workbench.errors import StoreUnreachable, WorkbenchError
from workbench.ui.connection import Connection
from workbench.ui.tasks import Tasks


class Poller:
    def __init__(self, tasks: Tasks, connection: Connection, prepare: Callable[[], Callable[[], Any]],
                 show: Callable[[Any], None], say: Callable[[str], None]) -> None:
        self.tasks, self.connection, self.prepare, self.show, self.say = tasks, connection, prepare, show, say
        self.polling = False  # a read is under way on a worker thread
        self._again = False  # a poll was asked for meanwhile
        self._then: list[Callable[[], None]] = []  # what waits for the next poll to be shown

    def poll(self, then: Callable[[], None] | None = None) -> None:
        """Read the store now, unless a read is under way (then once it is shown) or the store is
        lost and its retry is not due; `then` runs after the next poll is shown."""
        if then is not None:
            self._then.append(then)
        if self.polling:
            self._again = True
            return
        if not self.connection.due():
            return
        self.polling, self._again = True, False
        read = self.prepare()

        def guarded() -> tuple[Any, WorkbenchError | None]:  # on the worker thread
            try:
                return read(), None
            except WorkbenchError as exc:
                return None, exc

        self.tasks.submit(guarded, self._done, self._failed)

    def _done(self, outcome: tuple[Any, WorkbenchError | None]) -> None:
        self.polling = False
        result, error = outcome
        if error is not None:
            self._failed(str(error), unreachable=isinstance(error, StoreUnreachable))
            return
        if self.connection.back():
            self.say("The store answers again")
        self.show(result)
        if self._again:
            self.poll()
            return
        while self._then:
            self._then.pop(0)()

    def _failed(self, message: str, *, unreachable: bool = False) -> None:
        """A server that does not answer: the banner and a retry later; anything else (a locked
        file): said in the status bar, and the next poll tries again."""
        self.polling = False
        if unreachable:
            self.connection.lost(message)
        else:
            self.say(message)
