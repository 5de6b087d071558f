"""Which store the window has open, and whether it can reach it: the status bar names the store
(a file on this machine, or a server and its host), and a banner says when a server cannot be
reached, while the window retries every few seconds instead of freezing on the network.

The store to open is chosen in File → Store… and kept in the window's settings; `WORKBENCH_DB` /
`WORKBENCH_ARTIFACTS` in the environment win over it. Applied to this process's environment
before the store opens, so the workers and command lines the window starts open the same store.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.ui import theme
from workbench.ui.tasks import read_until

if TYPE_CHECKING:
    from workbench.store import Store
    from workbench.ui.tasks import Tasks

RETRY_S = 5.0
SETTINGS = {"WORKBENCH_DB": "store/url", "WORKBENCH_ARTIFACTS": "store/artifacts"}


def apply_settings(settings: QSettings) -> dict[str, str]:
    """Put the chosen store in this process's environment where the environment names none; the
    variables set."""
    applied = {}
    for variable, key in SETTINGS.items():
        value = str(settings.value(key, "") or "")
        if value and not os.environ.get(variable):
            os.environ[variable] = applied[variable] = value
    return applied


def short_label(store: Store) -> str:
    """The store in a few words for the status bar."""
    if not store.server:
        return f"store: {store.path.name} (this machine)"
    # SQLAlchemy's import waits until the store is open: the window shows before it
    from workbench.store.engine import address

    return f"store: PostgreSQL {store.url.database} on {address(store.url)}"


class Connection:
    """The status-bar label and the banner of the store's reachability, and when to retry."""

    def __init__(self) -> None:
        self.label = QLabel("store: opening…")
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        theme.follow(self.banner, lambda: self.banner.setStyleSheet(theme.banner_style(self.banner, "warning")))
        self.banner.hide()
        self.offline = False
        self._retry_at = 0.0

    def open(self, submit: Callable[..., None], opened: Callable[[Store], None], wanted: Callable[[], bool]) -> None:
        """Open the store on a worker thread (`submit`: the window's `Tasks.submit`; a server may take
        the connect timeout to answer, or never), then `opened(store)` on the GUI thread; until it
        opens, the banner says why and it is tried again every RETRY_S seconds, while `wanted()` (a
        closed window opens nothing)."""
        # SQLAlchemy's import waits until the window shows
        from workbench.store import Store

        read_until(submit, Store, lambda store: opened(store) if wanted() else store.close(), self.lost, RETRY_S,
                   self.label, wanted)

    def opened(self, store: Store) -> None:
        self.back()
        self.label.setText(short_label(store))
        self.label.setToolTip(f"{store.label[0].upper()}{store.label[1:]}\nRun files under {store.root}\n"
                              f"File → Store… chooses another")

    def due(self) -> bool:
        """Whether to read the store now: always while it answers, every RETRY_S seconds while not."""
        return not self.offline or time.monotonic() >= self._retry_at

    def lost(self, message: str) -> None:
        self.offline, self._retry_at = True, time.monotonic() + RETRY_S
        self.banner.setText(f"<b>The store is not available.</b> {message[:1].upper()}{message[1:]}<br>Retrying every {RETRY_S:g} s. Runs "
                            f"keep training meanwhile; their workers hold their metrics until the store answers.")
        self.banner.show()

    def back(self) -> bool:
        """The store answered: hide the banner; True if it had been lost."""
        was, self.offline = self.offline, False
        self.banner.hide()
        return was


class StoreDialog(QDialog):
    """File → Store…: which store the workbench opens (a PostgreSQL URL, or the SQLite file in the
    home) and where run files go; kept for the next start, tried before it is kept."""

    def __init__(self, settings: QSettings, store: Store | None, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Store")
        self.settings, self.tasks = settings, tasks
        self.url = QLineEdit(str(settings.value("store/url", "") or ""))
        self.url.setPlaceholderText("empty: the SQLite file in the workbench home; or postgresql+psycopg://user@host/db")
        self.artifacts = QLineEdit(str(settings.value("store/artifacts", "") or ""))
        self.artifacts.setPlaceholderText("empty: the workbench home; or a shared folder every machine mounts")
        self.result = QLabel()
        self.result.setWordWrap(True)
        current = QLabel(f"Open now: {store.label}; run files under {store.root}." if store else "No store is open.")
        current.setWordWrap(True)
        overridden = [v for v in SETTINGS if os.environ.get(v) and os.environ.get(v) != settings.value(SETTINGS[v])]
        note = QLabel(f"{' and '.join(overridden)} set in the environment win{'s' if len(overridden) == 1 else ''} "
                      f"over these settings." if overridden else "")
        note.setWordWrap(True)
        note.setVisible(bool(overridden))
        browse = QPushButton("Folder…")
        browse.clicked.connect(self.browse)
        test = QPushButton("Test")
        test.setToolTip("connect to the store (making its tables if it is new) and count its runs")
        test.clicked.connect(self.test)
        form = QFormLayout()
        form.addRow("Database", self.url)
        row = QWidget()
        row_layout = QVBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.addWidget(self.artifacts)
        row_layout.addWidget(browse)
        form.addRow("Run files", row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton(test, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (current, note):
            layout.addWidget(widget)
        layout.addLayout(form)
        layout.addWidget(self.result)
        layout.addWidget(buttons)
        self.resize(620, self.sizeHint().height())

    def browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder for run files", self.artifacts.text())
        if chosen:  # cancelled: keep what was there
            self.artifacts.setText(chosen)

    def test(self) -> None:
        """Open the store on a worker thread (a server may take seconds to answer, or never)."""
        url = self.url.text().strip() or None
        self.result.setText("connecting…")

        def probe() -> str:
            from workbench.store import Store

            store = Store(url)
            try:
                return f"{store.label[0].upper()}{store.label[1:]} answers: schema {store.schema_version()}, " \
                       f"{len(store.list_runs())} runs."
            finally:
                store.close()

        self.tasks.submit(probe, self.result.setText, lambda message: self.result.setText(f"Cannot open it: {message}"))

    def save(self) -> None:
        self.settings.setValue("store/url", self.url.text().strip())
        self.settings.setValue("store/artifacts", self.artifacts.text().strip())
        self.accept()
