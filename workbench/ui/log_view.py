"""`LogView`: the live tail of a run's worker log (its stdout and stderr)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QFont, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit

MAX_LINES = 5000
FIRST_READ = 64 * 1024  # on opening a log, show only its end


class LogView(QPlainTextEdit):
    def __init__(self) -> None:
        super().__init__()
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QFont("monospace", 9))
        self.setPlaceholderText("select a run to see its worker log")
        self.path: Path | None = None
        self.offset = 0

    def show_log(self, path: Path | None) -> None:
        if path == self.path:
            return
        self.path, self.offset = path, 0
        self.clear()
        if path is not None and path.exists():
            self.offset = max(0, path.stat().st_size - FIRST_READ)
        self.refresh()

    def refresh(self) -> None:
        """Append what the worker wrote since the last read."""
        if self.path is None or not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            new = fh.read()
        if not new:
            return
        self.offset += len(new)
        at_end = self.verticalScrollBar().value() == self.verticalScrollBar().maximum()
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(new.decode("utf-8", errors="replace").replace("\r", "\n"))
        if at_end:
            self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())
