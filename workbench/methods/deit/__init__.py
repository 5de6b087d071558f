"""DeiT: the `deit` method's config (fields, presets, checks), free of torch so that
forms and the command line read it; the model and training step are in `method.py`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from workbench.config import ParentInfo, grad_clip_param, param
from workbench.errors import ConfigError
from workbench.methods.backbone import DEIT_RECIPE, ViTBackboneConfig


@dataclass(kw_only=True)
class Config(ViTBackboneConfig):
    loss: ClassVar[str] = "the class and distillation heads' losses"
    position: ClassVar[int] = 5
    description: ClassVar[str] = ("DeiT: a ViT with a distillation token whose head learns from a teacher "
                                  "(hard labels or soft, tempered distributions).")
    parent_roles: ClassVar[dict[str, tuple[str, ...]]] = {"teacher": ("cnn", "vit", "deit", "swin")}
    inherits: ClassVar[dict[str, tuple[str, ...]]] = {"teacher": ("dataset",)}  # its classes are the student's
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(label_smoothing=0.0),
        "small": {},
        # DeiT-B: DEIT_RECIPE, hard distillation (a RegNetY-16GF teacher, the `teacher` parent)
        "paper": dict(DEIT_RECIPE, distill="hard"),
    }

    grad_clip: float = grad_clip_param(0.0, "DeiT's reference")
    distill: str = param("hard", "hard: the teacher's argmax as label (DeiT's best); soft: its tempered "
                                 "distribution (KL); none: both heads learn the true labels (the baseline)",
                         choices=("hard", "soft", "none"))
    alpha: float = param(0.5, "weight of the distillation loss (DeiT: 0.5 for hard, 0.1 for soft)", min=0.0, max=1.0)
    tau: float = param(3.0, "softmax temperature of soft distillation (DeiT: 3)", min=0.1, max=20.0)
    teacher_file: str = param("", "a teacher weights file (.safetensors or .pt) instead of a teacher run")
    teacher_arch: str = param("", "the timm architecture of teacher_file (e.g. regnety_002)")
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy on true labels", min=0.0, max=0.5)

    def check(self) -> None:
        super().check()
        if self.teacher_file and not self.teacher_arch:
            raise ConfigError("teacher_arch", "a teacher file needs its timm architecture name (e.g. regnety_002)")
        if self.teacher_file and not Path(self.teacher_file).expanduser().is_file():
            raise ConfigError("teacher_file", f"no file at {self.teacher_file}")

    def required_parents(self) -> dict[str, tuple[str, ...]]:
        if self.distill == "none" or self.teacher_file:
            return {}
        return dict(self.parent_roles)

    def check_parents(self, parents: Mapping[str, ParentInfo]) -> None:
        super().check_parents(parents)
        teacher = parents.get("teacher")
        if teacher is not None and self.teacher_file:
            raise ConfigError("teacher_file", "give either a teacher run or a teacher file, not both")
