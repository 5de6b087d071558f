"""Help ▸ About: what this is, the versions a bug report needs, and where the README is.
Versions are read from the installed packages' metadata, so torch is never imported here."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Callable

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from workbench import paths

PACKAGES = ("vit-workbench", "torch", "torchvision", "timm", "pyqtgraph", "SQLAlchemy")


def versions() -> dict[str, str]:
    """Package -> installed version ("not installed" when absent), plus Python and Qt."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return {**found, "Python": platform.python_version(), "PySide6": pyside_version, "Qt": qVersion()}


def readme_url() -> QUrl | None:
    """The README beside the package (a checkout or an editable install), else None."""
    local = Path(__file__).resolve().parents[2] / "README.md"
    return QUrl.fromLocalFile(str(local)) if local.exists() else None


def open_readme(otherwise: Callable[[], object]) -> None:
    """Open the README in the desktop's viewer; `otherwise` (the About box, which says where it is)
    when there is none beside the package or nothing opens it."""
    url = readme_url()
    if url is None or not QDesktopServices.openUrl(url):
        otherwise()


def about_text() -> str:
    rows = "".join(f"<tr><td>{k}</td><td>&nbsp;{v}</td></tr>" for k, v in versions().items())
    url = readme_url()
    readme = (f"<a href='{url.toString()}'>README</a>" if url else
              "The README (<code>pip show -v vit-workbench</code> prints it)")
    return (f"<h3>ViT Workbench</h3><p>Set up, run, watch, compare and export vision-transformer experiments "
            f"(ViT, masked patch prediction, DeiT, BEiT, MAE, fine-tuning, Swin).</p><table>{rows}</table>"
            f"<p>Data folder: {paths.home()}<br>{readme}: the two set-up commands, your own images, export, "
            f"headless use, several GPUs.</p>")


def show_about(parent: QWidget) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, "About ViT Workbench", about_text(), parent=parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    box.show()
    return box
