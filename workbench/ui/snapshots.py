"""`SnapshotsView`: the images a run saved while training (MAE reconstructions, dVAE and BEiT
tokens, prediction grids, DeiT comparisons), one kind at a time, with a step slider and
play/pause to watch them improve, zoom, and Save PNG. Works for every method: it reads the
run's `image` artifacts, whatever their names."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from workbench.store import Artifact, Run, Store
from workbench.ui.image_view import ZoomImage
from workbench.ui.tasks import Submit, read_then

PLAY_MS = 700


class SnapshotsView(QWidget):
    message = Signal(str)  # "saved …": the main window shows it in its status bar

    def __init__(self, store: Store, submit: Submit | None = None) -> None:
        super().__init__()
        self.store = store
        self.submit = submit  # reads the run's images off the GUI thread (Tasks.submit); None: inline
        self.run_id: int | None = None  # the run shown
        self.wanted: int | None = None  # the run asked for: a reading of another is dropped
        self.images: list[Artifact] = []  # every image artifact of the run, oldest first
        self.frames: list[Artifact] = []  # those of the chosen kind
        self.frame_wanted: int | None = None  # the artifact the slider asked for: an older reading is dropped
        self.kind = QComboBox()
        self.kind.setToolTip("which of the run's images")
        self.kind.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # "predictions" in full
        self.kind.currentTextChanged.connect(lambda _: self._load_frames(follow=True))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self._show_frame)
        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.play.toggled.connect(self._toggle_play)
        self.step_label = QLabel()
        save = QPushButton("Save PNG…")
        save.clicked.connect(lambda: self.image.save())
        self.image = ZoomImage(placeholder="select a run that saved images")
        self.image.saved.connect(lambda path: self.message.emit(f"Saved the picture to {path}"))
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._advance)

        bar = QHBoxLayout()
        bar.addWidget(self.kind)
        bar.addWidget(self.play)
        bar.addWidget(self.slider, 1)
        bar.addWidget(self.step_label)
        bar.addWidget(save)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.image, 1)

    def show_run(self, run: Run | None) -> None:
        """Show `run`'s images; called on every poll, so new snapshots appear while it trains (the
        slider follows them when it was on the newest one)."""
        self.wanted = run.id if run is not None else None
        if run is None:
            self.run_id = None
            self.images = []
            self.kind.clear()
            self.frames = []
            self.image.set_placeholder("select a run that saved images")
            return
        run_id = run.id

        def read() -> list[Artifact]:
            return self.store.artifacts(run_id, "image")  # one query; kinds and frames come from it

        def show(images: list[Artifact]) -> None:
            if run_id == self.wanted:
                self._show_images(run_id, images)

        read_then(self.submit, read, show, lambda message: self.image.set_placeholder(f"could not read the run's "
                                                                                      f"images: {message}"))

    def _show_images(self, run_id: int, images: list[Artifact]) -> None:
        changed = run_id != self.run_id
        self.run_id, self.images = run_id, images
        names = sorted({a.name for a in self.images})
        current = self.kind.currentText()
        if changed or names != [self.kind.itemText(i) for i in range(self.kind.count())]:
            self.kind.blockSignals(True)
            self.kind.clear()
            self.kind.addItems(names)
            if current in names and not changed:
                self.kind.setCurrentText(current)
            self.kind.blockSignals(False)
        if not names:
            self.frames = []
            self.step_label.clear()
            self.image.set_placeholder(f"run {run_id} has saved no images yet")
            return
        self._load_frames(follow=changed or self.slider.value() == self.slider.maximum())

    def _load_frames(self, follow: bool) -> None:
        frames = [a for a in self.images if a.name == self.kind.currentText()]
        if not frames or [f.id for f in frames] == [f.id for f in self.frames]:
            return
        self.frames = frames
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(frames) - 1))
        if follow:
            self.slider.setValue(len(frames) - 1)
        self.slider.blockSignals(False)
        self._show_frame(self.slider.value())

    def _show_frame(self, index: int) -> None:
        """Show a frame: its file read and decoded off the GUI thread (8-14 ms a picture, at every
        tick of a dragged slider; a run folder on a network share can take longer)."""
        if not self.frames:
            return
        art = self.frames[min(index, len(self.frames) - 1)]
        path = self.store.abspath(art)
        self.step_label.setText(f"step {art.step}  ({index + 1}/{len(self.frames)})")
        self.frame_wanted = art.id

        def show(image: QImage) -> None:
            if art.id != self.frame_wanted:  # the slider has moved on
                return
            if image.isNull():
                self.image.set_placeholder(f"{path} is missing or not an image")
            else:
                self.image.set_pixmap(QPixmap.fromImage(image))

        read_then(self.submit, lambda: QImage(str(path)), show)

    def _toggle_play(self, on: bool) -> None:
        self.play.setText("Pause" if on else "Play")
        if on:
            if self.slider.value() == self.slider.maximum():
                self.slider.setValue(0)
            self.timer.start(PLAY_MS)
        else:
            self.timer.stop()

    def _advance(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.play.setChecked(False)
        else:
            self.slider.setValue(self.slider.value() + 1)
