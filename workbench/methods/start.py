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
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as f:  # the header alone: shapes, no tensor read
            return vit_shape({k: f.get_slice(k).get_shape() for k in f.keys()})
    return None


def vit_shape(shapes: Mapping[str, Sequence[int]]) -> dict[str, Any] | None:
    """Width, depth, MLP ratio and patch size of a timm ViT from its tensors' shapes (key -> shape);
    None when they are not a ViT's. Attention heads leave no trace in the shapes."""
    proj, fc1 = shapes.get("patch_embed.proj.weight"), shapes.get("blocks.0.mlp.fc1.weight")
    if not proj or not fc1:
        return None
    depth = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("blocks."))
    return {"width": proj[0], "depth": depth, "mlp_ratio": fc1[0] / proj[0], "patch_size": proj[-1]}
