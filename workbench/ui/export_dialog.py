"""`ExportDialog`: write a finished run's model as files other tools load.

The export itself (which imports torch and verifies every file) runs in a separate process,
`workbench export … --json`, so the window stays responsive and torch-free; its progress
lines appear in the dialog. Files that already exist are only replaced after asking.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QProcess
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench import paths
from workbench.export import CARD, FILES, FORMATS

LABELS = {"safetensors": "safetensors + config.json (timm)", "onnx": "ONNX (onnxruntime)",
          "pt2": "torch.export program (.pt2)"}


class ExportDialog(QDialog):
    def __init__(self, run_id: int, run_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export run {run_id}")
        self.run_id = run_id
        self.result: dict | None = None
        self.process: QProcess | None = None
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
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(lambda: self.start())
        self.buttons.rejected.connect(self.reject)

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<b>{run_name}</b> — the exportable part: its classifier, or its encoder"))
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

    def start(self, confirm_overwrite: bool = True) -> bool:
        """Start the export process; False if nothing to do or the user kept existing files."""
        formats, folder = self.formats(), Path(self.folder.text()).expanduser()
        if not formats:
            self.output.setPlainText("Tick at least one format.")
            return False
        existing = [folder / n for f in formats for n in FILES[f]] + [folder / CARD]
        existing = [p for p in existing if p.exists()]
        overwrite = bool(existing)
        if existing and confirm_overwrite and QMessageBox.question(
                self, "Replace files?", f"{len(existing)} file(s) in {folder} would be replaced, such as "
                                        f"{existing[0].name}. Replace them?") != QMessageBox.StandardButton.Yes:
            return False
        args = ["-m", "workbench.cli", "export", str(self.run_id), "--format", *formats, "--out", str(folder),
                "--json", *(["--overwrite"] if overwrite else [])]
        self.process = QProcess(self)
        self.process.setProcessEnvironment(self._environment())
        self.process.readyReadStandardError.connect(self._progress)
        self.process.finished.connect(self._finished)
        self.output.clear()
        self.busy.show()
        self.export_button.setEnabled(False)
        self.process.start(sys.executable, args)
        return True

    @staticmethod
    def _environment():
        from PySide6.QtCore import QProcessEnvironment

        env = QProcessEnvironment.systemEnvironment()
        env.insert("WORKBENCH_HOME", str(paths.home()))
        if os.environ.get("WORKBENCH_DATASETS"):
            env.insert("WORKBENCH_DATASETS", os.environ["WORKBENCH_DATASETS"])
        return env

    def _progress(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode(errors="replace")
        self.output.appendPlainText(text.rstrip())

    def _finished(self, code: int, _status: object) -> None:
        self.busy.hide()
        self.export_button.setEnabled(True)
        out = bytes(self.process.readAllStandardOutput()).decode(errors="replace").strip()
        if code == 0 and out:
            self.result = json.loads(out)
            files = [f for names in self.result["files"].values() for f in names] + [self.result["model_card"]]
            self.output.appendPlainText("\nWritten and verified:\n" + "\n".join(files))
        else:
            self.output.appendPlainText("\nExport failed; nothing was written.")
