"""The desktop app (PySide6 + pyqtgraph). Only this package imports Qt, and nothing here
imports torch: the window shows at once, training happens in worker processes."""

from __future__ import annotations

import os
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    if no_display():  # Qt would abort the process (SIGABRT) with a message about xcb plugins
        print("error: no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): run it on a desktop, "
              "under `xvfb-run`, or with QT_QPA_PLATFORM=offscreen; `workbench --help` lists what works headless",
              file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    from workbench.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("ViT Workbench")
    app.setOrganizationName("ViT Workbench")
    window = MainWindow()
    say_errors(window)
    window.show()
    app.processEvents()  # paint the window before the database and plotting libraries load
    window.load()
    return app.exec()


def say_errors(window: Any) -> None:
    """An exception no code caught (in a slot: a bug) is printed on stderr, which a desktop user
    never sees, and the click seems to do nothing: say it in the window as well, one box at a time
    (a slot failing at every poll would open one twice a second). The window goes on."""
    from PySide6.QtCore import QThread

    from workbench.ui.widgets import warn

    printed, shown = sys.excepthook, []

    def hook(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        printed(kind, error, trace)
        if issubclass(kind, KeyboardInterrupt) or shown or QThread.currentThread() is not window.thread():
            return  # a box is made on the GUI thread only (PySide may call this hook from a pool thread)
        try:
            box = warn(window, "Something went wrong", f"{kind.__name__}: {error}\n\nThis is a bug of the workbench; "
                       f"the window goes on. The traceback is on its standard error (start it from a terminal to "
                       f"keep it).")
        except RuntimeError:  # the window is already gone (an error while it closes): printed is all
            return
        shown.append(box)
        box.finished.connect(lambda _: shown.clear())

    sys.excepthook = hook


def no_display() -> bool:
    """Whether a Linux machine has nowhere to show a window (no X or Wayland display, no Qt platform chosen)."""
    return sys.platform.startswith("linux") and not any(
        os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def driven_window(size: tuple[int, int] = (1360, 820)) -> Any:
    """A shown, loaded window whose poll timer is stopped: for the scripts that drive it and poll
    it by hand (the README's screenshots, bench/gui_scale.py)."""
    from workbench.ui.main_window import MainWindow

    window = MainWindow()
    window.resize(*size)
    window.show()
    window.load()
    if not until_loaded(window):
        raise RuntimeError(f"the store did not open: {window.connection.banner.text()}")
    window.timer.stop()
    return window


def until_loaded(window: Any, seconds: float = 60) -> bool:
    """Let the window's store open (on a worker thread) and its views build; whether they did."""
    from workbench.ui.tasks import wait_until

    return wait_until(lambda: window.loaded, seconds)
