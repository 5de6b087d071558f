"""Save the README's screenshots from the runs in $WORKBENCH_HOME (offscreen):

    QT_QPA_PLATFORM=offscreen WORKBENCH_HOME=... python assets/screenshots/take.py RUN_ID [RUN_ID ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QApplication

HERE = Path(__file__).parent


def main(run_ids: list[int]) -> None:
    app = QApplication.instance() or QApplication([])
    from workbench.ui.main_window import MainWindow
    from workbench.ui.new_run_dialog import NewRunDialog

    window = MainWindow()
    window.resize(1360, 820)
    window.show()
    window.load()
    window.timer.stop()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for run_id in run_ids:
        row = window.proxy.mapFromSource(window.model.index(window.model.row_of(run_id), 0)).row()
        window.table.selectionModel().select(window.proxy.index(row, 0), flags)
    for _ in range(3):
        app.processEvents()
        window.tasks.wait()
        window.poll()
    window.probe.waitForFinished(30_000)
    app.processEvents()
    window.grab().save(str(HERE / "main_window.png"))
    window.tabs.setCurrentWidget(window.compare)
    app.processEvents()
    window.grab().save(str(HERE / "compare.png"))
    dialog = NewRunDialog(window.store, window, method="mae")
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(HERE / "new_experiment.png"))
    window.close()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]])
