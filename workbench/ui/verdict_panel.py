"""`VerdictPanel`: whether a study bore out its paper, claim by claim: the claim with the
paper's figure, the effect ± SE over seeds, n per side and the verdict, coloured (green held,
red contradicted, grey for within noise, direction only and pending), with the rule beneath
it and each claim's source and reason in its tooltip. The rows are
`workbench.studies.verdict_rows`, as in the CLI and the exported tables."""

from __future__ import annotations

from typing import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.studies import CONTRADICTED, HELD, VERDICT_RULE, Verdict, verdict_rows

COLOURS = {HELD: "#2e7d32", CONTRADICTED: "#b3261e"}
GREY = "#6b6b6b"  # within noise, direction only, pending: nothing decided
SHOWN = 4  # claim, effect ± SE, n, verdict; rule, paper and source go to the tooltip


class VerdictPanel(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.table = QTableWidget(0, SHOWN)
        self.table.setHorizontalHeaderLabels(["claim", "effect ± SE", "n", "verdict"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # wrapped claims
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, SHOWN):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.rule = QLabel(VERDICT_RULE)
        self.rule.setWordWrap(True)
        self.rule.setStyleSheet(f"color: {GREY}; font-size: 11px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Did the paper's claims hold here?</b>"))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.rule)

    def show_verdicts(self, found: Sequence[Verdict]) -> None:
        """One row per claim (a custom sweep has none: the chart hides the panel)."""
        self.table.setRowCount(len(found))
        bold = QFont()
        bold.setBold(True)
        for r, (verdict, row) in enumerate(zip(found, verdict_rows(found))):
            claim, effect, n, word, rule, paper, source = row
            tip = f"{claim}\n{word}: {rule}\npaper: {paper}; {source}"
            shown = claim + (f"\npaper {verdict.claim.paper}" if verdict.claim.paper else "")
            for c, text in enumerate((shown, effect, n, word)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if c == SHOWN - 1:
                    item.setForeground(pg.mkColor(COLOURS.get(verdict.verdict, GREY)))
                    if verdict.verdict in COLOURS:
                        item.setFont(bold)
                self.table.setItem(r, c, item)

