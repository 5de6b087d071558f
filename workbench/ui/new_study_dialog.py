"""`NewStudyDialog`: start a study from a built-in template (the papers' ablations, at a tiny or
a paper budget) or a custom sweep of one method over one or two fields, optionally followed
by a linear probe and/or a fine-tune of each encoder.

Every edit re-plans the study (the same `plan` the CLI uses, no writes, against the `Catalog`
read as the dialog opened): the dialog shows how many runs it will make, or the first problem,
naming the stage and the field. Nothing is created until the plan is valid; Start writes the
study on a worker thread.
"""

from __future__ import annotations

import html
import shlex
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.config import PRESETS
from workbench.errors import WorkbenchError
from workbench.methods import METHOD_CONFIGS, config_class
from workbench.store import Store
from workbench.studies import (
    BUDGETS,
    FOLLOW_UPS,
    TEMPLATES,
    StudySpec,
    common_overrides,
    create_study,
    kept_values,
    parse_sweep,
    plan,
    sweep_spec,
    template_spec,
)
from workbench.ui import theme
from workbench.ui.catalog import Catalog
from workbench.ui.new_run_dialog import parent_box
from workbench.ui.widgets import CreatingDialog

NO_FIELD = "(none)"
DEFAULTS = "method defaults"


class NewStudyDialog(CreatingDialog):
    def __init__(self, store: Store, parent: QWidget | None = None, *, parallel: int = 2,
                 catalog: Catalog | None = None) -> None:
        """`catalog`: read off the GUI thread by the window; read here when not given."""
        super().__init__(parent, "Start study")
        self.setWindowTitle("New study")
        self.resize(780, 680)
        self.store = store
        self.catalog = catalog or Catalog.read(store)

        # ---- from a template
        self.template = QComboBox()
        for name, t in TEMPLATES.items():
            self.template.addItem(t.title, name)
        self.budget = QComboBox()
        self.budget.addItems(list(BUDGETS))
        self.budget.setToolTip("\n".join(f"{b}: {about}" for b, (_, about) in BUDGETS.items()))
        self.seeds = QLineEdit()
        self.seeds.setPlaceholderText("one run per point (seed 0); e.g. 0 1 2 repeats each point with three seeds")
        self.seeds.setToolTip("tiny budgets are noisy: repeats tell a trend from luck (the table adds mean ± sd); "
                              "shared stages (a teacher, the ViT from scratch) run once per seed too")
        self.about = QLabel()
        self.about.setWordWrap(True)
        self.trend = QLabel()
        self.trend.setWordWrap(True)
        theme.colour_text(self.trend, "muted")
        template_page = QWidget()
        t_form = QFormLayout(template_page)
        t_form.addRow("Template", self.template)
        t_form.addRow("Budget", self.budget)
        t_form.addRow("Runs", self.about)
        t_form.addRow("Paper", self.trend)

        # ---- custom sweep
        self.method = QComboBox()
        self.method.addItems(sorted(METHOD_CONFIGS))
        self.preset = QComboBox()
        self.preset.addItems([*PRESETS, DEFAULTS])
        self.fields = [QComboBox(), QComboBox()]
        self.values = [QLineEdit(), QLineEdit()]
        for box in self.values:
            box.setPlaceholderText("0.25, 0.5, 0.75   or a range   1e-4:1e-2:3:log")
        self.follow = {kind: QCheckBox({"probe": "linear probe", "finetune": "fine-tune"}[kind])
                       for kind in FOLLOW_UPS}
        self.parent_boxes: dict[str, QComboBox] = {}
        self.parents_form = QFormLayout()
        custom_page = QWidget()
        c_form = QFormLayout(custom_page)
        c_form.addRow("Method", self.method)
        c_form.addRow("Preset", self.preset)
        for i in range(2):
            row = QHBoxLayout()
            row.addWidget(self.fields[i], 1)
            row.addWidget(self.values[i], 2)
            c_form.addRow(f"Sweep field {i + 1}", row)
        follow_row = QHBoxLayout()
        for box in self.follow.values():
            follow_row.addWidget(box)
        follow_row.addStretch(1)
        c_form.addRow("Then, each encoder", follow_row)
        c_form.addRow(self.parents_form)

        self.tabs = QTabWidget()
        self.tabs.addTab(template_page, "From a template")
        self.tabs.addTab(custom_page, "Custom sweep")

        # ---- both
        self.name = QLineEdit()
        self.name.setPlaceholderText("default: TEMPLATE-ID (sweep-ID for a custom sweep)")
        self.common = QLineEdit()
        self.common.setPlaceholderText("dataset=pets seed=1 device=cuda   (set in every stage that has the field)")
        self.parallel = QSpinBox()
        self.parallel.setRange(1, 64)
        self.parallel.setValue(parallel)
        self.parallel.setToolTip("runs of this study training at once")
        both = QFormLayout()
        both.addRow("Name", self.name)
        both.addRow("Seeds", self.seeds)
        both.addRow("Every stage", self.common)
        both.addRow("Parallel runs", self.parallel)
        self.preview = QListWidget()
        self.preview.setToolTip("the runs this study will make, in order; later stages start as their parents finish")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addLayout(both)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self.method.currentTextChanged.connect(self._method_changed)
        for widget in (self.template, self.budget, self.preset, *self.fields, self.tabs):
            signal = widget.currentChanged if widget is self.tabs else widget.currentIndexChanged
            signal.connect(self.validate)
        for widget in (*self.values, self.common, self.seeds):
            widget.textChanged.connect(self.validate)
        for box in self.follow.values():
            box.toggled.connect(self.validate)
        self.parallel.valueChanged.connect(self.validate)  # the plan says how many at a time
        self.method.setCurrentText("mae")
        self._method_changed()

    # --------------------------------------------------------------- custom
    def _method_changed(self) -> None:
        cls = config_class(self.method.currentText())
        names = [s.name for s in cls.field_specs()]
        for i, box in enumerate(self.fields):
            box.blockSignals(True)
            box.clear()
            box.addItems(names if i == 0 else [NO_FIELD, *names])
            box.blockSignals(False)
        self.fields[0].setCurrentText((cls.mask_fields or ("lr",))[0])
        encoder = self.method.currentText() in config_class("finetune").parent_roles["encoder"]
        for box in self.follow.values():
            box.setEnabled(encoder)
            box.setChecked(encoder and box is self.follow["probe"])
        while self.parents_form.rowCount():
            self.parents_form.removeRow(0)
        self.parent_boxes = {}
        for role, methods in cls.parent_roles.items():
            box = parent_box(self.catalog.finished, methods)
            box.currentIndexChanged.connect(self.validate)
            self.parents_form.addRow(f"{role.capitalize()} run", box)
            self.parent_boxes[role] = box
        self.validate()

    # ----------------------------------------------------------------- plan
    def spec(self) -> StudySpec:
        """The study the form describes; raises `WorkbenchError` naming what is wrong."""
        common = self._common()
        try:
            seeds = [int(v) for v in self.seeds.text().replace(",", " ").split()]
        except ValueError:
            raise WorkbenchError(f"seeds: {self.seeds.text()!r} is not a list of whole numbers (0 1 2)") from None
        if self.tabs.currentIndex() == 0:
            return template_spec(self.template.currentData(), self.budget.currentText(), common=common,
                                 parallel=self.parallel.value(), study_name=self.name.text(), seeds=seeds)
        method = self.method.currentText()
        axes = []
        for box, values in zip(self.fields, self.values):
            if box.currentText() != NO_FIELD:
                axes.append(parse_sweep(method, f"{box.currentText()}={values.text()}"))
        preset = None if self.preset.currentText() == DEFAULTS else self.preset.currentText()
        parents = {role: box.currentData() for role, box in self.parent_boxes.items() if box.currentData() is not None}
        return sweep_spec(method, axes, budget=preset, parents=parents, common=common,
                          follow_ups=tuple(k for k, box in self.follow.items() if box.isChecked()),
                          parallel=self.parallel.value(), study_name=self.name.text(), seeds=seeds)

    def _common(self) -> dict[str, Any]:
        try:
            items = shlex.split(self.common.text())
        except ValueError as exc:
            raise WorkbenchError(f"every stage: {exc}") from None
        return common_overrides(items)

    def validate(self) -> list[dict[str, Any]] | None:
        """Re-plan; show the run count or the first problem. The planned members, or None."""
        template = TEMPLATES[self.template.currentData()]
        self.trend.setText(template.paper_trend)
        self.about.setText(template.description)
        try:
            spec = self.spec()
            members = plan(self.catalog, spec)  # the catalog answers the store reads it makes
        except WorkbenchError as exc:
            self.status.setText(f"<span style='color:{theme.text_colour(self, 'error')}'>{exc}</span>")
            self.start_button.setEnabled(False)
            self.preview.clear()
            return None
        self.preview.clear()
        for m in members:
            after = ", ".join(f"{role} from " + (members[ref["member"]]["name"] if "member" in ref else f"run {ref['run']}")
                              for role, ref in m["parents"].items())
            self.preview.addItem(f"{m['name']}  —  {m['method']}, {m['config']['epochs']} epochs"
                                 + (f", {m['config']['max_steps']} steps at most" if m["config"]["max_steps"] else "")
                                 + (f"; {after}" if after else ""))
        stages: dict[str, int] = {}
        for m in members:
            stages[f"{m['stage']} ({m['method']})"] = stages.get(f"{m['stage']} ({m['method']})", 0) + 1
        summary = " + ".join(f"{n} × {stage}" for stage, n in stages.items())
        kept = kept_values(spec)  # "Every stage" values a stage's recipe overrules: said, not silently dropped
        self.status.setText(f"<b>{len(members)} runs</b>: {summary}; {spec.parallel} at a time. "
                            f"{spec.description if self.tabs.currentIndex() == 1 else ''}"
                            + (f"<br>Note: {html.escape('; '.join(kept))}." if kept else ""))
        self.start_button.setEnabled(not self.starting)
        return members

    def start(self) -> None:
        """Create the study on a worker thread (planned again against the store); the dialog closes
        once it is written, or says why not."""
        if self.validate() is None:
            return
        spec = self.spec()
        self.create(lambda: create_study(self.store, spec), lambda message: self.status.setText(
            f"<span style='color:{theme.text_colour(self, 'error')}'>{message}</span>"))
