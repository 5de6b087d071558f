"""`ConfigForm`: a form generated from a method's config dataclass.

One widget per field, chosen by its type (check box, combo box for choices, spin box for whole
numbers, a text field that takes `3e-4` for other numbers), its help text and range as the
tooltip, grouped into Data / the method's own / Encoder / Optimisation / Runtime / Cluster (the
`slurm_*` fields show only with executor=slurm). Spin and combo boxes take the wheel only once
focused. The form only collects values:
`workbench.config` validates them, and names the field at fault.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from PySide6.QtCore import Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.config import FieldSpec, TrainConfig
from workbench.errors import ConfigError
from workbench.methods.backbone import ViTBackboneConfig
from workbench.ui.widgets import guard_wheel

DATA = ("dataset", "image_size", "augment", "mixup")
RUNTIME = ("device", "precision", "nproc", "nnodes", "rdzv_endpoint", "sync_bn", "num_workers", "decode",
           "threads", "log_every", "eval_every", "snapshot_every", "checkpoint_every")
CLUSTER = ("executor", "slurm_")  # the executor, and the fields (by prefix) only a Slurm run reads
ERROR_STYLE = "border: 2px solid #d64545; border-radius: 3px;"


def group_of(cls: type[TrainConfig], name: str) -> str:
    if name in DATA:
        return "Data"
    if name in RUNTIME:
        return "Runtime"
    if name.startswith(CLUSTER):
        return "Cluster"
    if name in TrainConfig.__annotations__:
        return "Optimisation"
    if name in ViTBackboneConfig.__annotations__ and issubclass(cls, ViTBackboneConfig):
        return "Encoder"
    return cls.method.upper() if len(cls.method) <= 4 else cls.method.capitalize()


class ConfigForm(QWidget):
    changed = Signal()

    def __init__(self, cls: type[TrainConfig], choices: Mapping[str, list[str]] | None = None) -> None:
        """`choices` offers a list for free-text fields known elsewhere (the registered datasets)."""
        super().__init__()
        self.cls = cls
        self.specs = {spec.name: spec for spec in cls.field_specs()}
        for name, options in (choices or {}).items():
            self.specs[name] = dataclasses.replace(self.specs[name], choices=tuple(options))
        self.widgets: dict[str, QWidget] = {}
        self._tooltips: dict[str, str] = {}
        groups: dict[str, QFormLayout] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        order = ["Data", group_of(cls, "__method__"), "Encoder", "Optimisation", "Runtime", "Cluster"]
        boxes = {}
        for title in dict.fromkeys(order):
            box = QGroupBox(title)
            groups[title] = QFormLayout(box)
            boxes[title] = box
        self.rows: dict[str, QFormLayout] = {}
        for spec in self.specs.values():
            widget = self._widget(spec)
            self.widgets[spec.name] = widget
            self.rows[spec.name] = groups[group_of(cls, spec.name)]
            self.rows[spec.name].addRow(spec.name.replace("_", " "), widget)
        for title, box in boxes.items():
            if groups[title].rowCount():
                layout.addWidget(box)
        layout.addStretch(1)
        if "executor" in self.widgets:
            self.changed.connect(self._show_slurm_fields)
            self._show_slurm_fields()
        guard_wheel(self)  # scrolling the form never edits a field the pointer passes over

    def _widget(self, spec: FieldSpec) -> QWidget:
        allowed = (f"one of: {', '.join(spec.choices)}" if spec.choices else
                   f"range [{spec.min if spec.min is not None else '-inf'}, "
                   f"{spec.max if spec.max is not None else 'inf'}]" if spec.min is not None or spec.max is not None
                   else "")
        tip = spec.help + (f"\n{allowed}" if allowed else "") + f"\ndefault: {spec.default}"
        if spec.type is bool:
            widget: QWidget = QCheckBox()
            widget.toggled.connect(self.changed)
        elif spec.choices:
            widget = QComboBox()
            widget.addItems(spec.choices)
            widget.currentTextChanged.connect(self.changed)
        elif spec.type is int:
            widget = QSpinBox()
            widget.setRange(int(spec.min) if spec.min is not None else -2**31 + 1,
                            int(spec.max) if spec.max is not None else 2**31 - 1)
            if spec.at_min:  # "auto", not a bare -1
                widget.setSpecialValueText(spec.at_min)
            widget.valueChanged.connect(self.changed)
        else:
            widget = QLineEdit()
            if spec.type is float:
                validator = QDoubleValidator()
                validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
                widget.setValidator(validator)
            widget.textChanged.connect(self.changed)
        widget.setToolTip(tip)
        self._tooltips[spec.name] = tip
        self._set(widget, spec, spec.default)
        return widget

    @staticmethod
    def _set(widget: QWidget, spec: FieldSpec, value: Any) -> None:
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(str(value))
        elif isinstance(widget, QSpinBox):
            widget.setValue(int(value))
        else:
            widget.setText(f"{value:g}" if isinstance(value, float) else str(value))

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Set the given fields (others keep their value), emitting `changed` once."""
        self.blockSignals(True)
        try:
            for name, value in values.items():
                if name in self.widgets:
                    self._set(self.widgets[name], self.specs[name], value)
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def values(self) -> dict[str, Any]:
        """Every field's value, typed; unparsable text raises `ConfigError` naming the field."""
        out: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            if isinstance(widget, QCheckBox):
                out[name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                out[name] = widget.currentText()
            elif isinstance(widget, QSpinBox):
                out[name] = widget.value()
            elif self.specs[name].type is float:
                try:
                    out[name] = float(widget.text())
                except ValueError:
                    raise ConfigError(name, f"{widget.text()!r} is not a number") from None
            else:
                out[name] = widget.text()
        return out

    def lock(self, names: Mapping[str, str]) -> None:
        """Disable these fields (name -> why), and enable every other one."""
        for name, widget in self.widgets.items():
            widget.setEnabled(name not in names)
            widget.setToolTip(names.get(name, self._tooltips[name]))

    def _show_slurm_fields(self) -> None:
        """The slurm_* rows only when the run goes to Slurm (their values stay either way)."""
        slurm = self.widgets["executor"].currentText() == "slurm"
        for name, widget in self.widgets.items():
            if name.startswith("slurm_"):
                self.rows[name].setRowVisible(widget, slurm)

    def hide_field(self, name: str) -> None:
        """Keep a field's value but not its row (a dialog edits it with a widget of its own)."""
        self.rows[name].setRowVisible(self.widgets[name], False)

    def mark_error(self, field: str | None) -> None:
        for name, widget in self.widgets.items():
            widget.setStyleSheet(ERROR_STYLE if name == field else "")
