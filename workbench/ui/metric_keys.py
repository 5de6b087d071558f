"""`MetricKeys`: the metrics the curves view can plot, each with a tick. The user's own ticks are
kept by metric name (and saved with the window's state): a run selected before its rows arrive
empties the list for a moment, and runs of another method list other metrics, yet a metric the
user ticked or unticked comes back as they left it; the others follow the runs' defaults."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from workbench.ui.widgets import with_frame

MIN_WIDTH, MAX_WIDTH = 150, 240  # px; between them, as wide as the longest name


class MetricKeys(QListWidget):
    ticks_changed = Signal()  # by the user: the plots follow

    def __init__(self) -> None:
        super().__init__()
        self.chosen: dict[str, bool] = {}  # metric -> ticked, as the user last set it
        self.setMinimumWidth(MIN_WIDTH)
        self.setMaximumWidth(MAX_WIDTH)
        self.itemChanged.connect(self._ticked)

    def _ticked(self, item: QListWidgetItem) -> None:
        self.chosen[item.text()] = item.checkState() == Qt.CheckState.Checked
        self.ticks_changed.emit()

    def show_keys(self, keys: list[str], default: set[str]) -> None:
        """List these metrics, each ticked as the user left it, else if it is in `default`."""
        if keys == self.names():
            return
        self.blockSignals(True)  # not the user's ticks
        self.clear()
        for key in keys:
            item = QListWidgetItem(key)
            item.setToolTip(key)  # whole, where the list is narrower than the name
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = self.chosen.get(key, key in default)
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self.addItem(item)
        self.blockSignals(False)
        wanted = with_frame(self, self.sizeHintForColumn(0))  # a longer name than the minimum width fits
        self.setMinimumWidth(max(MIN_WIDTH, min(MAX_WIDTH, wanted)))

    def names(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())]

    def ticked(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count()) if self.item(i).checkState() == Qt.CheckState.Checked]
