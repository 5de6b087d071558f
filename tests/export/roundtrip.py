"""Reload an exported folder in a fresh Python that never imports the workbench, and compare
every format's output with the workbench's own model on the same images."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from workbench.engine.checkpoint import load_trained
from workbench.export import FORMATS
from workbench.store import Store

RELOAD = r"""
import json, sys
import numpy as np, onnxruntime, timm, torch
folder, x_path = sys.argv[1], sys.argv[2]
x = torch.from_numpy(np.load(x_path))
out = {}
model = timm.create_model("local-dir:" + folder, pretrained=True).eval()
with torch.no_grad():
    out["safetensors"] = model(x).numpy().tolist()
session = onnxruntime.InferenceSession(folder + "/model.onnx", providers=["CPUExecutionProvider"])
out["onnx"] = session.run(None, {"images": x.numpy()})[0].tolist()
with torch.no_grad():
    out["pt2"] = torch.export.load(folder + "/model.pt2").module()(x).numpy().tolist()
cfg = json.load(open(folder + "/config.json"))
out["label_names"] = cfg.get("label_names")
out["mean"] = cfg["pretrained_cfg"]["mean"]
assert not any(m == "workbench" or m.startswith("workbench.") for m in sys.modules), "workbench was imported"
print(json.dumps(out))
"""


def workbench_model(store: Store, run_id: int) -> torch.nn.Module:
    """The exportable part exactly as the workbench itself builds and loads it."""
    trained = load_trained(store, run_id)
    return trained.method.exportable(trained.model).eval()


def reload_and_compare(store: Store, run_id: int, folder: Path, tmp_path: Path) -> tuple[np.ndarray, dict]:
    """(the workbench's output, what the fresh Python loaded and computed); fails unless every
    format matches the workbench to 1e-4."""
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    np.save(tmp_path / "x.npy", x.numpy())
    with torch.no_grad():
        expected = workbench_model(store, run_id)(x).numpy()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", RELOAD, str(folder), str(tmp_path / "x.npy")], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    for fmt in FORMATS:
        assert np.abs(np.array(loaded[fmt]) - expected).max() <= 1e-4, fmt
    return expected, loaded
