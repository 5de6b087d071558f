"""`ZoomImage`: an image that zooms with the wheel (or +/-), fits on double-click, scrolls when
larger than the view and saves as PNG; every inspection view shows its pictures with it.
Magnified, pixels stay crisp squares (patch boundaries visible); shrunk to fit, it is filtered
smoothly, or the one-pixel strokes of the text drawn into it vanish ("reconstruct on")."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from workbench.ui import theme


def to_pixmap(image: np.ndarray) -> QPixmap:
    """[H, W, 3] uint8, or a drawn figure [H, W, 4] on the palette in force (`theme.figure`) ->
    QPixmap (copied, so the array may go)."""
    image = np.ascontiguousarray(theme.figure(image) if image.shape[-1] == 4 else image)
    h, w = image.shape[:2]
    return QPixmap.fromImage(QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


class ZoomImage(QGraphicsView):
    saved = Signal(str)  # the path a picture was saved to

    def __init__(self, parent: QWidget | None = None, placeholder: str = "") -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # crisp patches when zoomed
        self.scene().addItem(self.item)
        self.text = self.scene().addText(placeholder)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setToolTip("wheel or +/- to zoom, drag to pan; double-click: the whole picture / its width")
        self.zoom = 1.0
        self.whole = False  # fitted: the whole picture, or (legible text in tall grids) its width
        self.fitted = False  # the zoom is fit()'s (re-fitted when the view resizes), not the user's
        self.original: QPixmap | None = None  # as given (a figure keeps its paper): what `save` writes
        theme.follow(self, lambda: self.item.setPixmap(self._themed(self.original)))

    def set_pixmap(self, pixmap: QPixmap | None, *, keep_zoom: bool = True) -> None:
        """Show `pixmap` (None: the placeholder). The first picture is fitted to the view; later
        ones keep the zoom, so stepping through snapshots does not jump."""
        first = self.item.pixmap().isNull()
        self.original = pixmap
        self.item.setPixmap(self._themed(pixmap))
        self.text.setVisible(pixmap is None)
        self.scene().setSceneRect(self.item.boundingRect() if pixmap else self.text.boundingRect())
        if pixmap is not None and (first or not keep_zoom):
            self.fit()

    @staticmethod
    def _themed(pixmap: QPixmap | None) -> QPixmap:
        """A figure (a picture with an alpha channel) on the palette in force; others as they are."""
        if pixmap is None or pixmap.isNull() or not pixmap.hasAlphaChannel():
            return pixmap or QPixmap()
        image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGBA8888)
        pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
        return to_pixmap(pixels[:, :4 * image.width()].reshape(image.height(), image.width(), 4))

    def set_placeholder(self, text: str) -> None:
        self.text.setPlainText(text)
        self.set_pixmap(None)

    def fit(self) -> None:
        """Show the whole picture when it fits at its own size or larger. A picture that would
        have to shrink (a tall grid of captioned images) is shown at most at its own size and
        no wider than the view, and scrolls: its captions stay legible. `whole` (double-click)
        fits all of it regardless."""
        if self.item.pixmap().isNull():
            return
        self.resetTransform()
        rect = self.item.boundingRect()
        width, height = self.viewport().width() / max(rect.width(), 1), self.viewport().height() / max(rect.height(), 1)
        scale = min(width, height)
        if scale < 1 and not self.whole:
            bar = self.verticalScrollBar().sizeHint().width()  # the vertical bar it will need takes room
            scale = min(1.0, (self.viewport().width() - bar) / max(rect.width(), 1))
        self.zoom = max(0.1, min(scale * 0.98, 8.0))
        self.scale(self.zoom, self.zoom)
        self._filter()
        self.verticalScrollBar().setValue(self.verticalScrollBar().minimum())  # a tall picture starts at its top
        self.fitted = True

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.fitted:  # the layout settled or the window was resized: fit again, unless the user zoomed
            self.fit()

    def zoom_by(self, factor: float) -> None:
        factor = max(0.1, min(self.zoom * factor, 16.0)) / self.zoom
        self.zoom *= factor
        self.scale(factor, factor)
        self._filter()
        self.fitted = False

    def _filter(self) -> None:
        smooth = self.zoom < 1.0
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation if smooth
                                        else Qt.TransformationMode.FastTransformation)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        self.zoom_by(1.25 if event.angleDelta().y() > 0 else 0.8)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif event.key() == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        else:
            super().keyPressEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        self.whole = not self.whole
        self.fit()

    def save(self, path: str | None = None) -> str | None:
        """Save the picture as given (at its own resolution; a figure with its transparent paper) as
        PNG; asks for a file when `path` is None."""
        if self.original is None or self.original.isNull():
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save image", "image.png", "PNG image (*.png)")
            if not path:
                return None
        if not self.original.save(path, "PNG"):
            return None
        self.saved.emit(path)
        return path
