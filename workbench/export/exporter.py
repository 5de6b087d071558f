"""Export a finished run's model to files other tools load, without the workbench:

- `safetensors`: `model.safetensors` + `config.json` in timm's own layout, so plain timm
  rebuilds it: `timm.create_model("local-dir:FOLDER", pretrained=True)`. The config holds the
  architecture and its arguments, the class names and the preprocessing (mean, std, size).
- `onnx`: `model.onnx` (dynamic batch axis), checked with `onnx.checker` and run in
  onnxruntime against PyTorch on the same inputs.
- `pt2`: a `torch.export` program, reloaded with `torch.export.load` and compared likewise.

What is exported is the method's exportable part (the classifier; the encoder of a
pre-training method), rebuilt as a native timm model. Every format is verified before it is
kept; files are written to a staging folder and moved into place at the end, so a failed
export leaves nothing behind. A model card (`README.md`) goes beside the files.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from workbench.data import DataInfo
from workbench.engine.checkpoint import load_trained
from workbench.errors import WorkbenchError
from workbench.export import CARD, FILES, FORMATS
from workbench.export.card import model_card
from workbench.store import Run, RunStatus, Store

TOLERANCE = 1e-4  # fp32 max abs difference the reloaded model may show
# timm's plain ViT sizes by width: an export names the nearest one (model_args hold the real shape)
VIT_SIZES = {"tiny": 192, "small": 384, "medium": 512, "base": 768, "large": 1024, "huge": 1280}
DEIT_SIZES = {"tiny": 192, "small": 384, "base": 768}


def vit_entry_point(module: nn.Module) -> str:
    """The timm entry point nearest to this ViT's size (vit_tiny_… for a 64-wide model, never
    vit_base_…): `config.json` must name a registered one for plain timm to rebuild it, and its
    `model_args` override the size, so the nearest is the least misleading."""
    import timm
    from timm.models.deit import VisionTransformerDistilled

    distilled = isinstance(module, VisionTransformerDistilled)
    sizes = DEIT_SIZES if distilled else VIT_SIZES
    size = min(sizes, key=lambda k: abs(sizes[k] - module.embed_dim))
    patch = module.patch_embed.patch_size[0]
    pattern = "deit_{}_distilled_patch{}_224" if distilled else "vit_{}_patch{}_224"
    name = pattern.format(size, patch)
    return name if timm.is_model(name) else pattern.format(size, 16)


def describe(module: nn.Module, architecture: str) -> str:
    """'ViT: width 64, depth 2, 4 heads, patch 4, 32 px; 75,210 parameters (timm's … with model_args)'."""
    params = f"{sum(p.numel() for p in module.parameters()):,} parameters"
    if hasattr(module, "blocks") and hasattr(module, "patch_embed"):
        shape = (f"width {module.embed_dim}, depth {len(module.blocks)}, {module.blocks[0].attn.num_heads} heads, "
                 f"patch {module.patch_embed.patch_size[0]}, {module.patch_embed.img_size[0]} px")
        return f"{type(module).__name__}: {shape}; {params} (timm's {architecture} entry point, resized by model_args)"
    return f"{type(module).__name__}: {params} (timm's {architecture})"


@dataclass
class Exported:
    """A timm-native model ready to export, and what the files should say about it."""

    model: nn.Module
    architecture: str
    run: Run
    data: DataInfo
    metrics: dict[str, float]  # validation metrics of these weights (the run's last ones where not known)
    parents: dict[str, int]
    checkpoint_step: int
    weights: str  # which of the run's weights: "best: val/top1 0.45 at step 390", "last: step 624", "ema: …"
    results: dict[str, float] = field(default_factory=dict)  # format -> max abs diff

    @property
    def description(self) -> str:
        return describe(self.model, self.architecture)

    @functools.cached_property
    def program(self) -> torch.export.ExportedProgram:
        """The model traced once by `torch.export` with a dynamic batch (1 to 4096), as the ONNX
        exporter traces a module (non-strict): saved as the pt2 file and converted to ONNX (tracing
        it twice cost 2 s of a MobileViT-xxs export's 12 s on 2 cores)."""
        batch = torch.export.Dim("batch", min=1, max=4096)
        return torch.export.export(self.model, (self.example(2),), dynamic_shapes={"x": {0: batch}}, strict=False)

    def example(self, batch: int) -> torch.Tensor:
        return torch.randn(batch, 3, self.data.image_size, self.data.image_size,
                           generator=torch.Generator().manual_seed(batch))


def export_run(store: Store, run_id: int, out: Path, formats: Sequence[str] = FORMATS, *,
               overwrite: bool = False, weights: str = "best",
               log: Callable[[str], None] = print) -> dict[str, float]:
    """Export run `run_id`'s `weights` (best, last or ema: see `load_trained`) into folder `out`;
    format -> verified max abs difference."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise WorkbenchError(f"unknown export format {unknown[0] if unknown else '(none)'}; "
                             f"choose from {', '.join(FORMATS)}")
    out = Path(out).expanduser().resolve()
    targets = [out / name for f in formats for name in FILES[f]] + [out / CARD]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise WorkbenchError(f"{existing[0]} already exists; overwrite it (--overwrite) or choose another folder")
    exported = load_exportable(store, run_id, weights=weights)
    log(f"weights: {exported.weights}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    except OSError as exc:
        raise WorkbenchError(f"cannot write to {out}: {exc.strerror or exc}; choose another folder") from None
    try:
        for fmt in formats:
            log(f"exporting {fmt}…")
            exported.results[fmt] = WRITERS[fmt](exported, staging)
            log(f"  {fmt}: reloaded and compared, max abs difference {exported.results[fmt]:.2e}")
        (staging / CARD).write_text(model_card(exported))
        umask = os.umask(0)
        os.umask(umask)
        for path in sorted(staging.iterdir()):
            path.chmod(0o666 & ~umask)  # some writers create private files; exports are for sharing
            os.replace(path, out / path.name)
    except OSError as exc:
        raise WorkbenchError(f"writing the export to {out} failed: {exc.strerror or exc}; nothing was kept") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _drop_earlier_export(store, run_id, out, formats, log)
    for fmt in formats:
        store.add_artifact(run_id, "export", out / FILES[fmt][0], step=exported.checkpoint_step, name=fmt,
                           meta={"max_abs_diff": exported.results[fmt], "folder": str(out),
                                 "weights": exported.weights})
    return exported.results


def _drop_earlier_export(store: Store, run_id: int, out: Path, formats: Sequence[str],
                         log: Callable[[str], None]) -> None:
    """Remove what is left in `out` of an earlier export there (overwritten): the files of formats
    this one did not write (maybe of other weights, which the new model card would name as its
    own), and its records."""
    stale = [out / name for f in FORMATS if f not in formats for name in FILES[f] if (out / name).exists()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log(f"removed {', '.join(p.name for p in stale)}: an earlier export's, not of these weights")
    store.delete_artifacts([a.id for a in store.artifacts(run_id, "export") if a.meta.get("folder") == str(out)])


def load_exportable(store: Store, run_id: int, *, weights: str = "best") -> Exported:
    """The run's exportable module with its `weights` (best, last or ema), as a timm model."""
    run = store.get_run(run_id)
    if run.status != RunStatus.FINISHED:
        raise WorkbenchError(f"run {run_id} is {run.status}; only finished runs can be exported "
                             f"(wait for it to finish, or resume it)")
    trained = load_trained(store, run_id, weights=weights)
    timm_model, architecture = as_timm(trained.method.exportable(trained.model).eval())
    return Exported(timm_model, architecture, run, trained.data, trained.metrics or run.results,
                    {role: p.id for role, p in store.parents(run_id).items()}, trained.step, trained.weights)


def as_timm(module: nn.Module) -> tuple[nn.Module, str]:
    """Rebuild `module` with `timm.create_model` (so timm records how to build it again) and load
    its weights strictly: proof that plain timm can express it."""
    import timm
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(module, VisionTransformer):
        architecture = vit_entry_point(module)
        args: dict[str, Any] = dict(
            img_size=module.patch_embed.img_size[0], patch_size=module.patch_embed.patch_size[0],
            embed_dim=module.embed_dim, depth=len(module.blocks), num_heads=module.blocks[0].attn.num_heads,
            mlp_ratio=module.blocks[0].mlp.fc1.out_features / module.embed_dim, num_classes=module.num_classes,
            global_pool=module.global_pool, fc_norm=not isinstance(module.fc_norm, nn.Identity),
            pos_embed="none" if module.pos_embed is None else "learn",
            # LayerScale's presence (its learned values come with the weights)
            init_values=float(module.blocks[0].ls1.gamma.mean()) if hasattr(module.blocks[0].ls1, "gamma") else None)
    elif getattr(module, "pretrained_cfg", None):  # made by timm.create_model, which recorded its arguments
        from timm.models._input import get_model_args

        architecture = module.pretrained_cfg["architecture"]
        args = get_model_args(module)
    else:
        raise WorkbenchError(f"a {type(module).__name__} is not a timm architecture, so it cannot be exported")
    rebuilt = timm.create_model(architecture, pretrained=False, **args)
    rebuilt.load_state_dict(module.state_dict())
    return rebuilt.eval(), architecture


def _max_diff(a: torch.Tensor, b: Any) -> float:
    return float((a.detach().float() - torch.as_tensor(b).float()).abs().max())


def _checked(exported: Exported, fmt: str, run_copy: Callable[[torch.Tensor], Any]) -> float:
    """Run the reloaded copy and the model on the same batch (of a size the export never saw)."""
    x = exported.example(5)
    with torch.no_grad():
        diff = _max_diff(exported.model(x), run_copy(x))
    if not diff <= TOLERANCE:
        raise WorkbenchError(f"the {fmt} export differs from the model by {diff:.2e} (more than {TOLERANCE}); "
                             f"nothing was kept")
    return diff


def write_safetensors(exported: Exported, folder: Path) -> float:
    import timm

    heads = getattr(exported.model, "num_classes", 0)  # an encoder exported alone has none: no label names
    timm.models.save_for_hf(
        exported.model, str(folder), safe_serialization=True,
        model_config={**({"label_names": list(exported.data.classes)} if heads else {}),
                      "architecture_note": exported.description,
                      "pretrained_cfg": {"tag": f"vit-workbench-run-{exported.run.id}", "license": "other",  # as the card
                                         "crop_pct": 1.0, "interpolation": "bilinear"}},
        data_config={"mean": tuple(exported.data.mean), "std": tuple(exported.data.std),
                     "input_size": (3, exported.data.image_size, exported.data.image_size)})
    reloaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    return _checked(exported, "safetensors", reloaded)


def write_onnx(exported: Exported, folder: Path) -> float:
    import onnx
    import onnxruntime

    path = folder / "model.onnx"
    torch.onnx.export(exported.program, f=str(path), input_names=["images"], output_names=["output"],
                      dynamo=True, external_data=False, verbose=False)
    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _checked(exported, "onnx", lambda x: session.run(None, {"images": x.numpy()})[0])


def write_pt2(exported: Exported, folder: Path) -> float:
    path = folder / "model.pt2"
    torch.export.save(exported.program, str(path))
    return _checked(exported, "pt2", torch.export.load(str(path)).module())


WRITERS: dict[str, Callable[[Exported, Path], float]] = {"safetensors": write_safetensors, "onnx": write_onnx,
                                                        "pt2": write_pt2}
