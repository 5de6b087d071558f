"""Small behaviours every window shares: confirmation of destructive actions, spin and combo
boxes that ignore the wheel unless focused, secondary windows placed on screen, the status
bar's devices, and the toolbar's limit of parallel runs."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

from PySide6.QtCore import QEvent, QObject, QProcess, QSignalBlocker, Qt
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

WHEEL_TAKERS = (QAbstractSpinBox, QComboBox, QAbstractSlider)


def confirm(parent: QWidget, title: str, text: str, yes: str, *, detail: str = "") -> bool:
    """Ask before a destructive action; Cancel is the default button (Enter never destroys)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=parent)
    if detail:
        box.setInformativeText(detail)
    go = box.addButton(yes, QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
    box.exec()
    return box.clickedButton() is go


def warn(parent: QWidget, title: str, text: str) -> QMessageBox:
    """Say why something did not happen, without blocking: callbacks of background work call
    this, and a nested modal event loop there would re-enter the poll."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


class _WheelGuard(QObject):
    """Hands wheel events over unfocused value widgets to the enclosing scroll area's scroll bar,
    so scrolling a form never changes a hyper-parameter by accident."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if event.type() != QEvent.Type.Wheel or not isinstance(obj, QWidget) or obj.hasFocus():
            return False
        area = obj.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if area is not None:  # the page scrolls as if the widget were not there
            QApplication.sendEvent(area.verticalScrollBar(), event)
        return True


_GUARD: _WheelGuard | None = None


def guard_wheel(root: QWidget) -> None:
    """Spin boxes, combo boxes and sliders under `root` take the wheel only once clicked/focused."""
    global _GUARD  # one filter object serves every widget
    if _GUARD is None:
        _GUARD = _WheelGuard()
    for widget in root.findChildren(QWidget):
        if isinstance(widget, WHEEL_TAKERS):
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone never focuses it
            widget.installEventFilter(_GUARD)


def place_on_screen(window: QWidget, anchor: QWidget) -> None:
    """Fit `window` into the available area of `anchor`'s screen, centred over `anchor`."""
    screen = (anchor.screen() if anchor is not None else window.screen()).availableGeometry()
    window.resize(min(window.width(), int(screen.width() * 0.95)), min(window.height(), int(screen.height() * 0.9)))
    frame = window.frameGeometry()
    centre = anchor.frameGeometry().center() if anchor is not None and anchor.isVisible() else screen.center()
    frame.moveCenter(centre)
    x = min(max(frame.left(), screen.left()), screen.right() - frame.width())
    y = min(max(frame.top(), screen.top()), screen.bottom() - frame.height())
    window.move(x, y)


def closes_with_keys(window: QWidget) -> None:
    """Escape and Ctrl+W close a secondary window."""
    for keys in (QKeySequence(Qt.Key.Key_Escape), QKeySequence.StandardKey.Close):
        QShortcut(keys, window, window.close)


def fill_count_matrix(table: QTableWidget, counts: list[list[int]], classes: list[str]) -> None:
    """A square table of counts (rows and columns: `classes`), shaded by count: the diagonal blue,
    the rest red, so where two predictions agree or a class is confused stands out."""
    n = len(classes)
    table.setRowCount(n)
    table.setColumnCount(n)
    table.setHorizontalHeaderLabels([c[:4] for c in classes])
    table.setVerticalHeaderLabels([c[:10] for c in classes])
    peak = max(max(row) for row in counts) or 1
    for r in range(n):
        for c in range(n):
            item = QTableWidgetItem(str(counts[r][c]))
            share = counts[r][c] / peak
            base = (47, 111, 214) if r == c else (214, 69, 69)
            item.setBackground(QColor(*(round(255 - (255 - b) * share) for b in base)))
            item.setForeground(QColor("white" if share > 0.6 else "black"))
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            table.setItem(r, c, item)
    header = table.horizontalHeader()
    header.setMinimumSectionSize(24)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)  # every column fits the view
    for c, name in enumerate(classes):
        table.horizontalHeaderItem(c).setToolTip(name)


class DevicesLabel(QLabel):
    """The status bar's word on this machine's devices, from a separate Python (which may import
    torch; the window never does)."""

    PROBE = ("import json, os, torch; print(json.dumps({'cuda': [torch.cuda.get_device_name(i) for i in "
             "range(torch.cuda.device_count())], 'cpus': os.cpu_count()}))")

    def __init__(self) -> None:
        super().__init__("devices: probing…")
        self.process: QProcess | None = None

    def probe(self) -> None:
        self.process = QProcess(self)
        self.process.finished.connect(self._found)
        self.process.start(sys.executable, ["-c", self.PROBE])

    def _found(self) -> None:
        try:
            found = json.loads(bytes(self.process.readAllStandardOutput()).decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.setText("devices: unknown (torch did not load)")
            return
        gpus = found["cuda"]
        self.setText(f"GPU: {', '.join(gpus)}" if gpus else f"CPU only · {found['cpus']} cores")

    def stop(self) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(1000)


class ParallelRuns(QSpinBox):
    """How many runs train at once on this machine: the store's limit, which every scheduler (the
    window's, the command line's, studies') obeys; read and written on worker threads once
    `attach`ed to a store."""

    def __init__(self) -> None:
        super().__init__()
        self.setRange(1, 32)
        self.setToolTip("how many runs train at once on this machine (the window, the command line and studies "
                        "alike); the rest wait in the queue")
        self.write: Callable[[int], None] | None = None
        self.valueChanged.connect(lambda value: self.write and self.write(value))

    def attach(self, store: Any, submit: Callable[..., None], failed: Callable[[str], None]) -> None:
        """Show `store`'s limit once read; from then on, each change is written to it."""
        submit(store.max_concurrent, self._show, failed)
        self.write = lambda value: submit(lambda: store.set_max_concurrent(value), None, failed)

    def _show(self, value: int) -> None:
        with QSignalBlocker(self):
            self.setValue(value)
