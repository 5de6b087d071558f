"""Small behaviours every window shares: confirmation of destructive actions, spin and combo
boxes that ignore the wheel unless focused, secondary windows placed on screen, the status
bar's devices, the toolbar's limit of parallel runs, and the forms that create on a worker thread."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

from PySide6.QtCore import QEvent, QObject, QProcess, QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QColor, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from workbench.ui.tasks import Tasks, read_until

WHEEL_TAKERS = (QAbstractSpinBox, QComboBox, QAbstractSlider)
NAME_WIDTH = 200  # px: longer names elide (their tooltip has them whole), so the columns after stay in view


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


def fit_columns(table: QTableWidget, names: tuple[int, ...] = (), sortable: bool = False) -> None:
    """Fit a table's columns to their contents, the `names` columns no wider than NAME_WIDTH: a long
    study or run name pushed the columns after it (progress) out of a narrow table. `sortable`:
    sorting is turned on first, so that each header's sort arrow counts in its width (a header
    fitted before was cut under its arrow)."""
    if sortable:
        table.setSortingEnabled(True)
    table.resizeColumnsToContents()
    for col in names:
        table.setColumnWidth(col, min(table.columnWidth(col), NAME_WIDTH))


def with_frame(view: QAbstractItemView, content: int) -> int:
    """The width a view needs to show `content` px of its items whole: with its scroll bar and frame."""
    return content + view.verticalScrollBar().sizeHint().width() + 2 * view.frameWidth()


def fill_count_matrix(table: QTableWidget, counts: list[list[int]], classes: list[str]) -> None:
    """A square table of counts (rows and columns: `classes`), shaded by count from the palette's
    background (light or dark): the diagonal blue, the rest red, so where two predictions agree or
    a class is confused stands out. Columns are numbered as the rows are (names cut to four letters
    told 'green circle' from 'green square' no more); every header's tooltip names its class."""
    n = len(classes)
    table.setRowCount(n)
    table.setColumnCount(n)
    table.setHorizontalHeaderLabels([str(i) for i in range(n)])
    table.setVerticalHeaderLabels([f"{i} {c[:14]}" for i, c in enumerate(classes)])
    peak = max(max(row) for row in counts) or 1
    paper, ink = table.palette().color(QPalette.ColorRole.Base), table.palette().color(QPalette.ColorRole.Text)
    for r in range(n):
        for c in range(n):
            item = QTableWidgetItem(str(counts[r][c]))
            item.setToolTip(f"{classes[r]} (row) × {classes[c]} (column): {counts[r][c]}")  # elided when narrow
            share = counts[r][c] / peak
            base = (47, 111, 214) if r == c else (214, 69, 69)
            item.setBackground(QColor(*(round(p + (b - p) * share) for p, b in zip(paper.getRgb()[:3], base))))
            item.setForeground(QColor("white") if share > 0.6 else ink)
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            table.setItem(r, c, item)
    header = table.horizontalHeader()
    header.setMinimumSectionSize(24)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)  # every column fits the view
    for c, name in enumerate(classes):
        table.horizontalHeaderItem(c).setToolTip(f"{c} {name}")
        table.verticalHeaderItem(c).setToolTip(f"{c} {name}")


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

    RETRY_MS = 5000  # a first read that failed is tried again after this
    FOLLOW_MS = 5000  # how often the store's value is read again (`workbench limit`, another window)

    def __init__(self) -> None:
        super().__init__()
        self.setRange(1, 32)
        self.setKeyboardTracking(False)  # typing 12 is one change, not 1 then 12
        self.setEnabled(False)  # until the store's value is read
        self.setToolTip("how many runs train at once on this machine (the window, the command line and studies "
                        "alike); the rest wait in the queue")
        self.store: Any = None
        self.wanted: int | None = None  # a value not yet written
        self.writing = False
        self.reading = False  # a follow-up reading is on its way: a slow store gets one at a time
        self.changes = 0  # the user's changes so far: a reading older than the last one is dropped
        self.valueChanged.connect(self._changed)
        self.follow = QTimer(self)
        self.follow.setInterval(self.FOLLOW_MS)
        self.follow.timeout.connect(self._read_again)

    def attach(self, store: Any, submit: Callable[..., None], failed: Callable[[str], None]) -> None:
        """Show `store`'s limit once read (tried again every `RETRY_MS` until it is); from then on,
        each change is written to it."""
        self.store, self.submit, self.failed = store, submit, failed
        read_until(submit, store.max_concurrent, self._show, failed, self.RETRY_MS / 1000, self)

    def _show(self, value: int) -> None:
        with QSignalBlocker(self):
            self.setValue(value)
        self.setEnabled(True)
        self.follow.start()

    def _read_again(self) -> None:
        """Follow a limit set elsewhere, unless the user is changing it here."""
        if self.reading or self.writing or self.wanted is not None or self.hasFocus():
            return
        changes, self.reading = self.changes, True

        def read(value: int) -> None:
            self.reading = False
            if changes == self.changes and not self.hasFocus():  # not one made before the user's change
                self._show(value)

        def unread(_: str) -> None:  # unreachable: the window's banner says so
            self.reading = False

        self.submit(self.store.max_concurrent, read, unread)

    def _changed(self, value: int) -> None:
        self.changes += 1
        self.wanted = value
        if self.store is not None and not self.writing:
            self._write()

    def _write(self) -> None:
        """One write at a time, of the latest value: writes on a pool could land out of order."""
        value, self.wanted, self.writing = self.wanted, None, True

        def written(_: object = None) -> None:
            self.writing = False
            if self.wanted is not None:
                self._write()

        self.submit(lambda: self.store.set_max_concurrent(value), written,
                    lambda message: (self.failed(message), written()))


class CreatingDialog(QDialog):
    """A form whose Start creates something in the store on a worker thread (`create`): it closes
    once that is written, with `created` set, or says why not and can be changed and started
    again. Meanwhile it cannot be cancelled: the write goes on, and a run would be queued (and
    trained) after its Cancel."""

    def __init__(self, parent: QWidget | None, start_label: str) -> None:
        super().__init__(parent)
        self.tasks = Tasks(self)
        self.created: Any = None
        self.starting = False  # Start clicked, not yet written
        self.start_label = start_label
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.addButton(start_label, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.start)  # the form's own: it checks, then calls `create`
        self.buttons.rejected.connect(self.reject)

    def create(self, write: Callable[[], Any], refused: Callable[[str], None]) -> None:
        """`write()` on a worker thread; the dialog accepted with its result, or `refused(why)`. Once:
        a Start while one is written is no second write."""
        if self.starting:
            return
        self._starting(True)

        def done(result: Any) -> None:
            self.created = result
            self._starting(False)
            self.accept()

        def failed(message: str) -> None:
            self._starting(False)
            refused(message)

        self.tasks.submit(write, done, failed)

    def _starting(self, starting: bool) -> None:
        self.starting = starting
        self.start_button.setText("Starting…" if starting else self.start_label)
        self.start_button.setEnabled(not starting)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setEnabled(not starting)

    def reject(self) -> None:
        """Cancel, Esc or closing the window: not while Start's write is under way."""
        if not self.starting:
            super().reject()
