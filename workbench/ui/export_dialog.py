"""`ExportDialog`: write a finished run's model as files other tools load.

The export itself (which imports torch and verifies every file) runs in a separate process
(`workbench export … --json` through `CliProcess`), so the window stays responsive and torch-free; its progress
lines appear in the dialog. Files that already exist are only replaced after asking.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench import paths
from workbench.export import CARD, FILES, FORMATS
from workbench.store import Store
from workbench.ui.cli_process import CliProcess
from workbench.ui.widgets import confirm

LABELS = {"safetensors": "safetensors + config.json (timm)", "onnx": "ONNX (onnxruntime)",
          "pt2": "torch.export program (.pt2)"}


def weight_choices(store: Store, run_id: int) -> list[tuple[str, str]]:
    """(choice, label) of the weights run `run_id` can export: its best evaluation's (when it kept
    one), its last checkpoint's, and the moving average (when it trained with ema)."""
    run = store.get_run(run_id)
    last = store.artifacts(run_id, "checkpoint")
    step = f"step {last[-1].step}" if last else "no checkpoint left"
    best = store.artifacts(run_id, "best")
    choices = [("best", f"best — {b.meta['metric']} {b.meta['value']:.4g} at step {b.step}") for b in best[-1:]]
    choices.append(("last", f"last — {step}"))
    if run.config.get("ema"):
        choices.append(("ema", f"moving average (EMA) — {step}"))
    return choices


class ExportDialog(QDialog):
    def __init__(self, choices: list[tuple[str, str]], run_id: int, run_name: str,
                 parent: QWidget | None = None) -> None:
        """`choices`: `weight_choices` of the run, read before (on a worker thread by the window)."""
        super().__init__(parent)
        self.setWindowTitle(f"Export run {run_id}")
        self.run_id = run_id
        self.result: dict | None = None
        self.weights = QComboBox()
        for choice, label in choices:
            self.weights.addItem(label, choice)
        self.weights.setToolTip("which of the run's weights: its best evaluation's (by best_metric), its last "
                                "checkpoint's, or the moving average of its weights (runs with ema=true)")
        self.boxes = {fmt: QCheckBox(LABELS[fmt]) for fmt in FORMATS}
        for box in self.boxes.values():
            box.setChecked(True)
        self.folder = QLineEdit(str(paths.run_dir(run_id) / "exports"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.hide()
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("each file is reloaded and compared with the model before it is kept")
        self.process = CliProcess(self)
        self.process.progress.connect(self.output.appendPlainText)
        self.process.done.connect(self._finished)
        self.process.failed.connect(lambda reason: self._finished(None, reason))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<b>{run_name}</b> — the exportable part: its classifier, or its encoder"))
        weights_row = QHBoxLayout()
        weights_row.addWidget(QLabel("Weights"))
        weights_row.addWidget(self.weights, 1)
        layout.addLayout(weights_row)
        for box in self.boxes.values():
            layout.addWidget(box)
        layout.addWidget(QLabel("Folder"))
        layout.addLayout(folder_row)
        layout.addWidget(self.busy)
        layout.addWidget(self.output, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 420)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export into", self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    def formats(self) -> list[str]:
        return [fmt for fmt, box in self.boxes.items() if box.isChecked()]

    def start(self) -> bool:
        """Start the export process; False if nothing to do or the user kept existing files."""
        formats, folder = self.formats(), Path(self.folder.text()).expanduser()
        if not formats:
            self.output.setPlainText("Tick at least one format.")
            return False
        existing = [folder / n for f in formats for n in FILES[f]] + [folder / CARD]
        existing = [p for p in existing if p.exists()]
        overwrite = bool(existing)
        if existing and not confirm(self, "Replace files?", f"Replace {len(existing)} file(s) in {folder}?",
                                    "Replace", detail=", ".join(p.name for p in existing)):
            return False
        self.output.clear()
        self.busy.show()
        self.export_button.setEnabled(False)
        self.process.start(["export", str(self.run_id), "--format", *formats, "--out", str(folder), "--json",
                            "--weights", self.weights.currentData(),
                            *(["--overwrite"] if overwrite else [])])
        return True

    def _finished(self, result: dict | None, reason: str = "") -> None:
        self.busy.hide()
        self.export_button.setEnabled(True)
        if result is not None:
            self.result = result
            files = [f for names in result["files"].values() for f in names] + [result["model_card"]]
            self.output.appendPlainText("\nWritten and verified:\n" + "\n".join(files))
        else:
            self.output.appendPlainText(f"\nExport failed ({reason}); nothing was written.")
