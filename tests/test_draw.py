"""Text drawn into images is legible: a real font at LABEL_PX, words wrapped or cut with an
ellipsis (never mid-glyph), and a confidence never cut off by a long class name."""

import numpy as np
from PIL import ImageFont

from workbench.draw import HEADER_PX, LABEL_PX, fit, fit_name, font, labelled_grid, wrap


def _ink_rows(strip: np.ndarray) -> int:
    """How many pixel rows of a white strip hold dark (text) pixels: the glyphs' height."""
    return int((strip.min(axis=(1, 2)) < 128).sum())


def test_labels_use_a_real_font_at_a_legible_size() -> None:
    assert isinstance(font(), ImageFont.FreeTypeFont) and LABEL_PX >= 12
    images = np.zeros((2, 8, 8, 3), np.uint8)
    grid = labelled_grid([images] * 4, ["original", "masked", "reconstruction", "reconstruction + visible"])
    header = grid[:HEADER_PX]
    assert _ink_rows(header) >= 2 * 9  # two lines of text, each at least 9 px tall (a 10 px font gave ~7)


def test_long_labels_wrap_and_cut_with_an_ellipsis_not_mid_glyph() -> None:
    lines = wrap("reconstruction + visible", 110)
    assert lines == ["reconstruction +", "visible"] or lines == ["reconstruction", "+ visible"]
    assert fit("a very long class name indeed", 60).endswith("…")
    assert font().getlength(fit("a very long class name indeed", 60)) <= 60
    assert fit("short", 200) == "short"
    named = fit_name("triangle_with_a_long_name", "93%", 90)
    assert named.endswith("… 93%") and font().getlength(named) <= 90


def test_a_wrong_prediction_says_the_true_class_under_it() -> None:
    from workbench.draw import prediction_grid

    images = np.full((2, 32, 32, 3), 128, np.uint8)
    grid = prediction_grid(images, [0, 1], [0, 0], [0.9, 0.8], ["circle", "square"], columns=2, side=32)
    second_line = grid[32 + LABEL_PX + 8:32 + 2 * LABEL_PX + 8]  # the row under each tile's prediction
    right, wrong = second_line[:, 2:34, :3], second_line[:, 38:70, :3]
    assert (right == right[0, 0]).all()  # a right one: its frame's colour alone
    assert (wrong.max(axis=2) > 240).any()  # a wrong one: white text ("is: square")
