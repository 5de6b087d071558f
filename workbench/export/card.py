"""The model card (`README.md`) written beside an export: Hugging Face Hub metadata (YAML front
matter: `library_name: timm`, tags, license, dataset, metrics) and the run's facts. It names files
by relative paths only, so the folder reads the same copied elsewhere or pushed to the Hub."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import yaml

from workbench.export import FILES

if TYPE_CHECKING:
    from workbench.export.exporter import Exported

# metric keys the Hub's model-index knows by a type of its own
HUB_METRICS = {"val/top1": ("accuracy", "top-1 accuracy"), "val/top5": ("accuracy", "top-5 accuracy")}


def hub_metadata(exported: Exported) -> dict[str, Any]:
    """The card's YAML header as the Hub reads it (model-index only for a classifier's accuracy)."""
    run = exported.run
    dataset = str(run.config.get("dataset", ""))
    classifier = bool(getattr(exported.model, "num_classes", 0))
    meta: dict[str, Any] = {
        "library_name": "timm",
        "license": "other",  # the trainer's to choose: the data's terms decide what the weights may be
        "tags": ["timm", "vit-workbench", f"method-{run.method}",
                 "image-classification" if classifier else "image-feature-extraction"],
        "datasets": [dataset] if dataset else [],
        "pipeline_tag": "image-classification" if classifier else "image-feature-extraction",
    }
    results = [{"type": kind, "name": name, "value": round(float(exported.metrics[key]), 4)}
               for key, (kind, name) in HUB_METRICS.items() if key in exported.metrics]
    if classifier and results:
        meta["model-index"] = [{"name": run.name, "results": [{
            "task": {"type": "image-classification"},
            "dataset": {"name": dataset, "type": dataset, "split": "validation"},
            "metrics": results}]}]
    return meta


def model_card(exported: Exported) -> str:
    """The whole card: the Hub header, then what was trained on what, the files, metrics, lineage, config."""
    run, data = exported.run, exported.data
    what = "classifier" if getattr(exported.model, "num_classes", 0) else "encoder (no classification head)"
    files = "\n".join(f"- `{name}` ({fmt}; reloaded and compared: max abs difference {diff:.1e})"
                      for fmt, diff in exported.results.items() for name in FILES[fmt])
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(exported.metrics.items())) or "| (none) | |"
    lineage = ", ".join(f"{role}: run {pid}" for role, pid in exported.parents.items()) or "none"
    started = run.config.get("init") or "random weights"
    environment = ", ".join(f"{k} {v}" for k, v in run.environment.items() if k != "host") or "not recorded"
    return f"""---
{yaml.safe_dump(hub_metadata(exported), sort_keys=False).strip()}
---

# {run.name}

A {what} trained with ViT Workbench: method `{run.method}`, run {run.id}, exported
{time.strftime('%Y-%m-%d %H:%M')}; weights: {exported.weights}.

- architecture: {exported.description}; arguments in `config.json`
- dataset: `{run.config.get('dataset')}`, {data.image_size} x {data.image_size} px, classes: {', '.join(data.classes)}
- preprocessing: RGB in [0, 1], resized to {data.image_size} px, normalised with mean {list(data.mean)}
  and std {list(data.std)}
- started from: {started}
- lineage: {lineage}
- trained with: {environment}

## Files
{files}

## Validation metrics of these weights
| metric | value |
|---|---|
{metrics}

## Load it
```python
import timm  # plain timm and safetensors, no workbench; FOLDER is this folder
model = timm.create_model("local-dir:FOLDER", pretrained=True).eval()  # or "hf-hub:ORG/NAME" once pushed

import onnxruntime  # or ONNX: input "images" [batch, 3, {data.image_size}, {data.image_size}], normalised
session = onnxruntime.InferenceSession("FOLDER/model.onnx")

import torch  # or the torch.export program
model = torch.export.load("FOLDER/model.pt2").module()
```

## Config
```json
{json.dumps(run.config, indent=2)}
```
"""
