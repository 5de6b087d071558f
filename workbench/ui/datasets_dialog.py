"""`DatasetsDialog`: the datasets runs can use: browse them (classes, counts, image sizes), see
thumbnails with their class names and the files that were skipped and why, register a folder
or CIFAR download, or forget one. Reading the records, scanning and thumbnails run off the GUI
thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.data import BUILTIN_DATASETS, KIND_HELP, KINDS, validation_text
from workbench.store import Store
from workbench.ui import theme
from workbench.ui.image_view import to_pixmap
from workbench.ui.tasks import Tasks
from workbench.ui.widgets import confirm


class DatasetsDialog(QDialog):
    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Datasets")
        self.store = store
        self.tasks = Tasks(self)
        self.records: dict[str, Any] = {}  # the registered datasets, by name, as last read
        self.reads = 0  # reads of them asked for
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(["name", "kind", "classes", "images", "validation", "skipped", "path"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._show_selected)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.thumbnails = QLabel("select a dataset")
        self.thumbnails.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()
        scroll.setWidget(self.thumbnails)
        scroll.setWidgetResizable(True)
        self.problems = QListWidget()

        self.name = QLineEdit()
        self.name.setPlaceholderText("a name for --set dataset=NAME")
        self.kind = QComboBox()
        for kind in KINDS:
            self.kind.addItem(kind, kind)
            self.kind.setItemData(self.kind.count() - 1, KIND_HELP[kind], Qt.ItemDataRole.ToolTipRole)
        self.path = QLineEdit()
        self.val_path = QLineEdit()
        self.val_path.setPlaceholderText("optional: a separate validation folder")
        self.val_path.textChanged.connect(self._val_folder_changed)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.01, 0.89)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(0.1)
        self.val_fraction.setToolTip("share of each class held out for validation (when no validation folder is "
                                     "given)")
        self.add_button = QPushButton("Register")
        self.add_button.clicked.connect(self.register)
        self.remove_button = QPushButton("Forget selected")
        self.remove_button.clicked.connect(self.remove_selected)
        self.remove_button.setEnabled(False)  # until a registered dataset is selected
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # room for a three-line message kept: one arriving must not move the form under the pointer
        self.status.setMinimumHeight(self.status.fontMetrics().lineSpacing() * 3)

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        form.addRow("Folder", self._with_browse(self.path))
        form.addRow("Validation", self._with_browse(self.val_path))
        form.addRow("Held out", self.val_fraction)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(QLabel("<b>Add a dataset</b>"))
        left_layout.addLayout(form)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.status)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.summary)
        right_layout.addWidget(scroll, 3)
        right_layout.addWidget(QLabel("Skipped files"))
        right_layout.addWidget(self.problems, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([480, 620])
        QVBoxLayout(self).addWidget(splitter)
        self.resize(1150, 720)
        self._show_records([], None)  # the built-in ones at once
        self.refresh()

    def _val_folder_changed(self, text: str) -> None:
        """A validation folder replaces the held-out share: the share cannot be set then."""
        given = bool(text.strip())
        self.val_fraction.setEnabled(not given)
        self.val_fraction.setToolTip("not used: the validation folder is the validation split" if given else
                                     "share of each class held out for validation (when no validation folder is "
                                     "given)")

    def _with_browse(self, edit: QLineEdit) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: edit.setText(QFileDialog.getExistingDirectory(self, "Folder", edit.text())
                                                    or edit.text()))
        layout.addWidget(browse)
        return row

    def refresh(self, select: str | None = None) -> None:
        """Read the registered datasets on a worker thread, then show them (and select `select`),
        unless a later read was asked for meanwhile (reads may end out of order)."""
        self.reads += 1
        read = self.reads
        self.tasks.submit(self.store.list_datasets,
                          lambda records: read == self.reads and self._show_records(records, select),
                          lambda message: self.status.setText(f"could not read the datasets: {message}"))

    def _show_records(self, records: list[Any], select: str | None) -> None:
        self.records = {d.name: d for d in records}
        rows = [(name, "built in", "10", "6000", "1000", "0", desc) for name, desc in BUILTIN_DATASETS.items()]
        for d in records:
            rows.append((d.name, d.kind, str(len(d.stats.get("classes", []))) if d.kind != "unlabeled" else "-",
                         str(d.stats.get("images") or "?"), validation_text(d), str(d.stats.get("skipped", 0)), d.path))
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).text() == select:
                self.table.selectRow(r)

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    def _show_selected(self) -> None:
        from workbench.data.preview import thumbnail_grid

        name = self.selected_name()
        record = self.records.get(name) if name is not None else None
        self.remove_button.setEnabled(record is not None)  # a built-in dataset cannot be forgotten
        if name is None:
            return
        self.problems.clear()
        if record is None:
            self.summary.setText(f"<b>{name}</b> — {BUILTIN_DATASETS.get(name, '')}")
        else:
            stats = record.stats
            classes = ", ".join(f"{c} ({n})" for c, n in zip(stats.get("classes", []), stats.get("per_class", []))) \
                or ", ".join(stats.get("classes", [])) or "no labels"
            sizes = (f" · width min/median/max {stats['width']} · height {stats['height']}" if stats.get("width")
                     else "")
            val = validation_text(record, long=True)
            self.summary.setText(f"<b>{name}</b> ({record.kind}) at {record.path}<br>{classes}<br>"
                                 f"{stats.get('images') or '?'} images{sizes}<br>validation: {val}")
            for warning in stats.get("warnings", []):
                self.problems.addItem(f"warning: {warning}")
            for path, why in stats.get("problems", []):
                self.problems.addItem(f"{path} — {why}")
            for path, why in stats.get("val_problems", []):
                self.problems.addItem(f"validation: {path} — {why}")
        self.thumbnails.setText("loading thumbnails…")
        self.tasks.submit(lambda: thumbnail_grid(self.store, name),
                          lambda grid, n=name: self.selected_name() == n and self.thumbnails.setPixmap(to_pixmap(grid)),
                          lambda msg: self.thumbnails.setText(f"no preview: {msg}"))

    def register(self) -> None:
        from workbench.data import registry

        name, kind, path = self.name.text().strip(), self.kind.currentData(), self.path.text().strip()
        val = self.val_path.text().strip()
        fraction = self.val_fraction.value()
        self.status.setText(f"scanning {path}… (every image is opened once)")
        self.add_button.setEnabled(False)

        def done(record) -> None:
            self.add_button.setEnabled(True)
            self.table.setFocus()  # not the next button, Forget, which Enter would then press
            self.status.setText(f"registered {record.name}: {record.stats.get('images') or '?'} images, "
                                f"{record.stats.get('skipped', 0)} skipped")
            self.refresh(select=record.name)

        def failed(message: str) -> None:
            self.add_button.setEnabled(True)
            self.status.setText(f"<span style='color:{theme.text_colour(self, 'error')}'>Not registered: {message}</span>")

        self.tasks.submit(lambda: registry.register(self.store, name, kind, Path(path),
                                                    val_path=Path(val) if val else None, val_fraction=fraction),
                          done, failed)

    def remove_selected(self) -> None:
        name = self.selected_name()
        if not name or name in BUILTIN_DATASETS:
            return
        if confirm(self, "Forget dataset", f"Forget the dataset {name}?", "Forget",
                   detail="Its files stay where they are and its decoded cache is deleted; runs that used it keep "
                          "their results, but cannot be resumed or repeated until it is registered again under the "
                          "same name."):
            from workbench.data import registry

            def forgotten(dropped: int) -> None:
                self.refresh()
                self.status.setText(f"forgot {name} ({dropped} decoded cache(s) deleted)")

            self.tasks.submit(lambda: registry.forget(self.store, name), forgotten,
                              lambda message: self.status.setText(f"could not forget {name}: {message}"))
