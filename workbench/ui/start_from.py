"""`StartFrom`: where a new run's weights start, for the new-experiment form (the `init` field).

Random weights, a finished run (its best, last or EMA weights), a file or folder (Browse…, or
dropped onto the widget), or a timm / Hub name. The dialog fills and locks the shape fields the
source dictates (`workbench.methods.start.source_shape`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

from workbench.config import WEIGHTS
from workbench.methods import config_class
from workbench.methods.start import InitConfig
from workbench.store import Run

KINDS = (("scratch", "random weights"), ("run", "a finished run"), ("path", "a file or folder"),
         ("name", "a timm or Hub name"))
TIP = ("the architecture (width, depth, heads, MLP ratio) comes from the source; the classifier head is "
       "re-initialised when the classes differ, position embeddings are resampled to this image size and patch "
       "embeddings to this patch size; the run's log and init.json list every key left out")


class StartFrom(QWidget):
    changed = Signal()

    def __init__(self, finished: list[Run]) -> None:
        super().__init__()
        self.kind = QComboBox()
        for key, label in KINDS:
            self.kind.addItem(label, key)
        self.runs = QComboBox()
        for run in finished:
            if issubclass(config_class(run.method), InitConfig):
                for weights in WEIGHTS[:2] + (("ema",) if run.config.get("ema") else ()):
                    self.runs.addItem(f"{run.id} · {run.name} ({weights})", f"run:{run.id}:{weights}")
        self.text = QLineEdit()
        self.browse = QPushButton("File…")
        self.folder = QPushButton("Folder…")
        self.browse.clicked.connect(lambda: self._pick(folder=False))
        self.folder.clicked.connect(lambda: self._pick(folder=True))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for widget, stretch in ((self.kind, 0), (self.runs, 1), (self.text, 1), (self.browse, 0), (self.folder, 0)):
            row.addWidget(widget, stretch)
        self.setAcceptDrops(True)
        self.setToolTip(TIP)
        self.kind.currentIndexChanged.connect(self._show)
        self.runs.currentIndexChanged.connect(self.changed)
        self.text.textChanged.connect(self.changed)
        self._show()

    def _show(self) -> None:
        kind = self.kind.currentData()
        self.runs.setVisible(kind == "run")
        self.text.setVisible(kind in ("path", "name"))
        self.browse.setVisible(kind == "path")
        self.folder.setVisible(kind == "path")
        self.text.setPlaceholderText("timm:vit_small_patch16_224.augreg_in21k or hf-hub:ORG/NAME" if kind == "name"
                                     else "a .safetensors / .pth / .bin file, or a folder with config.json")
        self.changed.emit()

    def value(self) -> str:
        """The `init` value: '' for random weights."""
        kind = self.kind.currentData()
        if kind == "run":
            return self.runs.currentData() or ""
        text = self.text.text().strip()
        if kind == "path" and text and Path(text).expanduser().is_dir():
            return f"local-dir:{text}"
        return text if kind in ("path", "name") else ""

    def name_default(self, label: str) -> None:
        """What starting without `init` means for this method: random weights, or its encoder run's."""
        self.kind.setItemText(0, label)

    def set_value(self, spec: str) -> None:
        """Show an `init` value (a duplicated run's)."""
        index = self.runs.findData(spec if spec.count(":") == 2 else f"{spec}:best")
        kind = ("scratch" if not spec else "run" if index >= 0 else
                "name" if spec.startswith(("timm:", "hf-hub:")) else "path")
        self.kind.setCurrentIndex([k for k, _ in KINDS].index(kind))
        if kind == "run":
            self.runs.setCurrentIndex(index)
        elif kind != "scratch":
            self.text.setText(spec.removeprefix("local-dir:"))

    def _pick(self, *, folder: bool) -> None:
        chosen = (QFileDialog.getExistingDirectory(self, "A model folder (config.json + model.safetensors)")
                  if folder else QFileDialog.getOpenFileName(self, "Weights", "",
                                                             "Weights (*.safetensors *.pth *.pt *.bin)")[0])
        if chosen:
            self.text.setText(chosen)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """A file or folder dropped here is the source."""
        local = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if local:
            self.kind.setCurrentIndex([k for k, _ in KINDS].index("path"))
            self.text.setText(local[0])
            event.acceptProposedAction()
