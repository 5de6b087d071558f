"""Pictures shrunk to fit are filtered smoothly (thin strokes of drawn text survive); magnified,
pixels stay crisp squares."""

import numpy as np
from PySide6.QtCore import Qt

from workbench.ui.image_view import ZoomImage, to_pixmap


def test_shrunk_pictures_are_smooth_and_magnified_ones_crisp(qtbot) -> None:
    view = ZoomImage()
    qtbot.addWidget(view)
    view.resize(300, 200)
    view.show()
    view.set_pixmap(to_pixmap(np.zeros((400, 900, 3), np.uint8)))  # larger than the view: fitted, shrunk
    assert view.zoom < 1 and view.item.transformationMode() == Qt.TransformationMode.SmoothTransformation
    view.zoom_by(8)
    assert view.zoom > 1 and view.item.transformationMode() == Qt.TransformationMode.FastTransformation
