"""Where a run's weights start (the `init` field): pretrained weights from timm's cache, the Hub,
a folder or file, or another run, loaded into the method's timm network before step 0.

The source's state dict is adapted by timm's own `checkpoint_filter_fn` of the target's model
family (position embeddings resampled to the run's grid, patch embeddings resampled to its patch
size); a classifier head whose classes differ is left to its fresh init; every such change, and
the keys missing or left over, is said in the run's log and kept in the run's `init` artifact.
A ViT run takes its width, depth, heads, MLP ratio and LayerScale from the source, so the
architecture is the source's; the image size, patch size and head are the run's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pickle
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn

from workbench import paths
from workbench.config import TrainConfig
from workbench.errors import WorkbenchError
from workbench.methods.backbone import ViTBackboneConfig
from workbench.methods.start import not_a_vit, parse_init, tensor_name, vit_shape
from workbench.store import Run, Store

KIND = "init"  # the artifact recording what a run started from
WRAPPERS = ("model", "state_dict", "module", "model_ema")  # dicts checkpoints keep the weights under


@dataclass
class Source:
    """Weights a run starts from: a state dict and what is known of the network that made it."""

    spec: str
    state: dict[str, Tensor]
    sha256: str = ""  # of the file read (empty for timm's cache and other runs)
    heads: int | None = None  # attention heads, where the source says (a bare weights file does not)
    notes: list[str] = field(default_factory=list)
    classes: list[str] | None = None  # what the head's outputs stand for, where the source says


def starting_weights(cfg: TrainConfig, store: Store, run: Run, log: Callable[[str], None]) -> Source | None:
    """The weights `init` names, for a run starting at step 0 (a resumed one has its own)."""
    spec = getattr(cfg, "init", "")
    if not spec or run.step or store.artifacts(run.id, "checkpoint"):
        return None
    log(f"reading the weights to start from: {spec}")
    return read_source(spec, store)


def start_from(store: Store, run_id: int, target: nn.Module, source: Source, classes: list[str],
               log: Callable[[str], None], *, record: bool) -> None:
    """Load the source into `target` (for data of `classes`); with `record` (rank 0), keep what was done
    in the run's `init.json`."""
    report = load_into(target, source, log, classes)
    if record:
        path = paths.run_dir(run_id) / "init.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1))
        store.add_artifact(run_id, KIND, path, meta={"source": source.spec, "sha256": source.sha256})


def read_source(spec: str, store: Store) -> Source:
    """The weights `spec` names (`timm:NAME`, `hf-hub:ORG/NAME`, `local-dir:PATH`, a .safetensors /
    .pth / .pt / .bin file, `run:ID[:best|last|ema]`), or a WorkbenchError saying why not."""
    kind, value = parse_init(spec)
    if kind == "run":
        return _from_run(spec, value, store)
    if kind == "file":
        path = Path(value).expanduser()
        state = _unwrap(_read_file(path))
        return Source(spec, state, _sha256(path),
                      notes=["warning: a bare weights file does not say how many attention heads its network had; this "
                             "run's `heads` is used (a wrong count loads but computes something else: a "
                             "local-dir folder with config.json says it)"])
    if kind == "local-dir":
        folder = Path(value).expanduser()
        weights = [folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()]
        if not (folder / "config.json").is_file() or not weights:
            raise WorkbenchError(f"init {spec}: {folder} is not a model folder; a local-dir source holds config.json "
                                 f"and model.safetensors (timm's save_for_hf and `workbench export` write them)")
        model = _timm_model(f"local-dir:{folder}", kind, value, spec)
        labels = json.loads((folder / "config.json").read_text()).get("label_names")
        return Source(spec, model.state_dict(), _sha256(weights[0]), _heads(model), classes=labels)
    with _offline(kind == "timm"):
        model = _timm_model(value if kind == "timm" else f"hf-hub:{value}", kind, value, spec)
    return Source(spec, model.state_dict(), heads=_heads(model))


def _from_run(spec: str, value: str, store: Store) -> Source:
    from workbench.engine.checkpoint import load_trained

    run_id, _, weights = value.partition(":")
    trained = load_trained(store, int(run_id), weights=weights or "best")
    module = trained.method.exportable(trained.model)
    return Source(spec, module.state_dict(), heads=_heads(module), notes=[f"run {run_id}'s {trained.weights}"],
                  classes=list(trained.data.classes))


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise WorkbenchError(f"init: there is no file {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).split("\n\n")[-1].strip() or str(exc)
        raise WorkbenchError(f"init: {path} holds pickled Python objects, which are not loaded: unpickling them "
                             f"could run any code ({reason[:200]}). Save the model's state_dict() instead, or a "
                             f".safetensors file") from None
    except Exception as exc:  # a truncated or foreign file
        raise WorkbenchError(f"init: {path} cannot be read as weights ({type(exc).__name__}: {exc}); give a "
                             f".safetensors file or a .pt/.pth file of a state_dict (torch.save)") from None


def _unwrap(state: dict[str, Any]) -> dict[str, Tensor]:
    """The tensors of a state dict, out of the wrappers training scripts save them in
    ({"model": ...}, DataParallel's "module." prefix)."""
    for key in WRAPPERS:
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    tensors = {tensor_name(k): v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise WorkbenchError(f"init: the file holds no tensors (its keys: {', '.join(list(state)[:8])})")
    return tensors


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _heads(model: nn.Module) -> int | None:
    blocks = getattr(model, "blocks", None)
    return int(blocks[0].attn.num_heads) if blocks is not None and hasattr(blocks[0], "attn") else None


@contextlib.contextmanager
def _offline(on: bool) -> Iterator[None]:
    """Make huggingface_hub read its cache only (timm:NAME never downloads)."""
    from huggingface_hub import constants

    was = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = on or was
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = was


def _hub_answers(timeout: float = 3.0) -> bool:
    """Whether the Hub's server takes a connection (through a proxy: assumed). Asked first, as
    huggingface_hub retries an unreachable server for 20 s and more before it gives up."""
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # offline mode answers from the cache; a proxy decides for itself
    url = urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError:
        return False


def _timm_model(name: str, kind: str, value: str, spec: str) -> nn.Module:
    """timm's model `name` with its pretrained weights; errors say why not and what to do instead."""
    import timm

    if kind == "timm" and not timm.is_model(value.split(".")[0]):
        raise WorkbenchError(f"init {spec}: timm has no model {value!r}; `timm.list_models('vit_*')` lists them")
    try:
        if kind == "hf-hub" and not _hub_answers():
            raise ConnectionError("no connection to the Hub's server")
        return timm.create_model(name, pretrained=True)
    except Exception as exc:  # not cached, offline, no such repository: said plainly
        if kind == "timm":
            raise WorkbenchError(f"init {spec}: timm's weights for {value} are not in the local cache (they are never "
                                 f"downloaded here). On a machine that is online, `timm.create_model('{value}', "
                                 f"pretrained=True)` puts them in the Hugging Face cache; or download the "
                                 f".safetensors file and use init=PATH ({type(exc).__name__})") from None
        if kind == "hf-hub":
            raise WorkbenchError(f"init {spec}: the Hugging Face Hub cannot be reached or has no such model "
                                 f"({type(exc).__name__}: {str(exc)[:160]}). Offline, download the repository on "
                                 f"an online machine and use init=local-dir:FOLDER") from None
        raise WorkbenchError(f"init {spec}: timm cannot load it ({type(exc).__name__}: {exc})") from None


def fit_config(cfg: TrainConfig, source: Source, log: Callable[[str], None]) -> TrainConfig:
    """A ViT run's config with the source's architecture (width, depth, heads, MLP ratio, LayerScale);
    other methods' configs unchanged (their shapes must match the source, `load_into` says where not)."""
    if not isinstance(cfg, ViTBackboneConfig):
        return cfg
    state = source.state
    found = vit_shape({k: tuple(v.shape) for k, v in state.items()})
    if found is None:
        raise WorkbenchError(f"init {source.spec}: {not_a_vit(list(state))}")
    found.pop("patch_size")  # the run's own: a different one is resampled
    shape: dict[str, Any] = found
    if source.heads:
        shape["heads"] = source.heads
    gamma = state.get("blocks.0.ls1.gamma")
    shape["layer_scale"] = float(gamma.abs().mean().clamp(1e-6, 1.0)) if gamma is not None else 0.0
    changed = {k: v for k, v in shape.items() if getattr(cfg, k) != v}
    if not changed:
        return cfg
    log("architecture from the source: " + ", ".join(f"{k} {getattr(cfg, k)} -> {v:g}" for k, v in changed.items()))
    fitted = dataclasses.replace(cfg, **changed)
    if fitted.width % fitted.heads:
        raise WorkbenchError(f"init {source.spec}: the source's width {fitted.width} is not divisible by this run's "
                             f"{fitted.heads} heads; set heads to the source's")
    return fitted


def load_into(target: nn.Module, source: Source, log: Callable[[str], None],
              classes: list[str] | None = None) -> dict[str, Any]:
    """Load the source into `target` (a timm network, for data of `classes`) as far as it fits; what was
    done, for the record. The head is kept only where it fits and stands for the same classes."""
    state = dict(source.state)
    report: dict[str, Any] = {"source": source.spec, "sha256": source.sha256, "notes": list(source.notes)}
    own = target.state_dict()
    table = getattr(target, "pos_embed", None)
    if "pos_embed" in state and (table is None or (isinstance(table, nn.Parameter) and not table.requires_grad)):
        del state["pos_embed"]
        report["notes"].append("pos_embed: not taken from the source (this run has " +
                               ("no position embedding)" if table is None else "a fixed sin-cos table)"))
    state = _filtered(target, state, report)
    head = [k for k in state if k in own and k.startswith(("head.", "head_dist.", "fc."))]
    if head and any(state[k].shape != own[k].shape for k in head):
        report["notes"].append(f"classifier head re-initialised: the source has {state[head[0]].shape[0]} outputs, "
                               f"this run's data {own[head[0]].shape[0]} classes")
    elif head and source.classes is not None and classes is not None and source.classes != classes:
        report["notes"].append(f"classifier head re-initialised: the source's classes ({_some(source.classes)}) are "
                               f"not this data's ({_some(classes)})")
    else:
        head = []
    for k in head:
        del state[k]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state
             if k in own and state[k].shape != own[k].shape]
    if wrong:
        raise WorkbenchError(f"init {source.spec}: the source does not fit this run's network ({'; '.join(wrong[:4])}); "
                             f"set the run's shape fields to the source's")
    if "pos_embed" in state and _parametrized(target, "pos_embed"):  # learned-2d: the X and Y tables from it
        with torch.no_grad():
            target.pos_embed = state.pop("pos_embed").to(target.pos_embed)
        report["notes"].append("pos_embed: learned-2d X and Y tables taken from the source table's first row and column")
    missing, unexpected = target.load_state_dict(state, strict=False)
    report["missing"] = [k for k in missing if not k.startswith("parametrizations.pos_embed")]
    report["unexpected"] = list(unexpected)
    report["loaded"] = len(state) - len(unexpected)
    if not report["loaded"]:  # a CNN from a ViT's file, say: it would train from scratch under another name
        raise WorkbenchError(f"init {source.spec}: none of the source's tensors are this run's network's (the "
                             f"source's: {', '.join(list(source.state)[:5])}; the network's: "
                             f"{', '.join(list(own)[:5])}): are they weights of another architecture?")
    for note in report["notes"]:
        log(f"init: {note}")
    log(f"init: {report['loaded']} tensors loaded from {source.spec}"
        + (f"; left at their init: {', '.join(report['missing'][:8])}" if report["missing"] else "")
        + (f"; not used: {', '.join(report['unexpected'][:8])}" if report["unexpected"] else ""))
    return report


def _filtered(target: nn.Module, state: dict[str, Tensor], report: dict[str, Any]) -> dict[str, Tensor]:
    """The state through timm's filter for the target's family (resampling), changes noted."""
    filter_fn = next((getattr(sys.modules[c.__module__], "checkpoint_filter_fn") for c in type(target).__mro__
                      if hasattr(sys.modules.get(c.__module__), "checkpoint_filter_fn")), None)
    if filter_fn is None:
        return state
    before = {k: tuple(v.shape) for k, v in state.items()}
    try:
        state = filter_fn(state, target)
    except Exception as exc:  # timm's filter expects its own family's keys: another network's weights
        raise WorkbenchError(f"init {report['source']}: timm cannot adapt the source to this run's "
                             f"{type(target).__name__} ({type(exc).__name__}: {exc}): are they weights of another "
                             f"architecture?") from None
    for key, what in (("pos_embed", "position embeddings resampled (timm's resample_abs_pos_embed)"),
                      ("patch_embed.proj.weight", "patch embedding resampled to this run's patch size (timm's "
                                                  "resample_patch_embed, FlexiViT's pseudo-inverse)")):
        if key in before and key in state and tuple(state[key].shape) != before[key]:
            report["notes"].append(f"{what}: {before[key]} -> {tuple(state[key].shape)}")
    return state


def _parametrized(module: nn.Module, name: str) -> bool:
    return name in getattr(module, "parametrizations", {})


def _some(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")
