"""Classifier diagnostics over the validation set: the confusion matrix, per-class precision and
recall, top-5 (where there are more than five classes) and a gallery of the most confident
mistakes: what a user checks before exporting a classifier.

Accumulated batch by batch, so the whole validation set is never held: the confusion counts,
and the `k` most confident mistakes seen so far.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

MISTAKES = 18  # images in the gallery


class Diagnostics:
    def __init__(self, classes: Sequence[str], to_uint8: Callable[[Tensor], np.ndarray], k: int = MISTAKES) -> None:
        self.classes, self.to_uint8, self.k = list(classes), to_uint8, k
        n = len(self.classes)
        self.confusion = torch.zeros(n, n, dtype=torch.int64)
        self.top5_hits = 0
        self.mistakes: list[tuple[float, np.ndarray, int, int]] = []  # (confidence, pixels, label, prediction)

    def add(self, logits: Tensor, labels: Tensor, images: Tensor | None = None) -> None:
        """One batch: logits [B, C] (or log-probabilities), labels [B], normalised images [B, 3, H, W]
        (None: counts only, no gallery)."""
        n = len(self.classes)
        scores, labels = logits.detach().float().cpu(), labels.detach().cpu()
        conf, pred = scores.softmax(-1).max(-1)
        self.confusion += torch.bincount(labels * n + pred, minlength=n * n).view(n, n)
        if n > 5:
            self.top5_hits += int((scores.topk(5, dim=-1).indices == labels[:, None]).any(-1).sum())
        wrong = (pred != labels).nonzero().flatten()
        if images is None or not len(wrong):
            return
        floor = self.mistakes[-1][0] if len(self.mistakes) >= self.k else -1.0
        keep = [int(i) for i in wrong if float(conf[i]) > floor]
        if keep:
            pixels = self.to_uint8(images[keep])
            self.mistakes += [(float(conf[i]), pixels[j], int(labels[i]), int(pred[i])) for j, i in enumerate(keep)]
            self.mistakes = sorted(self.mistakes, key=lambda m: -m[0])[:self.k]

    def result(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able figures, {"mistakes": gallery image}) of everything added."""
        from workbench.draw import prediction_grid

        confusion = self.confusion
        total = int(confusion.sum())
        hits = confusion.diag()
        predicted, actual = confusion.sum(0), confusion.sum(1)
        data: dict[str, Any] = {
            "n": total, "classes": self.classes, "confusion": confusion.tolist(),
            "top1": float(hits.sum()) / max(total, 1),
            "per_class": [{"class": c, "precision": float(hits[i]) / int(predicted[i]) if predicted[i] else None,
                           "recall": float(hits[i]) / int(actual[i]) if actual[i] else None,
                           "support": int(actual[i])} for i, c in enumerate(self.classes)],
        }
        if len(self.classes) > 5:
            data["top5"] = self.top5_hits / max(total, 1)
        images = {}
        if self.mistakes:
            conf, pixels, labels, preds = zip(*self.mistakes)
            images["mistakes"] = prediction_grid(np.stack(pixels), labels, preds, conf, self.classes)
        return data, images
