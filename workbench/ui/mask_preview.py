"""`MaskPreview`: mask ratio (slider and spin box), strategy and seed, with a live preview on
real images of exactly the patches training would mask: it calls the training code's own
masking module (`workbench.data.masking`, numpy only) with the run's exact-count rule.

Used in the new-experiment dialog for masked methods and in the Inspect view, where the same
ratio, strategy and seed go to the reconstruction.
"""

from __future__ import annotations

import random

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.data.masking import STRATEGIES, make_mask
from workbench.draw import MASK_GREY
from workbench.ui.image_view import to_pixmap

DISPLAY = 96  # pixels per previewed image


class MaskPreview(QWidget):
    changed = Signal()  # ratio, strategy or seed changed by the user

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid, self.patch, self.exact = 8, 4, True
        self.images: list[np.ndarray] = []
        self.masks = np.zeros((0, 0), dtype=bool)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(5, 95)
        self.slider.setToolTip("share of patches masked")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.05, 0.95)
        self.spin.setSingleStep(0.05)
        self.spin.setDecimals(2)
        self.strategy = QComboBox()
        self.strategy.addItems(STRATEGIES)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("seed of the masks shown (and of a reconstruction)")
        reseed = QPushButton("New seed")
        reseed.clicked.connect(lambda: self.seed.setValue(random.randrange(2 ** 31)))
        self.picture = QLabel("no images yet")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.picture.setMinimumHeight(DISPLAY + 4)
        self.count = QLabel()

        self.slider.valueChanged.connect(lambda v: self._set_ratio(v / 100))
        self.spin.valueChanged.connect(self._set_ratio)
        self.strategy.currentTextChanged.connect(lambda _: self._user_changed())
        self.seed.valueChanged.connect(lambda _: self._user_changed())

        controls = QHBoxLayout()
        controls.addWidget(QLabel("mask ratio"))
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.spin)
        controls.addWidget(QLabel("strategy"))
        controls.addWidget(self.strategy)
        controls.addWidget(QLabel("seed"))
        controls.addWidget(self.seed)
        controls.addWidget(reseed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.picture)
        layout.addWidget(self.count)
        self.set_values(0.75, "random")

    # ------------------------------------------------------------------ state
    def configure(self, grid: int, patch: int, exact: bool) -> None:
        """The run's patch grid and whether every image gets exactly round(N·ratio) masked patches."""
        changed = (grid, patch, exact) != (self.grid, self.patch, self.exact)
        self.grid, self.patch, self.exact = max(1, grid), max(1, patch), exact
        if changed:
            self.images = [im for im in self.images if im.shape[0] == self.grid * self.patch]
            self.render()

    def set_choices(self, strategies: tuple[str, ...], ratio_range: tuple[float, float]) -> None:
        """The strategies the method offers and the ratios its config allows."""
        current = self.strategy.currentText()
        self.strategy.blockSignals(True)
        self.strategy.clear()
        self.strategy.addItems(strategies)
        self.strategy.setCurrentText(current if current in strategies else strategies[0])
        self.strategy.setEnabled(len(strategies) > 1)
        self.strategy.blockSignals(False)
        for widget, (low, high) in ((self.spin, ratio_range),
                                    (self.slider, (round(ratio_range[0] * 100), round(ratio_range[1] * 100)))):
            widget.blockSignals(True)
            widget.setRange(low, high)
            widget.blockSignals(False)
        self.render()

    def set_values(self, ratio: float, strategy: str | None = None) -> None:
        """Set from outside (the form): no `changed` signal. A ratio the method does not allow is
        said, not drawn at the nearest one it does (which the spin box would show silently)."""
        low, high = self.spin.minimum(), self.spin.maximum()
        if not low <= ratio <= high:
            self.picture.clear()
            self.count.setText(f"no preview: a mask ratio of {ratio:g} is outside {low:g}–{high:g}")
            return
        for widget, value in ((self.spin, ratio), (self.slider, round(ratio * 100))):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        if strategy is not None:
            self.strategy.blockSignals(True)
            self.strategy.setCurrentText(strategy)
            self.strategy.blockSignals(False)
        self.render()

    def set_images(self, images: list[np.ndarray]) -> None:
        """Real images ([S, S, 3] uint8, S = grid · patch) to preview the masks on."""
        self.images = [im for im in images if im.shape[0] == self.grid * self.patch]
        self.render()

    def ratio(self) -> float:
        return round(self.spin.value(), 4)

    def values(self) -> tuple[float, str, int]:
        return self.ratio(), self.strategy.currentText(), self.seed.value()

    def _set_ratio(self, ratio: float) -> None:
        self.set_values(ratio)
        self.changed.emit()

    def _user_changed(self) -> None:
        self.render()
        self.changed.emit()

    # -------------------------------------------------------------- rendering
    def render(self) -> None:
        """Draw the masks of the current ratio, strategy and seed over the images."""
        n = self.grid * self.grid
        count = max(1, len(self.images))
        ratio, strategy, seed = self.values()
        self.masks = make_mask(strategy, count, (self.grid, self.grid), ratio, np.random.default_rng(seed),
                               exact=self.exact)
        masked = self.masks.sum(1)
        spread = f"{masked.min()}" if masked.min() == masked.max() else f"{masked.min()}–{masked.max()}"
        rule = "exactly" if self.exact else "up to"
        self.count.setText(f"{spread} of {n} patches masked, {n - masked.max()}"
                           f"{'' if masked.min() == masked.max() else '+'} visible per image "
                           f"({rule} {round(n * ratio)} by this method's rule)")
        if not self.images:
            return
        tiles = []
        for image, mask in zip(self.images, self.masks):
            pixel = np.kron(mask.reshape(self.grid, self.grid), np.ones((self.patch, self.patch), dtype=bool))
            shown = image.copy()
            shown[pixel] = MASK_GREY
            scale = max(1, DISPLAY // image.shape[0])
            tiles.append(np.kron(shown, np.ones((scale, scale, 1), dtype=np.uint8)))
        gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        self.picture.setPixmap(to_pixmap(np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)))
