"""The interface every method implements, and the shared classification pieces.

The engine calls only these: `build` a model, `step` on a batch (the loss and metrics),
`evaluate` on validation batches, `snapshot` images, and name the `exportable` part.
Batches arrive on the device, already normalised: (images [B, 3, H, W] float, labels [B]).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from torch import Tensor, nn

from workbench.config import TrainConfig
from workbench.data import DataInfo
from workbench.data.masking import mask_count

Batch = tuple[Tensor, Tensor]


@dataclass
class ParentRun:
    """A finished parent run (teacher, encoder, tokenizer): its config and trained weights
    (`load_state` may return None where only the architecture is needed, as in export), and its
    own parents (a BEiT encoder's tokenizer), which its method needs to rebuild its model."""

    run_id: int
    method: str
    config: TrainConfig
    load_state: Callable[[], dict[str, Tensor] | None]
    parents: dict[str, "ParentRun"] = field(default_factory=dict)


class Method:
    """Base class: subclasses implement `build` and `step` (the registry knows them by their
    package's name)."""

    # True for a method whose step leaves some trainable parameters without a gradient (DDP must
    # then look for them after every backward pass, which costs a traversal of the graph)
    unused_parameters = False

    def __init__(self, cfg: TrainConfig, data: DataInfo, parents: dict[str, ParentRun] | None = None) -> None:
        self.cfg = cfg
        self.data = data
        self.parents = parents or {}
        # (rank, processes) of a data-parallel run, set by the trainer: a process trains on rows
        # rank, rank + processes, ... of every batch
        self.shard = (0, 1)
        self._stats: tuple[Tensor, Tensor] | None = None  # the data's mean and std on the images' device

    def build(self) -> nn.Module:
        raise NotImplementedError

    def on_step(self, step: int, total: int) -> None:
        """Called before each training step (`step` counts from 0), for schedules a method keeps
        itself (a temperature, a loss ramp); derive them from `step` so a resumed run agrees."""

    def step(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """Training forward pass: {"loss": scalar to minimise, other metrics: scalars}."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        """Mean of `step`'s metrics over the validation batches (`mean_over`)."""
        return mean_over(batches, lambda batch: self.step(model, batch))

    @torch.no_grad()
    def snapshot(self, model: nn.Module, batch: Batch) -> dict[str, np.ndarray]:
        """Named figures [H, W, 4] uint8 (`workbench.draw`) showing what the model does on a fixed batch."""
        return {}

    def report(self, model: nn.Module, batches: Iterable[Batch]) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """An end-of-training summary over the validation set for the GUI's views: JSON-able data
        and named images (None: the method has nothing beyond its metrics)."""
        return None

    def param_groups(self, model: nn.Module) -> list[dict]:
        """What the optimizer trains: weight-decay groups (methods may add lr scales or freeze)."""
        return param_groups(model, self.cfg.weight_decay)

    def exportable(self, model: nn.Module) -> nn.Module:
        """The part of the model worth shipping (a classifier, or an encoder)."""
        return model

    def init_target(self, model: nn.Module) -> nn.Module:
        """The timm network pretrained weights (`init`) load into: the exportable part itself, where
        `exportable` returns a converted copy a method overrides this."""
        return self.exportable(model)

    def pixels(self, images: Tensor) -> Tensor:
        """Normalised [B, 3, H, W] -> the pixels in [0, 1], float32. The statistics are copied to the
        device once: a copy at every step would make the host wait for the GPU's queue."""
        if self._stats is None or self._stats[0].device != images.device:
            self._stats = (torch.tensor(self.data.mean, device=images.device).view(1, 3, 1, 1),
                           torch.tensor(self.data.std, device=images.device).view(1, 3, 1, 1))
        mean, std = self._stats
        return (images.float() * std + mean).clamp(0, 1)

    def to_uint8(self, images: Tensor) -> np.ndarray:
        """Normalised [B, 3, H, W] -> uint8 [B, H, W, 3] for display."""
        return (self.pixels(images) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class MaskedMethod(Method):
    """Methods that mask patches (MAE, BEiT, masked patch prediction). A training step's masks are
    seeded by (seed, step, draw) and drawn for the whole batch of every process, of which each keeps
    its own images' rows: a resumed run masks as the original would, and N processes as one process
    with the whole batch. Evaluation and snapshots use a fixed sequence, so every evaluation sees
    the same masks."""

    _eval_rng: np.random.Generator | None = None
    _step: int | None = None  # the training step being taken (`on_step`); None outside training
    _draws = 0  # masks drawn in it so far (one per accumulated batch)

    def on_step(self, step: int, total: int) -> None:
        super().on_step(step, total)
        self._step, self._draws = step, 0

    def mask(self, batch: int, device: torch.device, rng: np.random.Generator | None = None) -> Tensor:
        """A bool mask [batch, N] (True = masked) on `device`."""
        from workbench.data.masking import make_mask

        strategy, ratio, exact = self.cfg.mask_spec()
        grid = self.cfg.image_size // self.cfg.patch_size
        rows = slice(None)
        if rng is None and self._eval_rng is None and self._step is not None:
            rank, world = self.shard
            rng = np.random.default_rng([self.cfg.seed, self._step, self._draws])
            self._draws += 1
            batch, rows = batch * world, slice(rank, None, world)
        rng = rng or self._eval_rng or np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,))))
        mask = torch.from_numpy(np.ascontiguousarray(make_mask(strategy, batch, (grid, grid), ratio, rng,
                                                               exact=exact, keep=rows)))
        if device.type == "cuda":  # from pinned memory the copy does not wait for the GPU's queue
            return mask.pin_memory().to(device, non_blocking=True)
        return mask.to(device)

    def fixed_rng(self) -> np.random.Generator:
        return np.random.default_rng(self.cfg.seed)

    @contextlib.contextmanager
    def fixed_masks(self) -> Iterator[None]:
        self._eval_rng = self.fixed_rng()
        try:
            yield
        finally:
            self._eval_rng = None

    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        with self.fixed_masks():
            return super().evaluate(model, batches)


def mean_over(batches: Iterable[Batch], metrics: Callable[[Batch], dict[str, Tensor]]) -> dict[str, float]:
    """The mean of each batch's scalar metrics over `batches`, weighted by batch size: summed on the
    device and read once at the end (a read per batch would make the host wait for the GPU before
    queueing the next batch)."""
    totals: dict[str, Tensor] = {}
    count = 0
    for batch in batches:
        n = batch[0].shape[0]
        for key, value in metrics(batch).items():
            weighted = value.detach().float() * n
            totals[key] = totals[key] + weighted if key in totals else weighted
        count += n
    return {k: float(v) / max(count, 1) for k, v in totals.items()}


def masked_rows(mask: Tensor, ratio: float) -> tuple[Tensor, Tensor]:
    """mask [B, N] bool -> (the masked positions as rows of a [B*N, ...] flattening [M] long, which of
    the M rows are real [M] bool). `x[mask]` picks the same rows, but its size depends on the mask's
    values, so the host would wait for the GPU at every step to learn it; here M is fixed (`make_mask`
    never masks more than round(N x ratio) patches an image) and rows past the masked ones are padding
    (row 0, not real: weigh them out with `mean_of`)."""
    b, n = mask.shape
    index = torch.nonzero_static(mask.flatten(), size=b * mask_count(n, ratio), fill_value=-1).squeeze(1)
    return index.clamp_min(0), index >= 0


def mean_of(values: Tensor, valid: Tensor) -> Tensor:
    """The mean of values [M] over the rows `valid` [M] (bool) marks real (a padding row's value,
    even an infinite one, counts for nothing)."""
    return torch.where(valid, values, 0).sum() / valid.sum()


def hard_labels(labels: Tensor) -> Tensor:
    """Class ids [B] from ids, or from mixup's class probabilities [B, C]."""
    return labels.argmax(-1) if labels.is_floating_point() else labels


class ClassifierMethod(Method):
    """Supervised classification: cross-entropy (labels may be mixup's probabilities), top-1,
    and a prediction-grid snapshot."""

    label_smoothing: float = 0.0

    def step(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        images, labels = batch
        logits = model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing if model.training else 0.0)
        return {"loss": loss, "top1": (logits.argmax(-1) == hard_labels(labels)).float().mean()}

    @torch.no_grad()
    def report(self, model: nn.Module, batches: Iterable[Batch]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The classifier's diagnostics over the validation set (`workbench.methods.diagnostics`)."""
        from workbench.methods.diagnostics import Diagnostics

        diagnostics = Diagnostics(self.data.classes, self.to_uint8)
        for images, labels in batches:
            diagnostics.add(model(images), labels, images)
        data, images = diagnostics.result()
        return {"diagnostics": data}, images

    @torch.no_grad()
    def snapshot(self, model: nn.Module, batch: Batch) -> dict[str, np.ndarray]:
        from workbench.draw import prediction_grid

        images, labels = batch
        probs = model(images).float().softmax(-1)
        conf, pred = probs.max(-1)
        return {"predictions": prediction_grid(self.to_uint8(images), labels.tolist(), pred.tolist(),
                                               conf.tolist(), self.data.classes)}


def load_parent_module(parent: ParentRun, data: DataInfo) -> nn.Module:
    """The trained, exportable part of a parent run (an encoder, a teacher), rebuilt through its
    own method and loaded from its newest readable checkpoint."""
    from workbench.methods import get_method

    method = get_method(parent.method)(parent.config, data, parent.parents)
    model = method.build()
    state = parent.load_state()
    if state is not None:
        model.load_state_dict(state)
    return method.exportable(model)


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float | None = None) -> list[dict]:
    """Trainable parameters grouped by timm: no weight decay for norms, biases and the model's
    `no_weight_decay()` tables (tokens, position embeddings); with `layer_decay`, each group's
    `lr_scale` is layer_decay^(depth + 1 - layer), as MAE and BEiT fine-tune. Frozen ones are left out."""
    names = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    # a wrapper names its inner model's tables by their own names (pos_embed for encoder.vit.pos_embed)
    skip = tuple(n for n, _ in model.named_parameters() if n in names or n.split(".")[-1] in names)
    if layer_decay is None or layer_decay == 1.0:
        return param_groups_weight_decay(model, weight_decay, no_weight_decay_list=skip)
    return param_groups_layer_decay(model, weight_decay, no_weight_decay_list=skip, layer_decay=layer_decay)
