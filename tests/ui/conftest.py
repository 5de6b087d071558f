"""The main window every GUI test drives: loaded, with its poll timer stopped (tests poll by hand)."""

import pytest

from workbench.store import Store
from workbench.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, store: Store) -> MainWindow:
    w = MainWindow(store)
    qtbot.addWidget(w)
    w.load()
    w.timer.stop()  # the tests poll by hand
    yield w
    w.close()
