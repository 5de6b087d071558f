"""The desktop app (PySide6 + pyqtgraph). Only this package imports Qt, and nothing here
imports torch: the window shows at once, training happens in worker processes."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from workbench.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("ViT Workbench")
    app.setOrganizationName("ViT Workbench")
    window = MainWindow()
    window.show()
    app.processEvents()  # paint the window before the database and plotting libraries load
    window.load()
    return app.exec()
