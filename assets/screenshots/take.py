"""Save the README's screenshots from the runs in $WORKBENCH_HOME (offscreen):

    QT_QPA_PLATFORM=offscreen WORKBENCH_HOME=... python assets/screenshots/take.py RUN_ID [RUN_ID ...] \
        [--mae ID] [--vit ID] [--deit ID] [--study ID]

The runs given plainly are selected for the main window and Compare; --mae shows its snapshots
(Images) and a reconstruction (Inspect), --vit its attention maps, --deit the Distillation view,
--study that study in the Studies window (and the New study dialog).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QApplication

HERE = Path(__file__).parent


def main(run_ids: list[int], mae: int | None = None, vit: int | None = None, deit: int | None = None,
         study: int | None = None) -> None:
    app = QApplication.instance() or QApplication([])
    from workbench.ui import driven_window
    from workbench.ui.new_run_dialog import NewRunDialog

    window = driven_window()
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
    dialog.resize(900, 860)
    dialog.show()
    dialog.tasks.wait()
    for _ in range(3):
        app.processEvents()
    dialog.grab().save(str(HERE / "new_experiment.png"))
    dialog.close()

    def view(run_id: int, tab) -> None:
        window.table.clearSelection()
        window.select_run(run_id)
        window.tabs.setCurrentWidget(tab)
        window.poll()
        app.processEvents()
        window.tasks.wait()
        app.processEvents()

    def ask(what: str, name: str) -> None:
        window.inspect.result = None
        window.inspect.start(what)
        deadline = time.time() + 120
        while window.inspect.result is None and time.time() < deadline and "failed" not in window.inspect.info.text():
            app.processEvents()
            time.sleep(0.05)
        window.grab().save(str(HERE / name))

    if mae is not None:
        view(mae, window.snapshots)
        window.grab().save(str(HERE / "images.png"))
        view(mae, window.inspect)
        ask("reconstruct", "reconstruct.png")
    if vit is not None:
        view(vit, window.inspect)
        window.inspect.samples.setCurrentRow(4)
        ask("attention", "attention.png")
    if deit is not None:
        view(deit, window.distill)
        window.grab().save(str(HERE / "distillation.png"))
    if study is not None:
        studies = window.open_studies()
        studies._select_next = study
        studies.refresh()
        for _ in range(3):
            window.tasks.wait()
            app.processEvents()
        studies.chart.metric_box.setCurrentIndex(min(1, studies.chart.metric_box.count() - 1))  # MAE's fine-tune column
        studies.grab().save(str(HERE / "studies.png"))
        from workbench.ui.new_study_dialog import NewStudyDialog

        dialog = NewStudyDialog(window.store, studies)
        dialog.show()
        app.processEvents()
        dialog.grab().save(str(HERE / "new_study.png"))
        dialog.close()
        studies.close()
    window.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="*", type=int)
    parser.add_argument("--mae", type=int)
    parser.add_argument("--vit", type=int)
    parser.add_argument("--deit", type=int)
    parser.add_argument("--study", type=int)
    args = parser.parse_args()
    main(args.runs, args.mae, args.vit, args.deit, args.study)
