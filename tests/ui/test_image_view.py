"""Pictures shrunk to fit are filtered smoothly (thin strokes of drawn text survive); magnified,
pixels stay crisp squares. A drawn figure sits on the palette in force, its text light in a dark
theme, its pictures untouched."""

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

from workbench import draw
from workbench.ui import theme
from workbench.ui.image_view import ZoomImage, to_pixmap


def _pixels(pixmap: QPixmap) -> np.ndarray:
    image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    bits = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return bits[:, :4 * image.width()].reshape(image.height(), image.width(), 4)


def test_a_drawn_figure_follows_the_theme_and_saves_with_its_paper(qtbot, tmp_path) -> None:
    picture = np.full((4, 4, 3), (200, 30, 30), np.uint8)
    figure = draw.labelled_grid([picture[None]], ["a header"], side=64)  # text over a picture, on paper
    Image.fromarray(figure).save(tmp_path / "figure.png")
    view = ZoomImage()
    qtbot.addWidget(view)
    view.set_pixmap(QPixmap(str(tmp_path / "figure.png")))
    header, inside = slice(0, draw.HEADER_PX), (draw.HEADER_PX + 30, 30)
    try:
        for name in ("light", "dark"):
            theme.apply(name)
            QApplication.processEvents()
            shown = _pixels(view.item.pixmap())[..., :3].astype(int)
            base = QApplication.palette().color(QPalette.ColorRole.Base).getRgb()[:3]
            assert tuple(shown[0, -1]) == base  # the paper is the palette's base colour
            assert tuple(shown[inside]) == (200, 30, 30)  # the picture as it was drawn
            text = shown[header].sum(-1)
            if name == "light":  # the text: dark on white, light on the dark base
                assert text.min() < 3 * 90 and base == (255, 255, 255)
            else:
                assert text.max() > 3 * 180 and max(base) < 60
        saved = view.save(str(tmp_path / "saved.png"))
        again = np.asarray(Image.open(saved).convert("RGBA"))
        opaque = figure[..., 3] == 255  # the figure as drawn (its paper transparent), not as shown
        assert np.array_equal(again[..., 3], figure[..., 3]) and np.array_equal(again[opaque], figure[opaque])
    finally:
        theme.apply("system")


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
