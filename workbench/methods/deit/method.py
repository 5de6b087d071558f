"""DeiT (Touvron et al.): distillation through attention.

A distillation token joins [CLS] (token order [cls, dist, patches]) and its output feeds a
second head. Loss = (1 − α)·CE(cls head, y) + α·distill(dist head, teacher), where distill is
CE to the teacher's argmax (`hard`), or KL between tempered distributions scaled by τ²
(`soft`); `none` trains both heads on the true labels: the same student without a teacher.
The teacher (a finished run or a weights file) stays frozen in eval mode and sees the same
augmented batch. At inference the two heads' softmax outputs are averaged.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from timm.models.deit import VisionTransformerDistilled
from torch import Tensor, nn

from workbench.draw import (
    BAD,
    GOOD,
    LABEL_PX,
    fit_name,
    font,
    ink,
    paper,
    tile,
    upscale,
)
from workbench.errors import WorkbenchError
from workbench.methods.base import (
    Batch,
    ClassifierMethod,
    hard_labels,
    load_parent_module,
    mean_over,
    param_groups,
)
from workbench.methods.deit import Config
from workbench.methods.diagnostics import Diagnostics
from workbench.methods.vit.method import build_vit

REPORT_IMAGES = 16


class DistillationModel(nn.Module):
    """The student, and the frozen teacher it learns from (kept in eval mode, never trained)."""

    def __init__(self, student: VisionTransformerDistilled, teacher: nn.Module | None, teacher_size: int) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.teacher_size = teacher_size  # the image side the teacher was trained at
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()

    def train(self, mode: bool = True) -> "DistillationModel":
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def heads(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(cls head logits, dist head logits), both [B, classes]."""
        tokens = self.student.forward_features(images)
        return self.student.head(tokens[:, 0]), self.student.head_dist(tokens[:, 1])

    @torch.no_grad()
    def teacher_logits(self, images: Tensor) -> Tensor:
        if self.teacher_size != images.shape[-1]:
            images = F.interpolate(images, size=(self.teacher_size,) * 2, mode="bilinear", align_corners=False)
        return self.teacher(images).float()

    def forward(self, images: Tensor) -> Tensor:
        """The mean of both heads' logits [B, classes]: the student's prediction, as DeiT's
        reference code and timm's VisionTransformerDistilled (the exported model) compute it."""
        cls, dist = self.heads(images)
        return average_logits(cls, dist)


def average_logits(cls: Tensor, dist: Tensor) -> Tensor:
    return (cls.float() + dist.float()) / 2


def distillation_loss(kind: str, dist: Tensor, teacher: Tensor | None, labels: Tensor, tau: float) -> Tensor:
    """The dist head's loss: hard (CE to teacher argmax), soft (τ²-scaled KL), none (CE to labels)."""
    if kind == "hard":
        return F.cross_entropy(dist, teacher.argmax(-1))
    if kind == "soft":
        return F.kl_div(F.log_softmax(dist / tau, -1), F.log_softmax(teacher / tau, -1), reduction="sum",
                        log_target=True) * tau * tau / dist.numel()
    return F.cross_entropy(dist, labels)


def load_teacher_file(path: str, arch: str, num_classes: int) -> nn.Module:
    """A timm model from a .safetensors or .pt weights file; never unpickles code."""
    import timm

    if not timm.is_model(arch):
        raise WorkbenchError(f"teacher_arch {arch!r} is not a timm architecture; `timm.list_models()` names them")
    file = Path(path).expanduser()
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(file)
    else:
        state = torch.load(file, map_location="cpu", weights_only=True)
        state = state.get("model", state) if isinstance(state, dict) else state
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WorkbenchError(f"the teacher file {file} does not fit a {arch} with {num_classes} classes: "
                             f"{str(exc).splitlines()[0]}") from None
    return model


class DeitMethod(ClassifierMethod):
    cfg: Config

    def build(self) -> DistillationModel:
        self.label_smoothing = self.cfg.label_smoothing
        student = build_vit(self.cfg, self.data.num_classes, model_class=VisionTransformerDistilled)
        teacher, size = None, self.cfg.image_size
        if self.cfg.teacher_file:
            teacher = load_teacher_file(self.cfg.teacher_file, self.cfg.teacher_arch, self.data.num_classes)
        elif "teacher" in self.parents:
            parent = self.parents["teacher"]
            teacher, size = load_parent_module(parent, self.data), parent.config.image_size
        if self.cfg.distill != "none" and teacher is None:
            raise WorkbenchError(f"{self.cfg.distill} distillation needs a teacher run or teacher_file")
        return DistillationModel(student, teacher, size)

    def param_groups(self, model: DistillationModel) -> list[dict]:
        return param_groups(model.student, self.cfg.weight_decay)

    def step(self, model: DistillationModel, batch: Batch) -> dict[str, Tensor]:
        images, labels = batch
        cls, dist = model.heads(images)
        teacher = model.teacher_logits(images) if self.cfg.distill != "none" else None
        smoothing = self.label_smoothing if model.training else 0.0
        loss_cls = F.cross_entropy(cls, labels, label_smoothing=smoothing)
        loss_dist = distillation_loss(self.cfg.distill, dist, teacher, labels, self.cfg.tau)
        alpha = self.cfg.alpha
        return {"loss": (1 - alpha) * loss_cls + alpha * loss_dist, "loss_cls": loss_cls, "loss_dist": loss_dist,
                "top1": (average_logits(cls, dist).argmax(-1) == hard_labels(labels)).float().mean()}

    @torch.no_grad()
    def predictions(self, model: DistillationModel, batches: Iterable[Batch]) -> dict[str, Tensor]:
        """Over the whole validation set: labels, and probabilities of cls, dist, avg (the softmax of
        the heads' mean logits) and teacher."""
        out: dict[str, list[Tensor]] = {"labels": [], "cls": [], "dist": [], "avg": [], "teacher": []}
        for images, labels in batches:
            cls, dist = model.heads(images)
            out["labels"].append(labels.cpu())
            out["cls"].append(cls.float().softmax(-1).cpu())
            out["dist"].append(dist.float().softmax(-1).cpu())
            out["avg"].append(average_logits(cls, dist).softmax(-1).cpu())
            if model.teacher is not None:
                out["teacher"].append(model.teacher_logits(images).softmax(-1).cpu())
        return {k: torch.cat(v) for k, v in out.items() if v}

    @torch.no_grad()
    def evaluate(self, model: DistillationModel, batches: Iterable[Batch]) -> dict[str, float]:
        """The student's loss and top-1 (the heads' mean logits), each head's top-1, and with a
        teacher its top-1 and the student's agreement with it; on the device (`report` keeps the
        per-image predictions)."""

        def metrics(batch: Batch) -> dict[str, Tensor]:
            images, labels = batch
            labels = hard_labels(labels)
            cls, dist = model.heads(images)
            avg = average_logits(cls, dist)
            guess = avg.argmax(-1)
            # an image's loss is capped at -log(1e-12), as DeiT's evaluation has always reported it
            log_probs = F.log_softmax(avg, -1).clamp_min(math.log(1e-12))
            out = {"loss": F.nll_loss(log_probs, labels), "top1": (guess == labels).float().mean(),
                   "top1_cls": (cls.argmax(-1) == labels).float().mean(),
                   "top1_dist": (dist.argmax(-1) == labels).float().mean()}
            if model.teacher is not None:
                teacher = model.teacher_logits(images).argmax(-1)
                out["teacher_top1"] = (teacher == labels).float().mean()
                out["agreement"] = (guess == teacher).float().mean()
            return out

        return mean_over(batches, metrics)

    def report(self, model: DistillationModel, batches: Iterable[Batch]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Teacher vs student on the validation set, for the comparison view: top-1 of every head,
        agreement, per-class accuracy, a teacher x student prediction matrix, and an image grid
        of validation images with both predictions, disagreements first."""
        kept: list[Tensor] = []

        def keep_images(stream: Iterable[Batch]) -> Iterable[Batch]:
            for images, labels in stream:
                if sum(len(k) for k in kept) < 4 * REPORT_IMAGES:
                    kept.append(images)
                yield images, labels

        p = self.predictions(model, keep_images(batches))
        y, student = p["labels"], p["avg"].argmax(-1)
        classes = self.data.classes
        n = len(classes)
        diagnostics = Diagnostics(classes, self.to_uint8)
        diagnostics.add(p["avg"].clamp_min(1e-12).log(), y)  # counts only: the grid below shows the images
        data: dict[str, Any] = {
            "diagnostics": diagnostics.result()[0],
            "classes": classes,
            "top1": {head: _top1(p[head], y) for head in ("cls", "dist", "avg")},
            "per_class": {"student": _per_class(student, y, n)},
            "distill": self.cfg.distill,
        }
        teacher = p["teacher"].argmax(-1) if "teacher" in p else None
        if teacher is not None:
            data["top1"]["teacher"] = _top1(p["teacher"], y)
            data["agreement"] = float((student == teacher).float().mean())
            data["per_class"]["teacher"] = _per_class(teacher, y, n)
            data["agreement_matrix"] = torch.bincount(teacher * n + student, minlength=n * n).view(n, n).tolist()
        images = torch.cat(kept)
        order = list(range(len(images)))
        if teacher is not None:  # disagreements first
            order.sort(key=lambda i: bool(student[i] == teacher[i]))
        order = order[:REPORT_IMAGES]
        pixels = self.to_uint8(images[order])
        tiles = [_comparison_tile(pixels[k], classes, int(y[i]), p["avg"][i],
                                  p["teacher"][i] if teacher is not None else None)
                 for k, i in enumerate(order)]
        return data, {"teacher_vs_student": tile(tiles, 4)}


    def exportable(self, model: DistillationModel) -> nn.Module:
        return model.student


def _top1(probs: Tensor, labels: Tensor) -> float:
    return float((probs.argmax(-1) == labels).float().mean())


def _per_class(pred: Tensor, labels: Tensor, n: int) -> list[float]:
    hits = torch.bincount(labels[pred == labels], minlength=n).float()
    return (hits / torch.bincount(labels, minlength=n).clamp_min(1)).tolist()


def _comparison_tile(image: np.ndarray, classes: list[str], label: int, student: Tensor,
                     teacher: Tensor | None, side: int = 112) -> np.ndarray:
    """An image, the student's (S) and teacher's (T) prediction, each green if right, red if wrong."""
    from PIL import Image, ImageDraw

    line = LABEL_PX + 4
    canvas = paper(side + 4, side + 6 + 2 * line)
    canvas.paste(Image.fromarray(upscale(image, side)), (2, 2))
    draw = ImageDraw.Draw(canvas)
    for row, (tag, probs) in enumerate([("S", student), ("T", teacher)]):
        if probs is None:
            continue
        conf, pred = probs.max(-1)
        draw.text((3, side + 4 + line * row), fit_name(f"{tag}: {classes[int(pred)]}", f"{float(conf):.0%}", side),
                  fill=ink(GOOD if int(pred) == label else BAD), font=font())
    return np.asarray(canvas)


METHOD = DeitMethod
