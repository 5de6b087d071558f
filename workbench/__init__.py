"""ViT Workbench: set up, run, watch, compare and export vision-transformer experiments."""

__version__ = "0.1.0"
