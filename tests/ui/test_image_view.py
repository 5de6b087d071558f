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


def test_a_tall_grid_is_shown_legibly_and_double_click_shows_it_whole(qtbot) -> None:
    view = ZoomImage()
    qtbot.addWidget(view)
    view.resize(500, 300)
    view.show()
    view.set_pixmap(to_pixmap(np.zeros((900, 460, 3), np.uint8)))  # a DeiT grid: four columns, many rows
    assert 0.9 <= view.zoom <= 1.0  # near its own size (captions legible), not a third of it; it scrolls
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton)
    assert view.zoom * 900 <= view.viewport().height()  # now all of it
    view.whole = False
    view.set_pixmap(to_pixmap(np.zeros((60, 100, 3), np.uint8)), keep_zoom=False)  # small: magnified to fit
    assert view.zoom > 2
