"""`InspectView`: ask a trained run about one image.

Pick an image (a sample of the run's dataset, a file chosen or dragged in), a checkpoint and,
for methods that reconstruct, a mask ratio, strategy and seed (previewed live by
`MaskPreview`); then "Reconstruct" shows original | masked | reconstruction | reconstruction +
visible with the per-image MSE, and "Attention maps" shows the last block's [CLS] attention
of every head and the rollout over all blocks. The model runs in another process
(`workbench inspect`, through `CliProcess`), so the window stays responsive and torch-free;
the chosen image is handed over as a PNG, so the preview and the model see the same pixels.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.methods import config_class
from workbench.store import Run, Store
from workbench.ui.cli_process import CliProcess
from workbench.ui.image_view import ZoomImage, to_pixmap
from workbench.ui.mask_preview import MaskPreview
from workbench.ui.tasks import Tasks


class InspectView(QWidget):
    message = Signal(str)  # "saved …": the main window shows it in its status bar

    def __init__(self, store: Store, tasks: Tasks) -> None:
        super().__init__()
        self.store, self.tasks = store, tasks
        self.run: Run | None = None
        self.wanted: int | None = None  # the run last asked for: a slower read of an earlier one is dropped
        self.image: np.ndarray | None = None
        self.result: dict | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="workbench-inspect-"))
        self.setAcceptDrops(True)

        self.title = QLabel("select a trained ViT-family run")
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)  # a long run name must not widen the window
        self.checkpoint = QComboBox()
        self.checkpoint.setToolTip("which of the run's kept checkpoints answers")
        self.samples = QListWidget()
        self.samples.setViewMode(QListWidget.ViewMode.IconMode)
        self.samples.setFlow(QListWidget.Flow.LeftToRight)
        self.samples.setWrapping(False)
        self.samples.setIconSize(QSize(56, 56))
        self.samples.setFixedHeight(92)
        self.samples.currentItemChanged.connect(self._sample_chosen)
        open_file = QPushButton("Open image…")
        open_file.setToolTip("any JPEG, PNG, WebP, BMP or TIFF file (or drop one here)")
        open_file.clicked.connect(self._choose_file)
        self.mask = MaskPreview()
        self.reconstruct_button = QPushButton("Reconstruct")
        self.reconstruct_button.clicked.connect(lambda: self.start("reconstruct"))
        self.attention_button = QPushButton("Attention maps")
        self.attention_button.clicked.connect(lambda: self.start("attention"))
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.hide()
        self.info = QLabel()
        self.info.setWordWrap(True)
        # two lines kept: a wrapped label's height is not passed up through the tab widget
        self.info.setMinimumHeight(2 * self.info.fontMetrics().lineSpacing() + 4)
        self.source = QLabel("image: none yet")
        self.source.setWordWrap(True)
        self.source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.source.setToolTip("the image the model will be asked about")
        save = QPushButton("Save PNG…")
        save.clicked.connect(lambda: self.output.save())
        self.output = ZoomImage(placeholder="the answer appears here")
        self.output.saved.connect(lambda path: self.message.emit(f"Saved the answer to {path}"))
        self.process = CliProcess(self)
        self.process.done.connect(self._done)
        self.process.failed.connect(self._failed)

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(QLabel("checkpoint"))
        top.addWidget(self.checkpoint)
        source = QHBoxLayout()
        source.addWidget(self.samples, 1)
        source.addWidget(open_file)
        actions = QHBoxLayout()
        actions.addWidget(self.reconstruct_button)
        actions.addWidget(self.attention_button)
        actions.addWidget(self.busy)
        actions.addStretch(1)
        actions.addWidget(save)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(source)
        layout.addWidget(self.source)
        layout.addWidget(self.mask)
        layout.addLayout(actions)
        layout.addWidget(self.info)
        layout.addWidget(self.output, 1)
        self._clear()

    # ------------------------------------------------------------------ run
    def _clear(self) -> None:
        """No run: nothing of the last one stays on screen (its images, its answer)."""
        self.run = self.image = self.result = None
        self.checkpoint.clear()
        self.samples.clear()
        for button in (self.reconstruct_button, self.attention_button):
            button.setEnabled(False)
        self.mask.hide()
        self.title.setText("select a trained ViT-family run")
        self.source.setText("image: none yet")
        self.info.clear()
        self.output.set_placeholder("the answer appears here")

    def show_run(self, run: Run | None) -> None:
        """Follow the selected run (called on every poll: its checkpoints are read on a worker thread,
        and only a new run or new checkpoints redo work)."""
        self.wanted = run.id if run is not None else None
        if run is None:
            if self.run is not None:
                self._clear()
            return
        if self.run is not None and run.id != self.run.id:  # until its checkpoints are read: not the last run's
            self.reconstruct_button.setEnabled(False)
            self.attention_button.setEnabled(False)
        self.tasks.submit(lambda: [a.step for a in self.store.artifacts(run.id, "checkpoint")],
                          lambda steps: self._show_steps(run, steps) if self.wanted == run.id else None)

    def _show_steps(self, run: Run, steps: list[int]) -> None:
        shown = [self.checkpoint.itemData(i) for i in range(self.checkpoint.count())]
        if self.run is not None and run.id == self.run.id and steps == shown:
            return
        new_run = self.run is None or run.id != self.run.id
        self.run = run
        self.checkpoint.clear()
        for step in reversed(steps):
            self.checkpoint.addItem(f"step {step}", step)
        can = config_class(run.method).inspections
        self.reconstruct_button.setEnabled("reconstruct" in can and bool(steps))
        self.attention_button.setEnabled("attention" in can and bool(steps))
        self.mask.setVisible("reconstruct" in can)
        self.title.setText(f"{run.id} · {run.name} ({run.method})" + ("" if can else
                           " — nothing to inspect: attention maps need a ViT-family run")
                           + ("" if steps or not can else " — no checkpoint yet"))
        if not new_run:
            return
        cfg = run.config
        size, patch = int(cfg.get("image_size", 32)), int(cfg.get("patch_size", 1) or 1)
        spec = config_class(run.method).mask_spec_of(cfg) if "reconstruct" in can else None
        if spec is not None:
            strategy, ratio, exact = spec
            self.mask.configure(size // patch, patch, exact)
            self.mask.set_values(ratio, strategy)
        self.samples.clear()
        self.image = None
        self.source.setText("image: none yet (loading the dataset's samples…)")
        self.output.set_placeholder("the answer appears here")
        self.info.clear()
        from workbench.data.preview import samples

        dataset = str(cfg.get("dataset", "shapes"))
        self.tasks.submit(lambda: samples(self.store, dataset, 1, size),
                          lambda rows, run_id=run.id: self._samples_loaded(run_id, rows),
                          lambda error: self.info.setText(f"no dataset images ({error}); open an image file"))

    def _samples_loaded(self, run_id: int, rows: list[tuple[str, list[np.ndarray]]]) -> None:
        if self.run is None or self.run.id != run_id:
            return
        for label, images in rows:
            for image in images:
                item = QListWidgetItem(QIcon(to_pixmap(image).scaled(56, 56)), label[:8])
                item.setData(Qt.ItemDataRole.UserRole, image)
                item.setToolTip(label)
                self.samples.addItem(item)
        if self.samples.count():
            self.samples.setCurrentRow(0)

    # ---------------------------------------------------------------- image
    def _sample_chosen(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            dataset = self.run.config.get("dataset", "") if self.run else ""
            self.set_image(item.data(Qt.ItemDataRole.UserRole),
                           f"image: a validation image of class {item.toolTip()} from {dataset}")

    def set_image(self, image: np.ndarray, source: str) -> None:
        self.image = image
        self.source.setText(source)
        self.mask.set_images([image])

    def load_file(self, path: str) -> bool:
        if self.run is None:
            return False
        from workbench.data.folders import load_image

        try:
            image = load_image(Path(path), int(self.run.config.get("image_size", 32)))
        except OSError as exc:
            self.info.setText(f"cannot read {path} as an image ({exc})")
            return False
        self.samples.clearSelection()
        self.set_image(image, f"image: {path}")
        return True

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif "
                                                                      "*.tiff);;All files (*)")
        if path:
            self.load_file(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls and self.load_file(urls[0]):
            event.acceptProposedAction()

    # ------------------------------------------------------------------ ask
    def start(self, view: str) -> bool:
        """Run `workbench inspect VIEW` on the chosen image and checkpoint; False if not ready."""
        if self.run is None or self.image is None or self.checkpoint.currentData() is None:
            self.info.setText("pick an image and a checkpoint first")
            return False
        source = self.workdir / "input.png"
        Image.fromarray(self.image).save(source)
        args = ["inspect", view, str(self.run.id), "--image", str(source), "--step", str(self.checkpoint.currentData()),
                "--out", str(self.workdir / f"{view}.png"), "--json"]
        if view == "reconstruct":
            ratio, strategy, seed = self.mask.values()
            args += ["--ratio", str(ratio), "--strategy", strategy, "--seed", str(seed)]
        self.result = None
        self.busy.show()
        self.info.setText(f"running the model ({view})…")
        self.process.start(args)
        return True

    def _done(self, result: dict) -> None:
        self.busy.hide()
        self.result = result
        self.output.set_pixmap(QPixmap(result["out"]), keep_zoom=False)
        if result["view"] == "reconstruct":
            self.info.setText(f"MSE over the masked pixels {result['mse']:.4f} · {result['masked']} patches masked, "
                              f"{result['visible']} visible · {result['strategy']} {result['ratio']:.2f}, seed "
                              f"{result['seed']} · checkpoint step {result['step']}")
        else:
            said = " · ".join(f"{name} {p:.0%}" for name, p in result.get("prediction", []))
            self.info.setText(f"[CLS] attention of the {result['heads']} heads of block {result['blocks']} (of "
                              f"{result['blocks']}), and the rollout over all blocks · checkpoint step {result['step']}"
                              + (f" · the model predicts {said}" if said else " · an encoder: no prediction"))

    def _failed(self, reason: str) -> None:
        self.busy.hide()
        self.info.setText(f"failed: {reason}")
