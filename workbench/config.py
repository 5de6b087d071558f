"""Run configurations: the one schema the GUI form, the CLI and the database share.

Each method has a dataclass whose fields carry a one-line help text and their allowed
values in `metadata`. `validate()` checks types, ranges and the cross-field rules and
raises `ConfigError` naming the field at fault, so a form can point at the widget and the
CLI can say which `--set` was wrong. This module imports neither torch nor Qt.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from workbench.errors import ConfigError

PRESETS = ("tiny", "small", "paper")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_KIND_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def param(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A config field with its help line and allowed values (read by validation, forms, CLI)."""
    return field(default=default, metadata={"help": help, "min": min, "max": max, "choices": choices})


@dataclass(frozen=True)
class FieldSpec:
    """What a form or `workbench methods` needs to know about one config field."""

    name: str
    type: type
    default: Any
    help: str
    min: float | None
    max: float | None
    choices: tuple[str, ...] | None


@dataclass(frozen=True)
class ParentInfo:
    """A candidate parent run as the config checks see it (no torch, no files)."""

    run_id: int
    method: str
    status: str
    config: "TrainConfig"


@dataclass(kw_only=True)
class TrainConfig:
    """Fields every method shares: data, optimisation, device and reporting intervals."""

    method: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # role -> methods allowed as that parent (e.g. {"encoder": ("mae", "beit")})
    parent_roles: ClassVar[dict[str, tuple[str, ...]]] = {}
    # role -> fields taken from that parent's config unless set explicitly (e.g. the encoder shape)
    inherits: ClassVar[dict[str, tuple[str, ...]]] = {}
    # preset name -> field overrides; merged down the class hierarchy
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # the metric the run table shows and studies compare, and whether higher is better
    key_metric: ClassVar[str] = "val/top1"
    key_metric_higher_is_better: ClassVar[bool] = True
    # whether the method learns from labels (unlabelled datasets suit pre-training methods only)
    needs_labels: ClassVar[bool] = True
    # masked methods: (ratio field, strategy field or None for always random, exact count per image)
    mask_fields: ClassVar[tuple[str, str | None, bool] | None] = None
    # what the GUI's Inspect view can do with a trained run: "attention" (a ViT inside),
    # "reconstruct" (the method's `reconstruct(model, images, mask)` gives image panels)
    inspections: ClassVar[tuple[str, ...]] = ()

    dataset: str = param("shapes", "dataset name; 'shapes' is the built-in procedural set")
    image_size: int = param(32, "image side in pixels (square)", min=8, max=1024)
    batch_size: int = param(128, "images per optimizer step", min=1, max=65536)
    epochs: int = param(30, "passes over the training set", min=1, max=100000)
    max_steps: int = param(0, "stop after this many optimizer steps (0: run all epochs)", min=0)
    lr: float = param(1e-3, "peak learning rate (AdamW, cosine decay)", min=1e-8, max=10.0)
    weight_decay: float = param(0.05, "AdamW weight decay (not applied to norms, biases, tokens)", min=0.0, max=10.0)
    adam_beta2: float = param(0.999, "AdamW beta2 (MAE pre-training uses 0.95)", min=0.5, max=0.99999)
    warmup_epochs: float = param(2.0, "linear learning-rate warmup, in epochs", min=0.0)
    grad_clip: float = param(1.0, "clip the gradient norm to this (0: off)", min=0.0)
    seed: int = param(0, "random seed for weights, data order and masks", min=0, max=2**31 - 1)
    device: str = param("auto", "auto, cpu, mps, cuda or cuda:N (auto: CUDA, then MPS, then CPU)")
    precision: str = param("auto", "auto (bf16 on GPU, fp32 on CPU), fp32, bf16 or fp16",
                           choices=("auto", "fp32", "bf16", "fp16"))
    compile: bool = param(False, "torch.compile the model's forward: faster steps after a compile pause "
                                 "(tens of seconds; on a CPU it needs a C compiler)")
    nproc: int = param(1, "processes training this run together, data-parallel (torchrun): one per GPU, or "
                          "several on the CPU; batch_size is split among them", min=1, max=64)
    augment: str = param("flip", "training augmentation: none, flip, crop_flip (random resized crop + flip) or "
                                 "randaugment (RandAugment 2/9, then crop + flip)",
                         choices=("none", "flip", "crop_flip", "randaugment"))
    mixup: float = param(0.0, "mixup strength alpha (0: off; DeiT used 0.8); classification methods only",
                         min=0.0, max=10.0)
    num_workers: int = param(0, "DataLoader worker processes (0: load in the training process)", min=0, max=64)
    threads: int = param(0, "CPU threads for this run (0: share the cores among the runs going at start)",
                         min=0, max=1024)
    log_every: int = param(10, "write training metrics every N steps", min=1)
    eval_every: int = param(0, "evaluate every N steps (0: at the end of each epoch)", min=0)
    snapshot_every: int = param(0, "save snapshot images every N steps (0: with each evaluation)", min=0)
    checkpoint_every: int = param(0, "save a checkpoint every N steps (0: at the end of each epoch)", min=0)

    # ----------------------------------------------------------------- checks
    def validate(self) -> "TrainConfig":
        """Check every field and the cross-field rules; return self for chaining."""
        hints = _type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            _check_type(f.name, hints[f.name], value)
            meta = f.metadata
            if meta.get("choices") and value not in meta["choices"]:
                raise ConfigError(f.name, f"{value!r} is not one of {', '.join(meta['choices'])}")
            lo, hi = meta.get("min"), meta.get("max")
            if lo is not None and value < lo or hi is not None and value > hi:
                raise ConfigError(f.name, f"{value!r} is outside the allowed range {_range(lo, hi)}")
        self.check()
        return self

    def check(self) -> None:
        """Cross-field rules; subclasses extend this and call super().check()."""
        if not _DEVICE_RE.match(self.device):
            raise ConfigError("device", f"{self.device!r} is not a device; use auto, cpu, mps, cuda or cuda:N")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError("warmup_epochs", f"warmup ({self.warmup_epochs} epochs) must be shorter "
                                               f"than training ({self.epochs} epochs)")
        if not self.dataset.strip():
            raise ConfigError("dataset", "no dataset given; use 'shapes' for the built-in set")
        if self.batch_size % self.nproc:
            raise ConfigError("nproc", f"{self.nproc} processes cannot share batch_size {self.batch_size} equally; "
                                       f"use a batch size that is a multiple of {self.nproc}")
        if self.mixup and not self.needs_labels:
            raise ConfigError("mixup", f"mixup blends labels, and method {self.method} learns without labels; "
                                       f"set mixup=0")

    def mask_spec(self) -> tuple[str, float, bool] | None:
        """(strategy, ratio, exact count) of the masks this run trains with; None if it masks nothing.
        The training code and the GUI's mask previews both read it, so they mask alike."""
        return self.mask_spec_of(vars(self))

    @classmethod
    def mask_spec_of(cls, values: Mapping[str, Any]) -> tuple[str, float, bool] | None:
        """`mask_spec` of config values not (yet) validated: a form being edited, a stored run's config."""
        if cls.mask_fields is None:
            return None
        ratio, strategy, exact = cls.mask_fields
        return str(values[strategy]) if strategy else "random", float(values[ratio]), exact

    def required_parents(self) -> dict[str, tuple[str, ...]]:
        """Parent roles this config needs (some methods need one only in some modes)."""
        return dict(self.parent_roles)

    def check_parents(self, parents: Mapping[str, ParentInfo]) -> None:
        """Refuse missing, unfinished or incompatible parent runs before anything starts."""
        required = self.required_parents()
        for role in parents:
            if role not in self.parent_roles:
                allowed = ", ".join(self.parent_roles) or "none"
                raise ConfigError(f"parent:{role}", f"method {self.method} takes no {role!r} parent "
                                                    f"(its parent roles: {allowed})")
        for role, methods in required.items():
            parent = parents.get(role)
            if parent is None:
                raise ConfigError(f"parent:{role}", f"method {self.method} needs a finished "
                                                    f"{_either(methods)} run as its {role}")
            if parent.method not in methods:
                raise ConfigError(f"parent:{role}", f"run {parent.run_id} is a {parent.method} run; "
                                                    f"the {role} must be a {_either(methods)} run")
            if parent.status != "finished":
                raise ConfigError(f"parent:{role}", f"run {parent.run_id} is {parent.status}; "
                                                    f"wait until it has finished or pick another run")
            for name in self.inherits.get(role, ()):
                mine, theirs = getattr(self, name), getattr(parent.config, name, None)
                if mine != theirs:
                    raise ConfigError(name, f"{name} {mine} differs from the {role} run {parent.run_id}'s "
                                            f"{theirs}; leave {name} unset to take the parent's, or pick "
                                            f"another parent")

    # ------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def field_specs(cls) -> list[FieldSpec]:
        hints = _type_hints(cls)
        return [FieldSpec(f.name, hints[f.name], f.default, f.metadata.get("help", ""),
                          f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("choices"))
                for f in fields(cls)]

    @classmethod
    def preset(cls, name: str) -> dict[str, Any]:
        """The merged overrides of preset `name` along the class hierarchy."""
        if name not in PRESETS:
            raise ConfigError("preset", f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(getattr(klass, "presets", {}).get(name, {}))
        return merged


@dataclass(kw_only=True)
class ViTBackboneConfig(TrainConfig):
    """The ViT encoder shape shared by every ViT-family method."""

    inspections: ClassVar[tuple[str, ...]] = ("attention",)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # about a minute on a 2-core laptop CPU with the built-in 32 px shapes
        "tiny": dict(image_size=32, patch_size=4, width=64, depth=2, heads=4, mlp_ratio=2.0,
                     batch_size=64, epochs=8, lr=3e-3, warmup_epochs=1.0, drop_path=0.0),
        "small": {},
        # ViT-B/16 geometry (224/16 = 14x14 tokens) with the DeiT training recipe
        "paper": dict(image_size=224, patch_size=16, width=768, depth=12, heads=12, mlp_ratio=4.0,
                      batch_size=256, epochs=300, lr=2.5e-4, weight_decay=0.05, warmup_epochs=5.0,
                      drop_path=0.1),
    }

    patch_size: int = param(4, "patch side in pixels; must divide the image size", min=1, max=256)
    width: int = param(192, "token width (embedding dimension)", min=8, max=4096)
    depth: int = param(6, "transformer blocks", min=1, max=64)
    heads: int = param(3, "attention heads; must divide the width", min=1, max=64)
    mlp_ratio: float = param(4.0, "MLP hidden width as a multiple of the token width", min=0.5, max=16.0)
    drop_path: float = param(0.1, "stochastic depth rate", min=0.0, max=0.9)

    def check(self) -> None:
        super().check()
        check_patch_size(self.image_size, self.patch_size)
        if self.width % self.heads:
            raise ConfigError("heads", f"{self.heads} heads do not divide width {self.width}; "
                                       f"choose a width that is a multiple of the head count")

    @property
    def grid_size(self) -> int:
        """Patches per image side."""
        return self.image_size // self.patch_size


# ---------------------------------------------------------------- registry
METHOD_CONFIGS: dict[str, type[TrainConfig]] = {}


def register(cls: type[TrainConfig]) -> type[TrainConfig]:
    """Class decorator: make a method's config known to the GUI, the CLI and the runner."""
    METHOD_CONFIGS[cls.method] = cls
    return cls


@register
@dataclass(kw_only=True)
class VitConfig(ViTBackboneConfig):
    method: ClassVar[str] = "vit"
    description: ClassVar[str] = "Supervised ViT classifier: patches, [CLS] token, transformer encoder."
    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": dict(label_smoothing=0.0)}

    pos_embed: str = param("learned-1d", "position embedding: learned 1-D (the paper's), fixed 2-D sin-cos, or none",
                           choices=("learned-1d", "sincos-2d", "none"))
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy", min=0.0, max=0.5)


ENCODER_SHAPE = ("image_size", "patch_size", "width", "depth", "heads", "mlp_ratio")


@register
@dataclass(kw_only=True)
class MaeConfig(ViTBackboneConfig):
    method: ClassVar[str] = "mae"
    description: ClassVar[str] = ("Masked autoencoder: the encoder sees only the visible patches, a light decoder "
                                  "reconstructs the masked ones' pixels.")
    needs_labels: ClassVar[bool] = False
    key_metric: ClassVar[str] = "val/loss"
    key_metric_higher_is_better: ClassVar[bool] = False
    mask_fields: ClassVar[tuple[str, str | None, bool] | None] = ("mask_ratio", "mask_strategy", True)  # equal counts batch
    inspections: ClassVar[tuple[str, ...]] = ("attention", "reconstruct")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(decoder_width=48, decoder_depth=1, decoder_heads=3, epochs=8, lr=2e-3, adam_beta2=0.95),
        "small": {},
        # He et al.: 75 % random masking, 512-d 8-block decoder, normalised pixel targets, AdamW(0.9, 0.95)
        "paper": dict(decoder_width=512, decoder_depth=8, decoder_heads=16, norm_pix_loss=True, epochs=800,
                      batch_size=256, lr=4e-4, weight_decay=0.05, warmup_epochs=40.0, adam_beta2=0.95,
                      drop_path=0.0),
    }

    mask_ratio: float = param(0.75, "share of patches masked (and dropped from the encoder)", min=0.05, max=0.95)
    mask_strategy: str = param("random", "which patches: random (the paper's best), block or grid",
                               choices=("random", "block", "grid"))
    decoder_width: int = param(128, "decoder token width (narrower than the encoder)", min=8, max=4096)
    decoder_depth: int = param(2, "decoder transformer blocks", min=1, max=32)
    decoder_heads: int = param(4, "decoder attention heads; must divide the decoder width", min=1, max=64)
    norm_pix_loss: bool = param(False, "predict each patch's pixels normalised by its own mean and variance")
    drop_path: float = param(0.0, "stochastic depth rate in the encoder", min=0.0, max=0.9)

    def check(self) -> None:
        super().check()
        if self.decoder_width % self.decoder_heads:
            raise ConfigError("decoder_heads", f"{self.decoder_heads} heads do not divide decoder width "
                                               f"{self.decoder_width}")
        if round(self.grid_size ** 2 * (1 - self.mask_ratio)) < 1:
            raise ConfigError("mask_ratio", f"mask ratio {self.mask_ratio} leaves no visible patch of "
                                            f"{self.grid_size ** 2}; lower it")


@register
@dataclass(kw_only=True)
class FinetuneConfig(ViTBackboneConfig):
    method: ClassVar[str] = "finetune"
    description: ClassVar[str] = ("Fine-tune or linearly probe a pre-trained encoder (MAE, BEiT, masked patch "
                                  "prediction) as a classifier on a labelled dataset.")
    parent_roles: ClassVar[dict[str, tuple[str, ...]]] = {"encoder": ("mae", "beit", "mpp")}
    inherits: ClassVar[dict[str, tuple[str, ...]]] = {"encoder": ENCODER_SHAPE}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(epochs=8, lr=2e-3),
        "small": {},
        # MAE fine-tuning recipe (ViT-B): layer decay 0.65, drop path 0.1, label smoothing 0.1
        "paper": dict(epochs=100, batch_size=256, lr=1e-3, weight_decay=0.05, warmup_epochs=5.0,
                      layer_decay=0.65, drop_path=0.1, label_smoothing=0.1),
    }

    mode: str = param("full", "full: train every weight; linear: freeze the encoder, train a linear head "
                              "(after a BatchNorm without affine, as MAE's linear probe)",
                      choices=("full", "linear"))
    layer_decay: float = param(0.75, "layer-wise learning-rate decay in full mode (1: off)", min=0.05, max=1.0)
    pool: str = param("avg", "image feature: avg (mean of patch tokens) or token ([CLS])", choices=("avg", "token"))
    label_smoothing: float = param(0.0, "label smoothing of the cross-entropy", min=0.0, max=0.5)
    drop_path: float = param(0.0, "stochastic depth rate (full mode)", min=0.0, max=0.9)


@register
@dataclass(kw_only=True)
class CnnConfig(TrainConfig):
    method: ClassVar[str] = "cnn"
    description: ClassVar[str] = ("Supervised convolutional classifier from timm (RegNet as in DeiT, ResNet, "
                                  "MobileViT): a teacher for DeiT, or a baseline.")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # ResNet-10-T: RegNets learn slowly from scratch at 32 px; this reaches ~70 % in 3 epochs
        "tiny": dict(arch="resnet10t", image_size=32, batch_size=64, epochs=3, lr=2e-3, warmup_epochs=0.5,
                     label_smoothing=0.0),
        "small": {},
        # DeiT's teacher: RegNetY-16GF at 224 px
        "paper": dict(arch="regnety_160", image_size=224, batch_size=256, epochs=300, lr=1e-3, warmup_epochs=5.0),
    }

    arch: str = param("regnety_002", "timm architecture (built from scratch, never downloaded)",
                      choices=("regnety_002", "regnetx_002", "regnety_160", "resnet10t", "resnet18", "resnet50",
                               "mobilevit_xxs", "mobilevit_xs", "mobilevitv2_050"))
    drop_rate: float = param(0.0, "dropout before the classifier", min=0.0, max=0.9)
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy", min=0.0, max=0.5)


@register
@dataclass(kw_only=True)
class DeitConfig(ViTBackboneConfig):
    method: ClassVar[str] = "deit"
    description: ClassVar[str] = ("DeiT: a ViT with a distillation token whose head learns from a teacher "
                                  "(hard labels or soft, tempered distributions).")
    parent_roles: ClassVar[dict[str, tuple[str, ...]]] = {"teacher": ("cnn", "vit", "deit", "swin")}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(label_smoothing=0.0),
        "small": {},
        # DeiT-B recipe: hard distillation from a RegNetY-16GF, 300 epochs
        "paper": dict(label_smoothing=0.1),
    }

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
        if teacher is not None and teacher.config.dataset != self.dataset:
            raise ConfigError("parent:teacher", f"run {teacher.run_id} was trained on {teacher.config.dataset!r}, "
                                                f"this student on {self.dataset!r}: their classes must match")


@register
@dataclass(kw_only=True)
class DvaeConfig(TrainConfig):
    method: ClassVar[str] = "dvae"
    description: ClassVar[str] = ("Discrete VAE tokenizer for BEiT: maps each image patch to one of K visual "
                                  "tokens (Gumbel-softmax, annealed temperature).")
    needs_labels: ClassVar[bool] = False
    key_metric: ClassVar[str] = "val/recon_hard"
    key_metric_higher_is_better: ClassVar[bool] = False
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(image_size=32, patch_size=4, codebook_size=128, hidden=64, batch_size=64, epochs=6,
                     lr=2e-3, warmup_epochs=0.5, weight_decay=0.0),
        "small": {},
        # BEiT used DALL-E's tokenizer: 8192 tokens, a 14 x 14 grid at 224 px (stride 16)
        "paper": dict(image_size=224, patch_size=16, codebook_size=8192, hidden=256, batch_size=256,
                      epochs=100, lr=1e-3, warmup_epochs=2.0),
    }

    patch_size: int = param(4, "pixels per token side (the BEiT ViT's patch size); a power of 2", min=2, max=64)
    codebook_size: int = param(512, "K: number of visual tokens", min=2, max=16384)
    hidden: int = param(96, "channels of the conv encoder and decoder", min=8, max=1024)
    temp_start: float = param(1.0, "Gumbel-softmax temperature at the start", min=0.01, max=10.0)
    temp_end: float = param(0.0625, "temperature at the end (annealed exponentially; DALL-E: 1/16)",
                            min=0.01, max=10.0)
    kl_weight: float = param(0.01, "weight of the KL to the uniform prior over codes", min=0.0, max=10.0)
    kl_warmup_epochs: float = param(1.0, "ramp the KL weight up from 0 over this many epochs", min=0.0)
    weight_decay: float = param(0.0, "AdamW weight decay", min=0.0, max=10.0)

    def check(self) -> None:
        super().check()
        if self.patch_size & (self.patch_size - 1):
            raise ConfigError("patch_size", f"patch size {self.patch_size} is not a power of 2 (each halving is "
                                            f"one stride-2 convolution); use 2, 4, 8 or 16")
        check_patch_size(self.image_size, self.patch_size)
        if self.temp_end > self.temp_start:
            raise ConfigError("temp_end", f"the end temperature {self.temp_end} is above the start "
                                          f"{self.temp_start}; annealing lowers it")


@register
@dataclass(kw_only=True)
class BeitConfig(ViTBackboneConfig):
    method: ClassVar[str] = "beit"
    description: ClassVar[str] = ("BEiT: blockwise-masked patches replaced by a [mask] embedding; the ViT predicts "
                                  "each masked patch's visual token from a dVAE tokenizer.")
    needs_labels: ClassVar[bool] = False
    parent_roles: ClassVar[dict[str, tuple[str, ...]]] = {"tokenizer": ("dvae",)}
    inherits: ClassVar[dict[str, tuple[str, ...]]] = {"tokenizer": ("image_size", "patch_size")}
    key_metric: ClassVar[str] = "val/mask_acc"
    mask_fields: ClassVar[tuple[str, str | None, bool] | None] = ("mask_ratio", "mask_strategy", False)  # up to the ratio
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(epochs=8, lr=2e-3),
        "small": {},
        # BEiT-B: 40 % blockwise masking, 800 epochs, layer-scale 0.1
        "paper": dict(epochs=800, batch_size=2048, lr=1.5e-3, warmup_epochs=10.0, weight_decay=0.05,
                      drop_path=0.1, adam_beta2=0.999),
    }

    mask_ratio: float = param(0.4, "share of patches masked (BEiT: up to 40 %)", min=0.05, max=0.6)
    mask_strategy: str = param("block", "which patches: block (BEiT) or random", choices=("block", "random"))
    drop_path: float = param(0.0, "stochastic depth rate", min=0.0, max=0.9)


@register
@dataclass(kw_only=True)
class MppConfig(ViTBackboneConfig):
    method: ClassVar[str] = "mpp"
    description: ClassVar[str] = ("ViT masked patch prediction (the ViT paper's self-supervision): corrupt half "
                                  "the patch embeddings, predict their mean colours or pixels.")
    needs_labels: ClassVar[bool] = False
    key_metric: ClassVar[str] = "val/loss"
    key_metric_higher_is_better: ClassVar[bool] = False
    mask_fields: ClassVar[tuple[str, str | None, bool] | None] = ("corrupt_ratio", None, True)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(epochs=8, lr=2e-3),
        "small": {},
        # ViT-B/16 self-supervision: 50 % corruption, 3-bit mean colour target
        "paper": dict(epochs=300, batch_size=4096, lr=2e-4, warmup_epochs=10.0, weight_decay=0.1),
    }

    corrupt_ratio: float = param(0.5, "share of patch embeddings corrupted: of those 80 % become [mask], "
                                      "10 % another patch's embedding, 10 % stay", min=0.05, max=0.95)
    target: str = param("color3bit", "what to predict per corrupted patch: its 3-bit mean colour (512 classes), "
                                     "a 4x4 grid of 3-bit mean colours, or its pixels (L2)",
                        choices=("color3bit", "color3bit_4x4", "pixel_l2"))
    drop_path: float = param(0.0, "stochastic depth rate", min=0.0, max=0.9)

    def check(self) -> None:
        super().check()
        if self.target == "color3bit_4x4" and self.patch_size % 4:
            raise ConfigError("target", f"color3bit_4x4 splits each patch into 4 x 4 cells; patch size "
                                        f"{self.patch_size} is not a multiple of 4")


def check_patch_size(image_size: int, patch_size: int) -> None:
    """Patches must tile the image exactly; the message lists the sizes that do."""
    if image_size % patch_size:
        divisors = [p for p in range(2, min(image_size, 33)) if image_size % p == 0]
        raise ConfigError("patch_size", f"patch size {patch_size} does not divide image size {image_size}; "
                                        f"choose one of {divisors}")


def int_list(field: str, text: str) -> list[int]:
    """'2,2,6' -> [2, 2, 6], naming the field when it is not a list of positive whole numbers."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ConfigError(field, f"{text!r} is not a comma-separated list of positive whole numbers (e.g. 2,2,6)")
    return values


@register
@dataclass(kw_only=True)
class SwinConfig(TrainConfig):
    method: ClassVar[str] = "swin"
    description: ClassVar[str] = ("Swin Transformer classifier (timm): attention inside shifted windows, a "
                                  "hierarchy of stages that halve the token grid.")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(image_size=32, patch_size=4, embed_dim=32, depths="2,2", heads="2,4", window_size=4,
                     mlp_ratio=2.0, batch_size=64, epochs=8, lr=2e-3, warmup_epochs=1.0, drop_path=0.0, label_smoothing=0.0),
        "small": {},
        # Swin-T: 224 px, patch 4, window 7, depths 2-2-6-2
        "paper": dict(image_size=224, patch_size=4, embed_dim=96, depths="2,2,6,2", heads="3,6,12,24",
                      window_size=7, batch_size=256, epochs=300, lr=1e-3, weight_decay=0.05, warmup_epochs=20.0,
                      drop_path=0.2, label_smoothing=0.1),
    }

    patch_size: int = param(2, "patch side in pixels of the first stage", min=1, max=64)
    embed_dim: int = param(64, "token width of the first stage (doubles at every stage)", min=8, max=1024)
    depths: str = param("2,2,6", "blocks per stage, comma-separated (each stage halves the token grid)")
    heads: str = param("2,4,8", "attention heads per stage, comma-separated")
    window_size: int = param(4, "attention window side, in tokens", min=1, max=64)
    mlp_ratio: float = param(4.0, "MLP hidden width as a multiple of the token width", min=0.5, max=16.0)
    drop_path: float = param(0.1, "stochastic depth rate", min=0.0, max=0.9)
    label_smoothing: float = param(0.1, "label smoothing of the cross-entropy", min=0.0, max=0.5)

    def check(self) -> None:
        super().check()
        depths, heads = int_list("depths", self.depths), int_list("heads", self.heads)
        if len(heads) != len(depths):
            raise ConfigError("heads", f"{len(heads)} head counts for {len(depths)} stages; give one per stage")
        check_patch_size(self.image_size, self.patch_size)
        grid = self.image_size // self.patch_size
        if grid % 2 ** (len(depths) - 1):
            raise ConfigError("depths", f"{len(depths)} stages halve the {grid}x{grid} token grid "
                                        f"{len(depths) - 1} times, which does not divide it; use fewer stages "
                                        f"or a smaller patch size")
        for stage in range(len(depths)):
            side, width = grid // 2 ** stage, self.embed_dim * 2 ** stage
            if side > self.window_size and side % self.window_size:
                fits = [w for w in range(2, side) if side % w == 0]
                raise ConfigError("window_size", f"window {self.window_size} does not tile the {side}x{side} token "
                                                 f"grid of stage {stage + 1}; choose one of {fits} (or >= {side}: "
                                                 f"timm then attends over the whole grid)")
            if width % heads[stage]:
                raise ConfigError("heads", f"{heads[stage]} heads do not divide stage {stage + 1}'s width {width}")


def config_class(method: str) -> type[TrainConfig]:
    try:
        return METHOD_CONFIGS[method]
    except KeyError:
        raise ConfigError("method", f"unknown method {method!r}; choose one of "
                                    f"{', '.join(sorted(METHOD_CONFIGS))}") from None


def make_config(
    method: str,
    preset: str | None = None,
    overrides: Mapping[str, Any] | Iterable[str] = (),
    inherited: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Defaults, then a preset, then values inherited from parents, then overrides (a mapping or
    "key=value" strings); validated."""
    cls = config_class(method)
    values: dict[str, Any] = cls.preset(preset) if preset else {}
    values.update(inherited or {})
    if isinstance(overrides, Mapping):
        values.update(overrides)
    else:
        values.update(parse_overrides(cls, overrides))
    return config_from_dict(method, values)


def parse_overrides(cls: type[TrainConfig], items: Iterable[str]) -> dict[str, Any]:
    """Turn CLI `key=value` strings into typed values, naming the field on error."""
    hints = _type_hints(cls)
    known = {f.name for f in fields(cls)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(key or item, f"expected key=value, got {item!r}")
        if key not in known:
            raise ConfigError(key, _unknown_field(cls, key))
        out[key] = _coerce(key, hints[key], raw.strip())
    return out


def config_from_dict(method: str, data: Mapping[str, Any], *, strict: bool = True) -> TrainConfig:
    """Build and validate a config. `strict=False` drops fields a newer build removed."""
    cls = config_class(method)
    known = {f.name for f in fields(cls)}
    unknown = [k for k in data if k not in known]
    if unknown and strict:
        raise ConfigError(unknown[0], _unknown_field(cls, unknown[0]))
    hints = _type_hints(cls)
    values = {k: (float(v) if hints[k] is float and type(v) is int else v)
              for k, v in data.items() if k in known}
    try:
        cfg = cls(**values)
    except TypeError as exc:  # pragma: no cover - dataclass signature errors
        raise ConfigError("config", str(exc)) from None
    return cfg.validate()


def config_from_json(method: str, text: str, *, strict: bool = True) -> TrainConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("config", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError("config", "a config must be a JSON object of field: value")
    return config_from_dict(method, data, strict=strict)


# ----------------------------------------------------------------- helpers
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown_field(cls: type[TrainConfig], key: str) -> str:
    names = sorted(f.name for f in fields(cls))
    return f"unknown field for method {cls.method}; known fields: {', '.join(names)}"


def _either(names: Sequence[str]) -> str:
    """('mae', 'beit', 'mpp') -> 'mae, beit or mpp'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _range(lo: float | None, hi: float | None) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def _check_type(name: str, kind: Any, value: Any) -> None:
    if kind is bool:
        ok = type(value) is bool
    elif kind is float:
        ok = isinstance(value, (int, float)) and type(value) is not bool
    elif kind is int:
        ok = isinstance(value, int) and type(value) is not bool
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(name, f"{value!r} is not {_KIND_NAMES.get(kind, kind.__name__)}")


def _coerce(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind is bool:
            low = raw.lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
            raise ValueError
        return kind(raw)
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not {_KIND_NAMES.get(kind, kind.__name__)}") from None
