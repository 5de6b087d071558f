"""`RunDetailsView`: everything about one run: status and failure, config (copyable as JSON
or as the CLI command that recreates it), lineage, artifacts, and editable notes and tags.

What its run row holds shows at once (`show_run`); its lineage and artifacts take queries, read
off the GUI thread (`read_links`, through `submit`) and shown when they arrive (`show_links`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench import fmt
from workbench.store import Run, Store
from workbench.ui import theme
from workbench.ui.tasks import Submit, read_then


@dataclass(frozen=True)
class Links:
    """A run's lineage (rich-text links) and artifacts (kind, name, step, path), as read."""

    run_id: int
    lineage: list[str]
    artifacts: list[tuple[str, str, str, str]]


def read_links(store: Store, run_id: int) -> Links:
    """The queries behind Details' lineage and artifacts (for a worker thread: no widgets)."""
    links = [f"{role}: <a href='run:{p.id}'>{p.id} · {p.name}</a>" for role, p in store.parents(run_id).items()]
    links += [f"{role} of <a href='run:{c.id}'>{c.id} · {c.name}</a>" for role, c in store.children(run_id)]
    artifacts = store.artifacts(run_id)
    links += [f"started from {a.meta['source']}" + (f" (sha256 {a.meta['sha256'][:12]}…)" if a.meta['sha256'] else "")
              for a in artifacts if a.kind == "init"]
    return Links(run_id, links, [(a.kind, a.name, str(a.step), str(store.abspath(a))) for a in artifacts])


class RunDetailsView(QWidget):
    open_run = Signal(int)  # a lineage link was clicked
    message = Signal(str)  # "copied", "saved": the main window shows it in its status bar

    def __init__(self, store: Store, submit: Submit | None = None) -> None:
        super().__init__()
        self.store = store
        self.submit = submit  # reads lineage and artifacts off the GUI thread (Tasks.submit); None: inline
        self.run: Run | None = None
        self.filled: tuple[int, str, str] | None = None  # the run whose notes and tags the editor was filled with
        self.artifact_rows: list[tuple[str, str, str, str]] = []
        self.title = QLabel("select a run")
        self.title.setStyleSheet("font-size: 14px; font-weight: 600;")
        self.title.setWordWrap(True)  # a long run name must not widen the window
        self.timing = QLabel()  # the first start, the training time, and each segment of a resumed run
        self.timing.setWordWrap(True)
        self.environment = QLabel()  # the software and machine its worker last started on
        self.environment.setWordWrap(True)
        self.environment.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warnings = QLabel()  # what the user should know though the run went on
        self.warnings.setWordWrap(True)
        theme.colour_text(self.warnings, "warning")
        self.lineage = QLabel()
        self.lineage.setWordWrap(True)
        self.lineage.linkActivated.connect(lambda link: self.open_run.emit(int(link.split(":")[1])))
        self.config = QPlainTextEdit()
        self.config.setReadOnly(True)
        copy_json = QPushButton("Copy JSON")
        copy_json.clicked.connect(lambda: self._copy(self.config.toPlainText(), "the config as JSON"))
        copy_cli = QPushButton("Copy CLI command")
        copy_cli.clicked.connect(self.copy_cli_command)
        self.artifacts = QTableWidget(0, 4)
        self.artifacts.setHorizontalHeaderLabels(["kind", "name", "step", "path"])
        self.artifacts.horizontalHeader().setStretchLastSection(True)
        self.artifacts.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.artifacts.verticalHeader().hide()
        self.artifacts.cellDoubleClicked.connect(
            lambda row, _: QDesktopServices.openUrl(QUrl.fromLocalFile(self.artifacts.item(row, 3).text())))
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("notes about this run")
        self.notes.setMaximumHeight(90)
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("tags, separated by spaces")
        self.save_button = QPushButton("Save notes and tags")
        self.save_button.clicked.connect(self.save_notes)

        buttons = QHBoxLayout()
        buttons.addWidget(copy_json)
        buttons.addWidget(copy_cli)
        buttons.addStretch(1)
        notes = QFormLayout()
        notes.addRow("Notes", self.notes)
        notes.addRow("Tags", self.tags)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.timing)
        layout.addWidget(self.environment)
        layout.addWidget(self.warnings)
        layout.addWidget(self.lineage)
        layout.addWidget(QLabel("Config"))
        layout.addWidget(self.config, 2)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("Artifacts (double-click opens)"))
        layout.addWidget(self.artifacts, 1)
        layout.addLayout(notes)
        layout.addWidget(self.save_button)
        self._editable(False)

    def show_run(self, run: Run | None, links: bool = True) -> None:
        """Show `run`; the notes editor is only refilled when another run is chosen. `links`: read its
        lineage and artifacts too (a query: not at each poll while another tab hides them)."""
        changed = run is None or self.run is None or run.id != self.run.id
        if changed:
            self.keep_typed()  # notes typed for the run shown before are saved, not dropped
        self.run = run
        self._editable(run is not None)
        if run is None:  # nothing typed now can go to the run shown before (moved to the Trash, say)
            self.filled = None
            self.notes.clear()
            self.tags.clear()
            self.title.setText("select a run")
            self.timing.clear()
            self.environment.hide()
            self.warnings.hide()
            self.config.clear()
            self._show_artifacts([])
            self.lineage.clear()
            return
        self.title.setText(f"{run.name} · {run.method} · {run.status} · {run.progress:.0%} "
                           f"({run.step}/{run.total_steps} steps) · {run.device or 'no device yet'}"
                           + (f" · {fmt.job(run)}" if run.job_id else ""))
        segments = fmt.segments(run)
        self.timing.setText(f"started {fmt.clock(run.started_at)} · trained {fmt.duration(run)}"
                            + (f" · {segments}" if segments else "") if run.started_at else "not started yet")
        self.environment.setText(f"Environment — {fmt.environment(run)}" if run.environment else "")
        self.environment.setVisible(bool(run.environment))
        self.warnings.setText("\n".join(f"Warning: {w}" for w in run.warnings))
        self.warnings.setVisible(bool(run.warnings))
        if changed:
            self.config.setPlainText(json.dumps(run.config, indent=2))
            self.notes.setPlainText(run.notes)
            self.tags.setText(run.tags)
            self.filled = (run.id, run.notes, run.tags)
            self.lineage.setText("Lineage — …")  # until its reading arrives
            self._show_artifacts([])
        if links:
            run_id = run.id
            read_then(self.submit, lambda: read_links(self.store, run_id), self.show_links)

    def _editable(self, on: bool) -> None:
        for widget in (self.notes, self.tags, self.save_button):
            widget.setEnabled(on)

    def show_links(self, links: Links) -> None:
        """The lineage and artifacts of the run shown, as `read_links` read them (those of a run no
        longer shown are dropped)."""
        if self.run is None or links.run_id != self.run.id:
            return
        self.lineage.setText("Lineage — " + (" · ".join(links.lineage) if links.lineage else "no parents or children"))
        self._show_artifacts(links.artifacts)

    def _show_artifacts(self, rows: list[tuple[str, str, str, str]]) -> None:
        if rows != self.artifact_rows:  # shown at every poll: rebuilt only when they changed
            self.artifact_rows = rows
            self.artifacts.setRowCount(len(rows))
            for r, row in enumerate(rows):
                for col, value in enumerate(row):
                    self.artifacts.setItem(r, col, QTableWidgetItem(value))

    def cli_command(self, run: Run | None = None) -> str:
        """The command that recreates `run` (the one shown): it reads the run's parents, a query."""
        run = run or self.run
        if run is None:
            return ""
        parents = {role: p.id for role, p in self.store.parents(run.id).items()}
        return fmt.cli_command(run.method, run.config, parents)

    def copy_cli_command(self) -> None:
        """`cli_command` of the run shown now, read on a worker thread, then copied to the clipboard."""
        run = self.run
        if run is not None:
            read_then(self.submit, lambda: self.cli_command(run),
                      lambda text: self._copy(text, "the command that recreates this run", run),
                      lambda message: self.message.emit(f"Could not read run {run.id}'s parents: {message}"))

    def _copy(self, text: str, what: str, run: Run | None = None) -> None:
        run = run or self.run
        if run is not None:
            QGuiApplication.clipboard().setText(text)
            self.message.emit(f"Copied {what} (run {run.id}) to the clipboard")

    def typed(self) -> dict[str, str]:
        """The notes and tags edited in the editor since it was filled (or saved), by field."""
        if self.filled is None:
            return {}
        now = {"notes": self.notes.toPlainText(), "tags": self.tags.text().strip()}
        return {k: v for k, v, was in zip(now, now.values(), self.filled[1:]) if v != was}

    def keep_typed(self) -> None:
        """Save what was typed and not saved (before another run is shown, or the window closes)."""
        if self.typed():
            self.save_notes()

    def save_notes(self) -> None:
        """Write the edited notes and tags (only those: a tag added elsewhere meanwhile stays) on a
        worker thread; the status bar says when they are saved."""
        if self.filled is None:
            return
        run_id, edits = self.filled[0], self.typed() or {"notes": self.notes.toPlainText(),
                                                            "tags": self.tags.text().strip()}
        self.filled = (run_id, edits.get("notes", self.filled[1]), edits.get("tags", self.filled[2]))
        read_then(self.submit, lambda: self.store.update_run(run_id, **edits),
                  lambda _: self.message.emit(f"Saved the notes and tags of run {run_id}"),
                  lambda message: self.message.emit(f"Could not save the notes of run {run_id}: {message}; typed: "
                                                    f"{edits}"))
