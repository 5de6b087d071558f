"""Light and dark: View ▸ Theme (system, light or dark, remembered) sets the application's palette,
and the plots, banners and drawn images follow whichever palette is in force (`follow`), so none
keeps a white background in a dark window."""

from __future__ import annotations

import weakref
from typing import Callable

import numpy as np
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

THEMES = ("system", "light", "dark")
# the series' colours (runs, groups, study rows), the same in every theme
# one colour per run or group: ten, then ten of Kelly's colours of maximum contrast (a colour repeated
# from the 21st run on); no grey, which is UNLISTED's (#e040e0: the mid-light colour farthest from
# the others and from grey, in CIELAB)
PALETTE = ("#2f7fd8", "#d64545", "#2e9d57", "#d9862b", "#8d5bd6", "#1aa3a3", "#c2487f", "#e040e0", "#b8a21a",
           "#3b3b9e", "#882d17", "#8db600", "#e68fac", "#654522", "#a1caf1", "#f99379", "#604e97", "#c2b280",
           "#e25822", "#0067a5")
UNLISTED = "#7a7a7a"  # a run whose series is not loaded (yet)
_SYSTEM: dict[str, object] = {}  # the style and palette the application started with


def apply(name: str) -> None:
    """Make `name` the application's theme: the system's own look, or Fusion's light or dark palette."""
    app = QApplication.instance()
    if not _SYSTEM:
        _SYSTEM.update(style=app.style().name(), palette=QPalette(app.palette()))
    if name == "system":
        app.setStyle(str(_SYSTEM["style"]))
        app.setPalette(_SYSTEM["palette"])
    else:
        app.setStyle("Fusion")
        app.setPalette(_dark() if name == "dark" else app.style().standardPalette())
    for follower in list(_FOLLOWERS):  # hidden widgets are not always sent the palette's change
        follower.run()


def _dark() -> QPalette:
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, colour in ((roles.Window, "#2b2b2b"), (roles.WindowText, "#e6e6e6"), (roles.Base, "#1e1e1e"),
                         (roles.AlternateBase, "#2f2f2f"), (roles.ToolTipBase, "#3a3a3a"),
                         (roles.ToolTipText, "#e6e6e6"), (roles.Text, "#e6e6e6"), (roles.Button, "#353535"),
                         (roles.ButtonText, "#e6e6e6"), (roles.BrightText, "#ff6b6b"), (roles.Link, "#6cb4ff"),
                         (roles.Highlight, "#2f7fd8"), (roles.HighlightedText, "#ffffff"),
                         (roles.PlaceholderText, "#8a8a8a")):
        palette.setColor(role, QColor(colour))
    for role in (roles.Text, roles.ButtonText, roles.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    return palette


def is_dark(widget: QWidget) -> bool:
    """Whether the palette in force is dark (the application's: a banner's own style sheet colours
    its palette)."""
    return QApplication.palette(widget).color(QPalette.ColorRole.Window).lightness() < 128


def background(widget: QWidget) -> QColor:
    """What a plot or a drawn image sits on: the palette's base colour (white in a light theme)."""
    return widget.palette().color(QPalette.ColorRole.Base)


def foreground(widget: QWidget) -> QColor:
    """What text and axes on a plot are drawn in: the palette's text colour."""
    return widget.palette().color(QPalette.ColorRole.WindowText)


TEXT = {  # kind -> (on a light palette, on a dark one): coloured text on the window itself
    "error": ("#b3261e", "#ff8a80"), "warning": ("#9a5b00", "#ffc870"), "note": ("#6b5a00", "#e0cf7a"),
    "ok": ("#2e7d32", "#8fd694"), "muted": ("#666666", "#a0a0a0"),
}


def text_colour(widget: QWidget, kind: str) -> str:
    """A `TEXT` colour legible on the palette in force (for a rich-text span set now)."""
    light, dark = TEXT[kind]
    return dark if is_dark(widget) else light


def colour_text(label: QWidget, kind: str, style: str = "") -> None:
    """Give `label` a `TEXT` colour (plus `style`) that follows the theme."""
    follow(label, lambda: label.setStyleSheet(f"color: {text_colour(label, kind)}; {style}"))


def figure(image: np.ndarray) -> np.ndarray:
    """A drawn figure [H, W, 4] (`workbench.draw`: pictures opaque, text and paper not) as the
    palette in force shows it, [H, W, 3]: laid on the palette's base colour, and in a dark theme
    its text's lightness inverted with its hue kept (dark grey reads light grey, green stays green)."""
    rgb = image[..., :3].astype(np.float32)
    alpha = image[..., 3:].astype(np.float32) / 255
    palette = QApplication.palette()
    if palette.color(QPalette.ColorRole.Window).lightness() < 128:
        drawn = image[..., 3] < 255
        rgb[drawn] += (255 - rgb[drawn].max(-1) - rgb[drawn].min(-1))[:, None]
    base = np.array(palette.color(QPalette.ColorRole.Base).getRgb()[:3], np.float32)
    return (rgb * alpha + base * (1 - alpha)).round().clip(0, 255).astype(np.uint8)


BANNERS = {  # kind -> (light background, light text, dark background, dark text)
    "error": ("#fdecea", "#8c1d18", "#4a1f1c", "#ffb4ab"),
    "warning": ("#fff4e5", "#663c00", "#47351a", "#ffd8a8"),
    "note": ("#f6f6f2", "#444444", "#34342f", "#dcdcd4"),
}


def banner_style(widget: QWidget, kind: str) -> str:
    """A banner's style sheet in the palette in force (a light tint, or a dark one)."""
    light_bg, light_fg, dark_bg, dark_fg = BANNERS[kind]
    bg, fg = (dark_bg, dark_fg) if is_dark(widget) else (light_bg, light_fg)
    return f"background: {bg}; color: {fg}; padding: 8px; border-radius: 4px;"


class _Follower(QObject):
    def __init__(self, widget: QWidget, update: Callable[[], None]) -> None:
        super().__init__(widget)
        self.update = update
        self.busy = False  # a style sheet set by `update` changes the palette again: not followed

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.run()
        return False

    def run(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            self.update()
        except RuntimeError:  # its widget is gone (deleted on the C++ side)
            _FOLLOWERS.discard(self)
        finally:
            self.busy = False


def follow(widget: QWidget, update: Callable[[], None]) -> None:
    """Call `update` now and whenever `widget`'s palette changes (a theme switch)."""
    follower = _Follower(widget, update)
    widget.installEventFilter(follower)
    _FOLLOWERS.add(follower)
    follower.run()


_FOLLOWERS: weakref.WeakSet[_Follower] = weakref.WeakSet()
