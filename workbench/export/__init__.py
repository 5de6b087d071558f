"""Exporting trained models (see `workbench.export.exporter`). This module only names the
formats, so the CLI and the GUI can offer them without importing torch."""

FORMATS = ("safetensors", "onnx", "pt2")
FILES = {"safetensors": ("model.safetensors", "config.json"), "onnx": ("model.onnx",), "pt2": ("model.pt2",)}
CARD = "README.md"  # the model card, beside the files
