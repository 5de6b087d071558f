"""Run configurations: the schema core the GUI form, the CLI and the database share.

Each method's config (in its own package, `workbench.methods.<name>`) is a dataclass built on
`TrainConfig`, whose fields carry a one-line help text and their allowed values in
`metadata`. `validate()` checks types, ranges and the cross-field rules and raises
`ConfigError` naming the field at fault, so a form can point at the widget and the CLI can
say which `--set` was wrong. Looking a method up by name is the registry's
(`workbench.methods`). This module imports neither torch nor Qt.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from workbench.errors import ConfigError
from workbench.fields import (
    check_field,
    parse_overrides,
    sbatch_flags,
    type_hints,
    unknown_field,
)

PRESETS = ("tiny", "small", "paper")
WEIGHTS = ("best", "last", "ema")  # which weights of a trained run export and `init=run:ID` take
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_ENDPOINT_RE = re.compile(r"^[^\s:/]+:\d{1,5}$")


def param(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    at_min: str | None = None,
) -> Any:
    """A config field with its help line and allowed values (read by validation, forms, CLI).
    `at_min`: what its minimum means, which a form shows in its place ("auto" for -1 workers)."""
    return field(default=default, metadata={"help": help, "min": min, "max": max, "choices": choices,
                                            "at_min": at_min})


def grad_clip_param(default: float, source: str) -> Any:
    """The `grad_clip` field at a method's reference value (`source` names where it comes from)."""
    return param(default, f"clip the gradient norm to this (0: off); the default, {default:g}, is {source}", min=0.0)


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
    at_min: str | None = None  # what the minimum means, in words (a form shows it)


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

    method: ClassVar[str] = ""  # set by the registry: the name of the method's package
    description: ClassVar[str] = ""
    position: ClassVar[int] = 100  # where lists of methods show it (a path for newcomers: vit first)
    # role -> methods allowed as that parent (e.g. {"encoder": ("mae", "beit")})
    parent_roles: ClassVar[dict[str, tuple[str, ...]]] = {}
    # role -> fields taken from that parent's config unless set explicitly (e.g. the encoder shape)
    inherits: ClassVar[dict[str, tuple[str, ...]]] = {}
    # role -> fields taken from that parent's config unless set explicitly, and free to differ (the
    # dataset a fine-tune trains on: its encoder's, unless another is named)
    suggests: ClassVar[dict[str, tuple[str, ...]]] = {}
    # preset name -> field overrides; merged down the class hierarchy
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # the metric the run table shows and studies compare, and whether higher is better
    key_metric: ClassVar[str] = "val/top1"
    key_metric_higher_is_better: ClassVar[bool] = True
    # what its train/ and val/loss measure: runs whose losses are alike share a plot of them
    loss: ClassVar[str] = "cross-entropy over the classes"
    # whether the method learns from labels (unlabelled datasets suit pre-training methods only)
    needs_labels: ClassVar[bool] = True
    # masked methods: (ratio field, strategy field or None for always random, exact count per image)
    mask_fields: ClassVar[tuple[str, str | None, bool] | None] = None
    # what the GUI's Inspect view can do with a trained run: "attention" (a ViT inside),
    # "reconstruct" (the method's `reconstruct(model, images, mask)` gives image panels)
    inspections: ClassVar[tuple[str, ...]] = ()

    dataset: str = param("shapes", "dataset name; 'shapes' is the built-in procedural set")
    image_size: int = param(32, "image side in pixels (square)", min=8, max=1024)
    batch_size: int = param(128, "images per optimizer step (all processes and accumulated batches together)",
                            min=1, max=65536)
    accum_steps: int = param(1, "gradient accumulation: each step sums the gradients of this many batches of "
                                "batch_size / accum_steps images, the same arithmetic as one big batch", min=1,
                             max=1024)
    epochs: int = param(30, "passes over the training set", min=1, max=100000)
    max_steps: int = param(0, "stop after this many optimizer steps (0: run all epochs)", min=0,
                           at_min="all epochs")
    lr: float = param(1e-3, "peak learning rate (AdamW, cosine decay to 0); see blr", min=1e-8, max=10.0)
    blr: float = param(0.0, "base learning rate per 256 images: when above 0, lr = blr x batch_size / 256 "
                            "(MAE's and DeiT's rule, so the rate follows the batch)", min=0.0, max=1.0)
    weight_decay: float = param(0.05, "AdamW weight decay (not applied to norms, biases, tokens)", min=0.0, max=10.0)
    adam_beta2: float = param(0.999, "AdamW beta2 (MAE pre-training uses 0.95)", min=0.5, max=0.99999)
    warmup_epochs: float = param(2.0, "linear learning-rate warmup, in epochs", min=0.0)
    grad_clip: float = grad_clip_param(1.0, "the ViT paper's")
    ema: bool = param(False, "keep timm's exponential moving average of the weights, evaluated beside them "
                             "(val_ema/...), saved in checkpoints, exportable (DeiT uses it)")
    ema_decay: float = param(0.99996, "the moving average's decay per step (DeiT: 0.99996; short runs want "
                                      "less, e.g. 0.999)", min=0.0, max=1.0)
    seed: int = param(0, "random seed for weights, data order and masks", min=0, max=2**31 - 1)
    device: str = param("auto", "auto, cpu, mps, cuda or cuda:N (auto: CUDA, then MPS, then CPU)")
    precision: str = param("auto", "auto (bf16 on GPU, fp32 on CPU), fp32, bf16 or fp16",
                           choices=("auto", "fp32", "bf16", "fp16"))
    compile: bool = param(False, "torch.compile the model's forward: faster steps after a compile pause "
                                 "(tens of seconds; on a CPU it needs a C compiler)")
    nproc: int = param(1, "processes training this run together, data-parallel (torchrun): one per GPU, or "
                          "several on the CPU; batch_size is split among them", min=1, max=64)
    nnodes: int = param(1, "machines training this run together, each running nproc processes (torchrun "
                           "--nnodes); once the run has started, run `workbench join RUN` on each of the others",
                        min=1, max=1024)
    rdzv_endpoint: str = param("", "host:port at which the machines meet when nnodes > 1 (torchrun's c10d "
                                   "rendezvous): the starting machine's address and a port free on it")
    sync_bn: bool = param(False, "SyncBatchNorm: BatchNorm statistics over every process's images rather than each "
                                 "process's share, when several train the run (CNNs, the linear probe's BatchNorm); "
                                 "GPUs only")
    executor: str = param("local", "where the run trains: local (worker processes on this machine) or slurm (a job "
                                   "submitted to a Slurm cluster through submitit: nproc tasks on each of nnodes "
                                   "nodes; the cluster must reach this store and its run folders)",
                          choices=("local", "slurm"))
    slurm_partition: str = param("", "Slurm partition (empty: the cluster's default)")
    slurm_gpus_per_node: int = param(0, "GPUs the Slurm job asks for on each node (0: none)", min=0, max=64,
                                     at_min="none")
    slurm_cpus_per_task: int = param(0, "CPUs for each of the job's tasks (0: Slurm's default)", min=0,
                                     max=1024, at_min="Slurm's default")
    slurm_mem_gb: float = param(0.0, "memory per node in GB (0: Slurm's default)", min=0.0, max=100000.0)
    slurm_time_min: int = param(60, "the Slurm job's time limit in minutes; near it the job is requeued and the run "
                                    "resumes from its last checkpoint (see checkpoint_every)", min=1, max=525600)
    slurm_signal_s: int = param(90, "seconds before the time limit at which Slurm warns the job (SIGUSR2), which "
                                    "then requeues itself", min=10, max=86400)
    slurm_requeues: int = param(3, "how many times the job is requeued when it reaches its time limit or is "
                                   "preempted", min=0, max=1000)
    slurm_account: str = param("", "Slurm account to charge (empty: your default)")
    slurm_qos: str = param("", "Slurm quality of service (empty: the default)")
    slurm_sbatch: str = param("", "further sbatch flags, e.g. '--constraint=a100 --exclusive'")
    augment: str = param("flip", "training augmentation: none, flip, crop_flip (random resized crop + flip) or "
                                 "randaugment (timm's RandAugment as `randaug` says, then crop + flip)",
                         choices=("none", "flip", "crop_flip", "randaugment"))
    randaug: str = param("rand-m9-mstd0.5-inc1", "timm's RandAugment recipe when augment=randaugment (DeiT's and "
                                                 "MAE fine-tuning's: magnitude 9, std 0.5, increasing)")
    crop_min: float = param(0.35, "smallest crop, as a share of the image's area, of crop_flip and randaugment "
                                  "(MAE pre-training 0.2, DeiT 0.08)", min=0.01, max=1.0)
    reprob: float = param(0.0, "random erasing: the chance each training image gets a random-noise rectangle "
                               "(timm's RandomErasing; DeiT and MAE fine-tuning: 0.25)", min=0.0, max=1.0)
    mixup: float = param(0.0, "mixup strength alpha (0: off; DeiT used 0.8); classification methods only",
                         min=0.0, max=10.0)
    cutmix: float = param(0.0, "CutMix strength alpha (0: off; DeiT used 1.0); with mixup too, each batch is one "
                               "or the other (timm's Mixup, switch 0.5); classification methods only",
                          min=0.0, max=10.0)
    repeated_aug: int = param(1, "repeated augmentation: each image this many times per epoch, differently "
                                 "augmented, the epoch as long as before (DeiT: 3)", min=1, max=8)
    num_workers: int = param(-1, "DataLoader worker processes: -1 auto (up to 8 when a GPU trains on images decoded "
                                 "from their files or put through RandAugment, else none), 0 loads in the training "
                                 "process", min=-1, max=64,
                           at_min="auto")
    decode: str = param("loader", "where the images of a folder read from its files (too large to cache) are "
                                  "decoded: loader (Pillow, in the loader's processes) or device (torchvision's "
                                  "decode_jpeg on the run's device: nvJPEG on a GPU; other formats by Pillow)",
                        choices=("loader", "device"))
    threads: int = param(0, "CPU threads for this run (0: share the cores among the runs going at start)",
                         min=0, max=1024, at_min="shared")
    log_every: int = param(10, "write training metrics every N steps", min=1)
    eval_every: int = param(0, "evaluate every N steps (0: at the end of each epoch)", min=0,
                           at_min="each epoch")
    snapshot_every: int = param(0, "save snapshot images every N steps (0: with each evaluation)", min=0,
                               at_min="with each evaluation")
    checkpoint_every: int = param(0, "save a checkpoint every N steps (0: at the end of each epoch)",
                                 min=0, at_min="each epoch")
    best_metric: str = param("", "the metric whose best value keeps a 'best' checkpoint beside the last two (empty: "
                                 "the method's key metric, e.g. val/top1 or val/loss); 'min:KEY' or 'max:KEY' to "
                                 "say which way is better")

    def micro_batch(self) -> int:
        """Images one process takes in one forward pass: batch_size / (nproc x nnodes x accum_steps)."""
        return self.batch_size // (self.nproc * self.nnodes * self.accum_steps)

    def peak_lr(self) -> float:
        """The rate the schedule peaks at: `lr`, or `blr` scaled by the images per optimizer step."""
        return self.blr * self.batch_size / 256 if self.blr else self.lr

    def best_rule(self) -> tuple[str, bool]:
        """(metric key, higher is better) that picks the run's best checkpoint."""
        spec = self.best_metric.strip()
        if not spec:
            return self.key_metric, self.key_metric_higher_is_better
        way, _, key = spec.rpartition(":") if spec.startswith(("min:", "max:")) else ("", "", spec)
        if way:
            return key, way == "max"
        if key == self.key_metric:
            return key, self.key_metric_higher_is_better
        return key, "loss" not in key

    # ----------------------------------------------------------------- checks
    def validate(self) -> "TrainConfig":
        """Check every field and the cross-field rules; return self for chaining."""
        for f in fields(self):
            check_field(type(self), f.name, getattr(self, f.name))
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
        if self.sync_bn and self.device == "cpu":
            raise ConfigError("sync_bn", "PyTorch's SyncBatchNorm runs on GPUs only; set sync_bn=false or a GPU device")
        if self.executor == "slurm":
            sbatch_flags(self.slurm_sbatch)
        elif self.nnodes > 1 and not _ENDPOINT_RE.match(self.rdzv_endpoint.strip()):
            raise ConfigError("rdzv_endpoint", f"{self.nnodes} machines need the host:port at which they meet "
                                               f"(rdzv_endpoint, e.g. node1.lab:29400), not {self.rdzv_endpoint!r}")
        if self.batch_size % (self.nproc * self.nnodes * self.accum_steps):
            parts = self.nproc * self.nnodes * self.accum_steps
            who = f"{self.nproc * self.nnodes} processes" + (
                f" x {self.accum_steps} accumulated batches" if self.accum_steps > 1 else "")
            raise ConfigError("nproc" if self.accum_steps == 1 else "accum_steps",
                              f"{who} cannot share batch_size {self.batch_size} equally; use a batch size that is a "
                              f"multiple of {parts}")
        for name in ("mixup", "cutmix"):
            if getattr(self, name) and not self.needs_labels:
                raise ConfigError(name, f"{name} blends labels, and method {self.method} learns without labels; "
                                        f"set {name}=0")
        if (self.mixup or self.cutmix) and self.micro_batch() % 2:
            raise ConfigError("batch_size", f"mixup and cutmix pair each image with another of its batch: "
                                            f"{self.micro_batch()} images per process and batch is odd")
        if self.augment == "randaugment":
            _check_randaug(self.randaug)
            if self.decode == "device":
                raise ConfigError("decode", "augment=randaugment works on images Pillow decoded (in the loader's "
                                            "processes), and decode=device decodes on the GPU; use decode=loader")
        key, _ = self.best_rule()
        if not key.startswith(("val/", "val_ema/")):
            raise ConfigError("best_metric", f"{self.best_metric!r} is not a validation metric; name one such as "
                                             f"{self.key_metric} or min:val/loss (the best checkpoint is chosen at "
                                             f"each evaluation)")
        if key.startswith("val_ema/") and not self.ema:
            raise ConfigError("best_metric", f"{key} is the moving average's metric, and ema is off; set ema=true or "
                                             f"choose a val/ metric")

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
        for role, methods in self.parent_roles.items():  # a parent given but not required is checked alike
            parent = parents.get(role)
            if parent is None:
                if role not in required:
                    continue
                raise ConfigError(f"parent:{role}", f"method {self.method} needs a finished "
                                                    f"{_either(required[role])} run as its {role}")
            if parent.method not in methods:
                raise ConfigError(f"parent:{role}", f"run {parent.run_id} is a {parent.method} run; "
                                                    f"the {role} must be a {_either(methods)} run")
            if parent.status != "finished":
                raise ConfigError(f"parent:{role}", _unfinished(parent))
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
        hints = type_hints(cls)
        return [FieldSpec(f.name, hints[f.name], f.default, f.metadata.get("help", ""),
                          f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("choices"),
                          f.metadata.get("at_min"))
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


def compose(cls: type[TrainConfig], preset: str | None = None, overrides: Mapping[str, Any] | Iterable[str] = (),
            inherited: Mapping[str, Any] | None = None) -> TrainConfig:
    """Defaults, then a preset, then values inherited from parents, then overrides (a mapping or
    "key=value" strings); validated."""
    values: dict[str, Any] = cls.preset(preset) if preset else {}
    values.update(inherited or {})
    if isinstance(overrides, Mapping):
        values.update(overrides)
    else:
        values.update(parse_overrides(cls, overrides))
    return build(cls, values)


def build(cls: type[TrainConfig], data: Mapping[str, Any], *, strict: bool = True) -> TrainConfig:
    """Build and validate a config. `strict=False` drops fields a newer build removed."""
    known = {f.name for f in fields(cls)}
    unknown = [k for k in data if k not in known]
    if unknown and strict:
        raise ConfigError(unknown[0], unknown_field(cls, unknown[0]))
    hints = type_hints(cls)
    values = {k: (float(v) if hints[k] is float and type(v) is int else v)
              for k, v in data.items() if k in known}
    try:
        cfg = cls(**values)
    except TypeError as exc:  # pragma: no cover - dataclass signature errors
        raise ConfigError("config", str(exc)) from None
    return cfg.validate()


def _check_randaug(text: str) -> None:
    """timm's RandAugment string: 'rand' then '-' parts (m9, n2, mstd0.5, inc1, mmax10, w0, p0.5)."""
    parts = text.split("-")
    known = re.compile(r"^(m|n|mstd|mmax|inc|w|p)\d+(\.\d+)?$")
    if parts[0] != "rand" or not all(known.match(p) for p in parts[1:]):
        raise ConfigError("randaug", f"{text!r} is not a RandAugment recipe; write it as timm does, e.g. "
                                     f"rand-m9-mstd0.5-inc1 (m: magnitude, n: operations, mstd: magnitude noise)")


# ----------------------------------------------------------------- helpers
def _unfinished(parent: ParentInfo) -> str:
    """Why a parent that has not finished cannot be used yet, and what to do: wait for a queued or
    running one; resume one that ended otherwise (it will never finish by waiting)."""
    run_id, status = parent.run_id, parent.status
    if status in ("queued", "running"):
        return f"run {run_id} is {status}; wait until it has finished or pick another run"
    ended = f"failed (`workbench show {run_id}` says why)" if status == "failed" else f"was {status}"
    return f"run {run_id} {ended}; resume it (`workbench resume {run_id}`) or pick another run"


def _either(names: Sequence[str]) -> str:
    """('mae', 'beit', 'mpp') -> 'mae, beit or mpp'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


