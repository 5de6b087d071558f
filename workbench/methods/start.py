"""Where a run's weights start: the `init` field of every method whose model is a timm network
(the ViT family, Swin, the CNNs), and the forms it accepts. Torch-free, so forms and the command
line check a value as it is typed; `workbench.engine.pretrained` loads it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from workbench.config import WEIGHTS, TrainConfig, param
from workbench.errors import ConfigError

if TYPE_CHECKING:
    from workbench.store import Store

INIT_FORMS = ("timm:NAME", "hf-hub:ORG/NAME", "local-dir:FOLDER", "FILE.safetensors / .pth / .pt / .bin",
              "run:ID[:best|last|ema]")
WEIGHT_FILES = (".safetensors", ".pth", ".pt", ".bin")


def parse_init(spec: str) -> tuple[str, str]:
    """(kind, value) of an `init` value: timm, hf-hub, local-dir, run or file; ConfigError if none fits."""
    spec = spec.strip()
    kind, sep, value = spec.partition(":")
    if sep and kind in ("timm", "hf-hub", "local-dir", "run") and value.strip():
        value = value.strip()
        if kind == "run":
            run_id, _, weights = value.partition(":")
            if not run_id.isdigit() or (weights and weights not in WEIGHTS):
                raise ConfigError("init", f"{spec!r}: write run:ID or run:ID:WEIGHTS (weights one of "
                                          f"{', '.join(WEIGHTS)})")
        if kind == "hf-hub" and value.count("/") != 1:
            raise ConfigError("init", f"{spec!r}: a Hub model is hf-hub:ORG/NAME")
        return kind, value
    if spec.lower().endswith(WEIGHT_FILES):
        return "file", spec
    raise ConfigError("init", f"{spec!r} is not a source of weights; use one of: {'; '.join(INIT_FORMS)}")


@dataclass(kw_only=True)
class InitConfig(TrainConfig):
    """A config whose model can start from pretrained weights."""

    init: str = param("", "start from these weights instead of random ones: timm:NAME (timm's local cache), "
                          "hf-hub:ORG/NAME (online), local-dir:FOLDER (config.json + model.safetensors), a "
                          ".safetensors/.pth/.bin file, or run:ID (a finished run; :best, :last or :ema). The "
                          "architecture comes from the source; the head is re-initialised for this data")

    def check(self) -> None:
        super().check()
        if self.init.strip():
            parse_init(self.init)


# a timm ViT's constructor arguments -> the config fields that say its shape
TIMM_ARGS = {"embed_dim": "width", "depth": "depth", "num_heads": "heads", "mlp_ratio": "mlp_ratio",
             "patch_size": "patch_size"}


def source_shape(spec: str, store: Store) -> dict[str, Any] | None:
    """The ViT shape (width, depth, heads, mlp_ratio, patch_size; what is known) of an `init` source,
    read without torch for a form to fill in: a run's config, a folder's config.json, a safetensors
    header. None where only loading the weights tells (timm and Hub names, .pth/.bin files)."""
    try:
        kind, value = parse_init(spec)
    except ConfigError:
        return None
    if kind == "run":
        config = store.get_run(int(value.partition(":")[0])).config
        return {k: config[k] for k in TIMM_ARGS.values() if k in config} or None
    path = Path(value).expanduser()
    if kind == "local-dir" and (path / "config.json").is_file():
        args = json.loads((path / "config.json").read_text()).get("model_args", {})
        return {field: args[arg] for arg, field in TIMM_ARGS.items() if arg in args} or None
    if kind == "file" and path.suffix == ".safetensors" and path.is_file():
        try:
            return vit_shape(header_shapes(path))
        except Exception:  # a header that does not parse: the form fills nothing; Start says why
            return None
    return None


def tensor_name(key: str) -> str:
    """A saved tensor's name as timm knows it: DataParallel and DDP save theirs under "module."."""
    return key.removeprefix("module.")


def header_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor name (`tensor_name`) -> shape from a safetensors file's header alone, no tensor
    read; raises safetensors' own error for a header it cannot parse."""
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        return {tensor_name(k): f.get_slice(k).get_shape() for k in f.keys()}


VIT_KEYS = ("patch_embed.proj.weight", "blocks.0.mlp.fc1.weight")  # what `vit_shape` reads


def not_a_vit(names: Sequence[str]) -> str:
    """Why weights with these tensor names do not start a ViT-family run, naming what they lack."""
    missing = [k for k in VIT_KEYS if k not in names]
    held = (f"among its {len(names)} tensors (they begin {', '.join(list(names)[:3])}, …)" if names
            else "(it holds no tensors)")
    return f"not a plain ViT's weights: no {' and no '.join(missing)} {held}; a ViT-family run starts from a timm ViT's weights"


def weights_file_problem(path: Path, vit: bool) -> str | None:
    """Why the file at `path` cannot be weights to start from, as far as is told without torch: a
    safetensors header that does not parse (or, for a ViT-family run, `not_a_vit`), a file that
    torch.save did not write. None when it may be (a .pt file is opened only by the worker)."""
    if path.suffix == ".safetensors":
        try:
            shapes = header_shapes(path)
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or exc}"
        except Exception as exc:  # safetensors' own error for a header it cannot parse
            return f"{path} is not a safetensors file ({exc})"
        return not_a_vit(list(shapes)) if vit and vit_shape(shapes) is None else None
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError as exc:  # unreadable (permissions) or a folder: said here, not as a traceback
        return f"cannot read {path}: {exc.strerror or exc}"
    if head == b"PK" or head[:1] == b"\x80":  # torch.save's zip archive, or its legacy pickle
        return None
    return f"{path} is neither a .safetensors file nor a file torch.save wrote (a .pt/.pth of a state_dict)"


def vit_shape(shapes: Mapping[str, Sequence[int]]) -> dict[str, Any] | None:
    """Width, depth, MLP ratio and patch size of a timm ViT from its tensors' shapes (key -> shape);
    None when they are not a ViT's. Attention heads leave no trace in the shapes."""
    proj, fc1 = (shapes.get(k) for k in VIT_KEYS)
    if not proj or not fc1:
        return None
    depth = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("blocks."))
    return {"width": proj[0], "depth": depth, "mlp_ratio": fc1[0] / proj[0], "patch_size": proj[-1]}
