"""The main window every GUI test drives: loaded, with its poll timer stopped (tests poll by hand);
waits for its dialogs that end with their test."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from workbench.store import Store
from workbench.ui.main_window import MainWindow
from workbench.ui.new_run_dialog import NewRunDialog


class _Wait:
    """A test's wait for a dialog to open (`in_dialog`, `answer_next_box`), until it acts."""

    looking: list[_Wait] = []

    def __init__(self, what: str) -> None:
        self.what, self.stopped = what, False
        _Wait.looking.append(self)

    def end(self) -> None:
        _Wait.looking.remove(self)


@pytest.fixture(autouse=True)
def waits_end_with_their_test() -> None:
    """A dialog wait still looking when its test ends would act on a later test's dialog: a
    Duplicate that opened no form once clicked Start in the next test's form (pytest-xdist ran
    them in another order). It is stopped, and the test that left it fails."""
    yield
    left = [wait.what for wait in _Wait.looking]
    for wait in _Wait.looking:
        wait.stopped = True
    _Wait.looking.clear()
    assert not left, f"waited for a dialog that never opened: {', '.join(left)}"


@pytest.fixture
def window(qtbot, store: Store) -> MainWindow:
    w = MainWindow(store)
    qtbot.addWidget(w)
    w.load()
    w.timer.stop()  # the tests poll by hand
    settle(w)
    yield w
    w.close()


def answer_next_box(button: str, tries: int = 250) -> list[str]:
    """Click `button` on the next modal message box once it shows (a real QMessageBox, as the
    user sees it); the returned list receives its text and detail, so tests can check both."""
    from PySide6.QtWidgets import QMessageBox

    seen: list[str] = []
    wait = _Wait(f"a message box to answer {button!r}")

    def click(left: int = tries) -> None:
        if wait.stopped:
            return
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            if left:
                QTimer.singleShot(20, lambda: click(left - 1))
            return
        wait.end()
        seen.append(f"{box.text()}\n{box.informativeText()}")
        choice = next((b for b in box.buttons() if b.text().replace("&", "") == button), None)
        assert choice is not None, f"no {button!r} button among {[b.text() for b in box.buttons()]}"
        choice.click()

    QTimer.singleShot(0, click)
    return seen


def poll(window: MainWindow) -> None:
    """One poll of the window, to its end (it reads the store on a worker thread, then shows it)."""
    window.poll()
    settle(window)


def settle(window: MainWindow) -> None:
    """Wait until the window has done every action it started on its worker threads and shown
    every poll it started (after load, or an action's)."""
    while window.polling or window.tasks.busy:
        assert window.tasks.wait(60_000), "the window's jobs did not end within 60 s"
        QApplication.processEvents()


def shown(window: MainWindow) -> None:
    """Wait for the window's background readings (Compare's, the curves') and show what they read."""
    assert window.tasks.wait(60_000), "the window's background jobs did not end within 60 s"
    QApplication.processEvents()


def select_method(dialog: NewRunDialog, method: str) -> None:
    """Choose `method` in the new-experiment dialog's list, as a click would."""
    for i in range(dialog.methods.count()):
        if dialog.methods.item(i).data(Qt.ItemDataRole.UserRole) == method:
            dialog.methods.setCurrentRow(i)
            return
    raise AssertionError(method)


def in_dialog(act, kind: type = NewRunDialog, tries: int = 1000) -> None:
    """Run `act(dialog)` once the window's modal dialog of `kind` is open (after its form's read)."""
    wait = _Wait(f"a {kind.__name__}")

    def look(left: int) -> None:
        if wait.stopped:
            return
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, kind):
            wait.end()
            act(dialog)
        elif left:
            QTimer.singleShot(10, lambda: look(left - 1))

    look(tries)
