"""`NewRunDialog`: point-and-click experiment setup.

Pick a method (each with its one-line description), a preset, the parent runs it needs
(only finished runs of the allowed methods are offered) and edit the generated form. Every
change is validated by the same code the CLI uses; until the config is valid, Start stays
disabled and the reason is shown under the form, with the offending field outlined.
Masked methods get a live mask preview on real images of the chosen dataset, in step with the
form's mask ratio and strategy. The checks read a `Catalog` (datasets, finished runs) taken when
the dialog opened; Start writes the run on a worker thread.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.config import PRESETS, ParentInfo
from workbench.data import check_batch, check_dataset, dataset_names
from workbench.errors import ConfigError, StoreError
from workbench.jobs import create_run
from workbench.jobs.submit import check_init_file
from workbench.methods import METHOD_CONFIGS, config_class, config_from_dict
from workbench.methods.backbone import ViTBackboneConfig
from workbench.methods.start import source_shape
from workbench.store import Run, Store
from workbench.ui import theme
from workbench.ui.catalog import Catalog
from workbench.ui.config_form import ConfigForm
from workbench.ui.mask_preview import MaskPreview
from workbench.ui.start_from import TIP, StartFrom
from workbench.ui.widgets import CreatingDialog

NO_PARENT = "(none)"


def parent_box(finished: list[Run], methods: tuple[str, ...], chosen: int | None = None) -> QComboBox:
    """A picker of finished runs of `methods` (`chosen` preselected, else the newest), first entry "none"."""
    box = QComboBox()
    box.addItem(NO_PARENT, None)
    for run in finished:
        if run.method in methods:
            box.addItem(f"{run.id} · {run.name} ({run.method})", run.id)
    if chosen is not None:
        box.setCurrentIndex(max(0, box.findData(chosen)))
    elif box.count() > 1:
        box.setCurrentIndex(box.count() - 1)
    box.setToolTip(f"a finished {' / '.join(methods)} run")
    return box


class NewRunDialog(CreatingDialog):
    def __init__(self, store: Store, parent: QWidget | None = None, *, method: str = "vit",
                 preset: str | None = "tiny", values: Mapping[str, Any] | None = None,
                 parents: Mapping[str, int] | None = None, name: str = "", catalog: Catalog | None = None,
                 selected: Sequence[int] = ()) -> None:
        """`catalog`: read off the GUI thread by the window; read here when not given (a dialog made
        on its own, as in a test). `selected`: the runs selected in the table, preferred as parents."""
        super().__init__(parent, "Start")
        self.setWindowTitle("New experiment")
        self.store = store
        self.catalog = catalog or Catalog.read(store)
        self.selected = list(selected)
        self.form: ConfigForm | None = None
        self.parent_boxes: dict[str, QComboBox] = {}
        self.preview_images_for: tuple[str, int] | None = None  # (dataset, size) of the preview's images
        self.chosen_preset: str | None = None  # the preset last applied; None: values given (a duplicate)

        self.methods = QListWidget()
        for m in METHOD_CONFIGS:
            item = QListWidgetItem(f"{m}\n{config_class(m).description}")
            item.setData(Qt.ItemDataRole.UserRole, m)
            item.setToolTip(config_class(m).description)
            self.methods.addItem(item)
        self.methods.setWordWrap(True)
        self.methods.setSpacing(3)
        self.methods.setMinimumWidth(230)

        self.name = QLineEdit(name)
        self.name.setPlaceholderText("optional (default: method-id)")
        self.preset = QComboBox()
        self.preset.addItems(["(defaults)", *PRESETS])
        apply_preset = QPushButton("Apply preset")
        apply_preset.clicked.connect(self.apply_preset)
        preset_row = QHBoxLayout()
        preset_row.addWidget(self.preset, 1)
        preset_row.addWidget(apply_preset)
        self.parents_layout = QFormLayout()
        head = QFormLayout()
        head.addRow("Name", self.name)
        head.addRow("Preset", preset_row)
        self.start_from = StartFrom(self.catalog.finished)
        self.start_from.changed.connect(self._apply_inherited)
        head.addRow("Start from", self.start_from)
        self.head = head

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.error = QLabel()
        self.error.setWordWrap(True)
        theme.colour_text(self.error, "error", "font-weight: 600;")

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addLayout(head)
        right_layout.addLayout(self.parents_layout)
        right_layout.addWidget(self.scroll, 1)
        self.mask_preview = MaskPreview()
        self.mask_preview.changed.connect(self._preview_to_form)
        self.mask_box = QGroupBox("Masking preview — exactly what training masks, on images of the dataset")
        QVBoxLayout(self.mask_box).addWidget(self.mask_preview)
        right_layout.addWidget(self.mask_box)
        right_layout.addWidget(self.error)
        right_layout.addWidget(self.buttons)
        splitter = QSplitter()
        splitter.addWidget(self.methods)
        splitter.addWidget(right)
        splitter.setSizes([260, 560])
        QVBoxLayout(self).addWidget(splitter)
        self.resize(900, 720)

        self.methods.currentItemChanged.connect(
            lambda item, _: item and self.set_method(item.data(Qt.ItemDataRole.UserRole),
                                                     preset=self.preset.currentText()))
        self.set_method(method, preset=preset, values=values, parents=parents)
        self.methods.setCurrentRow(list(METHOD_CONFIGS).index(method))

    # ----------------------------------------------------------------- method
    def set_method(self, method: str, *, preset: str | None = "tiny", values: Mapping[str, Any] | None = None,
                   parents: Mapping[str, int] | None = None) -> None:
        if self.form is not None and self.form.cls.method == method:
            return
        cls = config_class(method)
        self.form = ConfigForm(cls, choices={"dataset": dataset_names(self.catalog)})
        self.scroll.setWidget(self.form)
        self._build_parent_pickers(cls, parents or {})
        if values is not None:
            self.form.set_values(values)
        elif preset:
            self.preset.setCurrentText(preset)
            self.apply_preset()
        takes_init = "init" in self.form.widgets
        self.head.setRowVisible(self.start_from, takes_init)
        if takes_init:
            self.form.hide_field("init")
            self.start_from.name_default("the encoder run's weights" if "encoder" in cls.parent_roles
                                         else "random weights")  # a fine-tune's encoder is not random
            self.start_from.set_value(str(self.form.values()["init"]))
        self.form.changed.connect(self.validate)
        self.form.changed.connect(self._form_to_preview)
        self.mask_box.setVisible(cls.mask_fields is not None)
        if cls.mask_fields is not None:
            specs = {spec.name: spec for spec in cls.field_specs()}
            ratio, strategy, _ = cls.mask_fields
            self.mask_preview.set_choices(specs[strategy].choices if strategy else ("random",),
                                          (specs[ratio].min, specs[ratio].max))
        self._apply_inherited()
        self.validate()
        self._form_to_preview()

    def _build_parent_pickers(self, cls: type, chosen: Mapping[str, int]) -> None:
        while self.parents_layout.rowCount():
            self.parents_layout.removeRow(0)
        self.parent_boxes = {}
        finished = {run.id: run for run in self.catalog.finished}
        for role, methods in cls.parent_roles.items():
            picked = [rid for rid in self.selected if rid in finished and finished[rid].method in methods]
            box = parent_box(self.catalog.finished, methods, chosen.get(role, picked[-1] if picked else None))
            box.currentIndexChanged.connect(self._apply_inherited)
            self.parents_layout.addRow(f"{role.capitalize()} run", box)
            self.parent_boxes[role] = box

    def apply_preset(self) -> None:
        name = self.preset.currentText()
        self.chosen_preset = name
        cls = self.form.cls
        values = {s.name: s.default for s in cls.field_specs()}
        if name in PRESETS:
            values.update(cls.preset(name))
        self.form.set_values(values)
        self._apply_inherited()

    def chosen_parents(self) -> dict[str, int]:
        return {role: box.currentData() for role, box in self.parent_boxes.items() if box.currentData() is not None}

    def _apply_inherited(self) -> None:
        """Copy the fields a parent dictates (an encoder's shape) into the form and lock them, and
        those it suggests (a fine-tune's dataset), left editable."""
        locked: dict[str, str] = {}
        for role, run_id in self.chosen_parents().items():
            names, suggested = self.form.cls.inherits.get(role, ()), self.form.cls.suggests.get(role, ())
            if names or suggested:
                parent = self.catalog.get_run(run_id)
                self.form.set_values({k: parent.config[k] for k in (*names, *suggested) if k in parent.config})
                locked.update({k: f"taken from the {role} run {run_id}" for k in names})
        if "init" in self.form.widgets:
            locked.update(self._apply_source())
        self.form.lock(locked)
        self.validate()

    def _apply_source(self) -> dict[str, str]:
        """Put the Start-from choice into `init` and fill in the shape it dictates; the fields to lock."""
        spec = self.start_from.value()
        self.form.set_values({"init": spec})
        try:
            shape = source_shape(spec, self.catalog) if spec and issubclass(self.form.cls, ViTBackboneConfig) else None
        except StoreError:  # a run the form does not offer (archived, not finished): Start's own check says why
            shape = None
        if not shape:
            return {}
        self.form.set_values(shape)  # the patch size too, left editable: a different one is resampled
        return {k: f"taken from the source ({spec}); {TIP}" for k in shape if k != "patch_size"}

    # ----------------------------------------------------------- mask preview
    def _form_to_preview(self) -> None:
        """Follow the form: grid, ratio, strategy; fresh sample images when dataset or size change."""
        if self.form.cls.mask_fields is None:
            return
        try:
            values = self.form.values()
            size, patch = int(values["image_size"]), int(values["patch_size"])
            strategy, ratio, exact = self.form.cls.mask_spec_of(values)
        except (ConfigError, ValueError, KeyError):
            return  # the form shows what is wrong
        if size % patch:
            return
        self.mask_preview.configure(size // patch, patch, exact)
        self.mask_preview.set_values(ratio, strategy)
        wanted = (str(values["dataset"]), size)
        if wanted != self.preview_images_for:
            self.preview_images_for = wanted
            from workbench.data.preview import samples

            self.tasks.submit(lambda: [images[0] for _, images in samples(self.store, wanted[0], 1, wanted[1])][:5],
                              lambda images: self.preview_images_for == wanted and self.mask_preview.set_images(images),
                              lambda error: self.mask_preview.count.setText(f"no preview images: {error}"))

    def _preview_to_form(self) -> None:
        ratio_field, strategy_field, _ = self.form.cls.mask_fields
        ratio, strategy, _ = self.mask_preview.values()
        self.form.set_values({ratio_field: ratio, **({strategy_field: strategy} if strategy_field else {})})

    # ------------------------------------------------------------- validation
    def problem(self) -> ConfigError | None:
        """Why this config cannot start, or None."""
        try:
            cfg = config_from_dict(self.form.cls.method, self.form.values())
            check_init_file(getattr(cfg, "init", ""), isinstance(cfg, ViTBackboneConfig))  # a header: milliseconds
            record = check_dataset(self.catalog, cfg.dataset, self.form.cls.needs_labels)
            check_batch(record, cfg.batch_size, list_files=False)  # the registered count: no listing here
            infos = {}
            for role, run_id in self.chosen_parents().items():
                run = self.catalog.get_run(run_id)
                infos[role] = ParentInfo(run.id, run.method, run.status,
                                         config_from_dict(run.method, run.config, strict=False))
            cfg.check_parents(infos)
        except ConfigError as exc:
            return exc
        return None

    def validate(self) -> None:
        err = self.problem()
        self.form.mark_error(err.field if err else None)
        self.error.setText(f"Cannot start — {err.field.replace('_', ' ')}: {err.reason}" if err else "")
        self.start_button.setEnabled(err is None and not self.starting)

    def start(self) -> None:
        """Create the run on a worker thread (the store checks it again: a parent may have gone
        since the dialog opened); the dialog closes once it is written, or says why not."""
        method, values, parents, name = self.form.cls.method, self.form.values(), self.chosen_parents(), self.name.text()
        self.create(lambda: create_run(self.store, method, overrides=values, parents=parents, name=name),
                    lambda message: self.error.setText(f"Cannot start — {message}"))
